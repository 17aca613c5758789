"""Redis killed (SIGKILL) under a real ``synthstack serve`` (each backend) running with
``REDIS_URL`` and ``SYNTHSTACK_RATE_LIMITS``, then started again on the same port.

While Redis is away: no 500; every answer still carries its ``RateLimit`` headers (the limiter
counts in the process, afresh); embeddings are served uncached; ``/ready`` stays 200 (Redis is not
required) and its ``cache`` entry says what the outage means. Redis back: after the pause
(5 s, ``ratelimits.py`` and ``stores/cache.py``) the counters are in Redis again, read here with
the redis client under the ``synthstack:ratelimit`` prefix, and ``/ready``'s ``cache`` is ok.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from synthstack_core.features.health import CACHE_DOWN_NOTE
from tests.faults.support import AUTH, Server

PREFIX = "synthstack:ratelimit"
QUOTA = 500
#: The longest a request may take while Redis is away (its client's timeouts are 0.5 s).
BOUND_SECONDS = 5.0


def _counters(url: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return list(client.scan_iter(f"{PREFIX}*"))
    finally:
        client.close()


@pytest.fixture
def redis_to_kill(redis_server: Any) -> Iterator[Any]:
    """The session's Redis without rate-limit counters, running again after the test."""

    def clear() -> None:
        client = redis.Redis.from_url(redis_server.url)
        try:
            keys = list(client.scan_iter(f"{PREFIX}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    clear()
    yield redis_server
    if redis_server.process is None:
        redis_server.start()
    clear()


def _remaining(response: httpx.Response) -> int:
    """``r`` of ``RateLimit: "embeddings";r=N;t=S``."""
    assert response.status_code == 200, response.text
    assert response.headers["ratelimit-policy"] == f'"embeddings";q={QUOTA};w=60'
    fields = dict(part.split("=") for part in response.headers["ratelimit"].split(";")[1:])
    return int(fields["r"])


def _timed(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    started = time.monotonic()
    response = client.request(method, path, **kwargs)
    assert time.monotonic() - started <= BOUND_SECONDS, (path, time.monotonic() - started)
    assert response.status_code < 500, response.text
    return response


@pytest.mark.parametrize("backend", ["fastapi", "django"])
def test_redis_killed_and_started_again_under_a_server(
    backend: str, module_database_url: str, redis_to_kill: Any, tmp_path: Path
) -> None:
    server = Server(
        backend,
        module_database_url,
        tmp_path / "server.log",
        {"REDIS_URL": redis_to_kill.url, "SYNTHSTACK_RATE_LIMITS": f"embeddings={QUOTA}/minute"},
    )
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as client:
            # Redis up: counted there.
            first = [_remaining(_timed(client, "GET", "/api/v1/embeddings/models")) for _ in "ab"]
            assert first[1] == first[0] - 1
            assert _counters(redis_to_kill.url), "nothing counted in Redis"
            body = {"text": f"a heron on {backend}"}
            assert (
                _timed(client, "POST", "/api/v1/embeddings/generate", json=body).status_code == 200
            )

            redis_to_kill.process.kill()  # SIGKILL: no goodbye to its clients
            redis_to_kill.process.wait(10)
            redis_to_kill.process = None

            # Counted in the process, afresh (its own counter), and never a 500.
            during = [_remaining(_timed(client, "GET", "/api/v1/embeddings/models")) for _ in "abc"]
            assert during == [QUOTA - 1, QUOTA - 2, QUOTA - 3], during
            embedded = _timed(client, "POST", "/api/v1/embeddings/generate", json=body)
            assert embedded.status_code == 200 and embedded.headers["ratelimit"]
            assert _timed(client, "GET", "/api/v1/rag/collections").status_code == 200
            ready = _timed(client, "GET", "/ready")
            assert ready.status_code == 200, ready.text  # Redis is not required
            cache = ready.json()["checks"]["cache"]
            assert cache["status"] == "error" and cache["required"] is False, cache
            assert cache["detail"] == f"unreachable (ConnectionError){CACHE_DOWN_NOTE}", cache
            assert "rate limits counted in each process" in CACHE_DOWN_NOTE

            redis_to_kill.start()  # the same port, empty (no persistence)
            assert not _counters(redis_to_kill.url)
            # Used again once its pause is over (5 s): a counter appears in Redis, and the
            # remaining count is Redis's (afresh), not the process's.
            deadline = time.monotonic() + 30
            left = None
            while not _counters(redis_to_kill.url):
                assert time.monotonic() < deadline, server.output()[-4000:]
                left = _remaining(_timed(client, "GET", "/api/v1/embeddings/models"))
                time.sleep(0.5)
            assert left == QUOTA - 1  # the request that made the counter: Redis's count
            back = [_remaining(_timed(client, "GET", "/api/v1/embeddings/models")) for _ in "ab"]
            assert back == [QUOTA - 2, QUOTA - 3], back
            ready = _timed(client, "GET", "/ready")
            assert ready.json()["checks"]["cache"]["status"] == "ok", ready.text
    finally:
        server.stop()
