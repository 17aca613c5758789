"""Rate limits answer alike on both backends: the same statuses, ``RateLimit-Policy``,
``RateLimit`` and ``Retry-After`` headers and problem bodies, under the limit and over it; ``/health``
and ``/ready`` are never limited. Both backends count in the session's Redis, each with a key of
its own (a counter each)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.parity.conftest import KEY_A, KEY_B, rebuilt_clients

LIMITS = "default=20/minute;embeddings=2/minute"
#: Seconds until the window's oldest request leaves it: 60 at first, less as time passes.
TIMED = {"retry-after", "ratelimit"}


@pytest.fixture
def no_counters(service_env: dict[str, str]) -> Iterator[None]:
    """No rate-limit counter in the session's Redis, before and after the test."""

    def clear() -> None:
        client = redis.Redis.from_url(service_env["REDIS_URL"])
        try:
            keys = list(client.scan_iter("synthstack:ratelimit*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    clear()
    yield
    clear()


def _seen(response: httpx.Response) -> dict[str, Any]:
    """What a client sees of an answer (``t``, in ``RateLimit``, split off: it is timed)."""
    headers = {
        name: response.headers[name]
        for name in ("content-type", "retry-after", "ratelimit-policy", "ratelimit")
        if name in response.headers
    }
    timed = {}
    if "ratelimit" in headers:
        headers["ratelimit"], _, reset = headers["ratelimit"].rpartition(";t=")
        timed["t"] = int(reset)
    if "retry-after" in headers:
        timed["retry-after"] = int(headers.pop("retry-after"))
    return {
        "status": response.status_code,
        "headers": headers,
        "body": response.content,
        "timed": timed,
    }


def _run(client: httpx.Client, key: str) -> list[dict[str, Any]]:
    auth = {"Authorization": f"Bearer {key}", "X-Request-ID": "rate-limits"}
    calls = [
        client.get("/health", headers=auth),
        client.get("/ready", headers=auth),
        client.get("/api/v1/embeddings/models", headers=auth),
        # An error after the count: counted, and told.
        client.post("/api/v1/embeddings/generate", headers=auth, json={"text": 5}),
        # Over the limit: refused before the body is even parsed.
        client.post(
            "/api/v1/embeddings/generate",
            headers={**auth, "Content-Type": "application/json"},
            content=b"{not json",
        ),
        client.get("/api/v1/embeddings/models", headers=auth),
        # Another group: `default`'s policy and counter.
        client.get("/api/v1/generation/models", headers=auth),
        # Before the count: no key, no limit headers.
        client.get("/api/v1/embeddings/models", headers={"X-Request-ID": "rate-limits"}),
        client.get("/health", headers=auth),
    ]
    seen = [_seen(response) for response in calls]
    for health in (seen[0], seen[1], seen[-1]):  # they name the backend, and time the checks
        health["body"] = None
    return seen


def test_rate_limits_answer_alike(django_app: Any, no_counters: None) -> None:
    seen: dict[str, list[dict[str, Any]]] = {}
    with rebuilt_clients(django_app, {"SYNTHSTACK_RATE_LIMITS": LIMITS}) as clients:
        for (backend, client), key in zip(clients.items(), (KEY_A, KEY_B), strict=True):
            seen[backend] = _run(client, key)
    fastapi, django = seen["fastapi"], seen["django"]
    untimed = [{k: v for k, v in answer.items() if k != "timed"} for answer in fastapi]
    assert untimed == [{k: v for k, v in answer.items() if k != "timed"} for answer in django]
    for one, other in zip(fastapi, django, strict=True):
        assert one["timed"].keys() == other["timed"].keys()
        for name, value in one["timed"].items():
            assert 58 <= value <= 60 and abs(value - other["timed"][name]) <= 1
    statuses = [answer["status"] for answer in fastapi]
    assert statuses[0] == 200 and statuses[1] in (200, 503) and statuses[-1] == 200
    assert statuses[2:8] == [200, 422, 429, 429, 200, 401]
    for answer in (fastapi[0], fastapi[1], fastapi[7], fastapi[8]):
        assert "ratelimit" not in answer["headers"] and not answer["timed"]
    assert fastapi[2]["headers"]["ratelimit-policy"] == '"embeddings";q=2;w=60'
    assert fastapi[2]["headers"]["ratelimit"] == '"embeddings";r=1'
    assert fastapi[3]["headers"]["ratelimit"] == '"embeddings";r=0'
    refused = fastapi[4]
    assert refused["headers"]["content-type"] == "application/problem+json"
    assert refused["headers"]["ratelimit"] == '"embeddings";r=0'
    assert set(refused["timed"]) == {"t", "retry-after"}
    assert b'"code":"rate_limited"' in refused["body"]
    assert fastapi[6]["headers"]["ratelimit-policy"] == '"default";q=20;w=60'
    assert fastapi[6]["headers"]["ratelimit"] == '"default";r=19'
