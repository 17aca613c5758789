"""``GET /api/v1/usage`` answers alike on both backends: the same requests made on each (each
backend with tenants of its own, on the shared database) give the same report, byte for byte once
the tenant's name is set aside; each tenant sees only its own usage, counted exactly; a bad range
is the same 422 problem on both, and no key the same 401."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.parity.conftest import rebuilt_clients

BACKENDS = ("fastapi", "django")


def _requests(client: httpx.Client, key_a: str, key_b: str) -> None:
    """What tenant A and tenant B do on one backend."""
    a = {"Authorization": f"Bearer {key_a}"}
    b = {"X-API-Key": key_b}
    assert client.get("/api/v1/embeddings/models", headers=a).status_code == 200
    assert client.get("/api/v1/embeddings/models", headers=a).status_code == 200
    batch = client.post("/api/v1/embeddings/batch", headers=a, json={"texts": ["one", "two"]})
    assert batch.status_code == 200, batch.text
    assert (
        client.post("/api/v1/embeddings/generate", headers=a, json={"text": 5}).status_code == 422
    )
    assert client.get("/api/v1/embeddings/models").status_code == 401  # nobody's: not counted
    assert client.get("/api/v1/generation/models", headers=b).status_code == 200


def _report(client: httpx.Client, key: str, query: dict[str, str]) -> httpx.Response:
    return client.get(
        "/api/v1/usage",
        params=query,
        headers={"Authorization": f"Bearer {key}", "X-Request-ID": "usage-parity"},
    )


def test_each_tenant_reads_its_own_usage_alike_on_both_backends(django_app: Any) -> None:
    run = uuid.uuid4().hex[:8]
    tenants = {
        backend: {who: f"usage-{run}-{backend}-{who}" for who in ("a", "b")} for backend in BACKENDS
    }
    keys = {
        backend: {who: f"usage-key-{run}-{backend}-{who}" for who in ("a", "b")}
        for backend in BACKENDS
    }
    api_keys = ",".join(
        f"{tenants[backend][who]}:{keys[backend][who]}" for backend in BACKENDS for who in "ab"
    )
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    query = {
        "from": (hour - timedelta(hours=1)).isoformat(),
        "to": (hour + timedelta(hours=2)).isoformat(),
    }
    bodies: dict[str, dict[str, Any]] = {}
    with rebuilt_clients(django_app, {"SYNTHSTACK_API_KEYS": api_keys}) as clients:
        for backend, client in clients.items():
            _requests(client, keys[backend]["a"], keys[backend]["b"])
        for backend, client in clients.items():
            for who in ("a", "b"):
                response = _report(client, keys[backend][who], query)
                assert response.status_code == 200, response.text
                assert response.headers["content-type"] == "application/json"
                report = response.json()
                assert report["tenant"] == tenants[backend][who]
                # The tenant's name is the one difference between the backends' answers.
                bodies[f"{backend}-{who}"] = json.loads(
                    response.content.replace(tenants[backend][who].encode(), b"TENANT")
                )
    assert bodies["fastapi-a"] == bodies["django-a"]
    assert bodies["fastapi-b"] == bodies["django-b"]
    a, b = bodies["fastapi-a"], bodies["fastapi-b"]
    assert a["start"] == query["from"].replace("+00:00", "Z")
    assert a["totals"]["by_operation"] == [
        {"operation_id": "embeddings-batch", "status": 200, "requests": 1},
        {"operation_id": "embeddings-generate", "status": 422, "requests": 1},
        {"operation_id": "embeddings-models", "status": 200, "requests": 2},
    ]
    assert a["totals"]["requests"] == 4 and a["totals"]["texts_embedded"] == 2
    assert b["totals"]["by_operation"] == [
        {"operation_id": "generation-models", "status": 200, "requests": 1}
    ]
    assert b["totals"]["texts_embedded"] == 0
    for report in (a, b):
        assert sum(len(h["requests"]) for h in report["hours"]) >= 1
        assert report["totals"]["prompt_tokens"] == report["totals"]["audio_seconds"] == 0


def test_a_bad_range_is_the_same_422_on_both_backends(clients: dict[str, httpx.Client]) -> None:
    from tests.parity.conftest import KEY_A

    cases = [
        ({"from": "2026-12-05T10:00:00Z", "to": "2026-12-05T09:59:59Z"}, "invalid_range"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "range_too_long"),
        ({"from": "2026-12-05T10:00:00"}, "invalid_request"),
        ({"to": "not a date"}, "invalid_request"),
    ]
    for query, code in cases:
        answers = {backend: _report(clients[backend], KEY_A, query) for backend in BACKENDS}
        fastapi, django = answers["fastapi"], answers["django"]
        assert fastapi.status_code == 422, fastapi.text
        assert fastapi.headers["content-type"] == "application/problem+json"
        assert fastapi.json()["code"] == code
        assert (fastapi.status_code, fastapi.content) == (django.status_code, django.content)
    unauthenticated = {
        backend: clients[backend].get("/api/v1/usage", headers={"X-Request-ID": "usage-parity"})
        for backend in BACKENDS
    }
    assert unauthenticated["fastapi"].status_code == 401
    assert unauthenticated["fastapi"].content == unauthenticated["django"].content
