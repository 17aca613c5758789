"""Admission control on both backends: one request runs at a time (``SYNTHSTACK_MAX_ACTIVE_REQUESTS
=1``), and the queue is filled for real with requests held by the OpenAI stub (``delay_next``: its
embeddings answer late), so the requests waiting and the one refused are known, not raced.

Over the queue's bound, a request is refused at once with the same 503 ``overloaded`` problem and a
``Retry-After`` on both backends, while the probes still answer; under the bound nothing is refused
and every request is answered in turn.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from synthstack_testing import OpenAIStub
from tests.parity.conftest import AUTH, rebuilt_clients

BACKENDS = ["fastapi", "django"]
QUEUE_BOUND = 2
#: How long the stub holds each embedding: the time a request keeps its place.
HOLD_SECONDS = 1.5


@pytest.fixture(scope="module")
def bounded(django_app: Any) -> Iterator[dict[str, httpx.Client]]:
    """Both backends running one request at a time, with ``QUEUE_BOUND`` waiting at most."""
    env = {
        "SYNTHSTACK_MAX_ACTIVE_REQUESTS": "1",
        "SYNTHSTACK_MAX_QUEUED_REQUESTS": str(QUEUE_BOUND),
        "SYNTHSTACK_PROVIDER_TIMEOUT_SECONDS": "30",
    }
    with rebuilt_clients(django_app, env) as clients:
        yield clients


def _queued() -> float:
    return REGISTRY.get_sample_value("synthstack_http_requests_queued") or 0.0


def _shed(operation_id: str) -> float:
    name = "synthstack_http_shed_requests_total"
    return REGISTRY.get_sample_value(name, {"operation_id": operation_id}) or 0.0


def _wait_for(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _embed(client: httpx.Client, text: str) -> httpx.Response:
    return client.post(
        "/api/v1/embeddings/generate",
        headers=AUTH,
        json={"text": text, "model": "text-embedding-3-small"},
    )


def _fill(
    pool: ThreadPoolExecutor, client: httpx.Client, stub: OpenAIStub, label: str, waiting: int
) -> list[Future[httpx.Response]]:
    """One request running (held by the stub) and ``waiting`` more in the queue, each sent once
    the previous one is in place (texts of their own under ``label``: none is in the cache)."""
    running = pool.submit(_embed, client, f"the one running on {label}")
    _wait_for(lambda: len(stub.requests) == 1, "the first request to reach the provider")
    queued = []
    for n in range(waiting):
        queued.append(pool.submit(_embed, client, f"waiting {n} on {label}"))
        _wait_for(lambda n=n: _queued() == n + 1, f"{n + 1} requests queued")
    return [running, *queued]


@pytest.fixture
def stub(openai_stub: OpenAIStub) -> Iterator[OpenAIStub]:
    openai_stub.reset()
    yield openai_stub
    openai_stub.reset()


def test_a_full_queue_refuses_at_once_with_503_and_retry_after(
    bounded: dict[str, httpx.Client], stub: OpenAIStub
) -> None:
    problems = []
    for backend in BACKENDS:
        client = bounded[backend]
        stub.reset()
        stub.delay_next(HOLD_SECONDS, times=1 + QUEUE_BOUND)
        shed_before = _shed("embeddings-generate")
        with ThreadPoolExecutor(1 + QUEUE_BOUND) as pool:
            held = _fill(pool, client, stub, f"{backend} (full)", QUEUE_BOUND)
            started = time.monotonic()
            refused = _embed(client, f"one too many on {backend}")
            elapsed = time.monotonic() - started
            # The probes are never queued nor refused, even now.
            health = client.get("/health")
            ready = client.get("/ready")
            answered = [future.result(timeout=60) for future in held]

        assert refused.status_code == 503, refused.text
        assert elapsed < HOLD_SECONDS, f"refused after {elapsed:.2f}s: it waited"
        assert refused.headers["content-type"] == "application/problem+json"
        # One running and two waiting, each holding its place ~1.5 s: about 3 s for a newcomer.
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 10
        problem = refused.json()
        assert problem["code"] == "overloaded" and problem["status"] == 503
        assert _shed("embeddings-generate") == shed_before + 1
        assert health.status_code == 200 and ready.status_code == 200, (health.text, ready.text)
        # The requests admitted are all answered, the refused one never reached the provider.
        assert [r.status_code for r in answered] == [200] * (1 + QUEUE_BOUND)
        assert len(stub.requests) == 1 + QUEUE_BOUND
        problems.append({k: v for k, v in problem.items() if k != "request_id"})
    assert problems[0] == problems[1]


def test_nothing_is_refused_under_the_bound(
    bounded: dict[str, httpx.Client], stub: OpenAIStub
) -> None:
    for backend in BACKENDS:
        client = bounded[backend]
        stub.reset()
        stub.delay_next(0.3, times=1 + QUEUE_BOUND)
        shed_before = _shed("embeddings-generate")
        with ThreadPoolExecutor(1 + QUEUE_BOUND) as pool:
            # The queue exactly full: one running, QUEUE_BOUND waiting.
            held = _fill(pool, client, stub, f"{backend} (under)", QUEUE_BOUND)
            answered = [future.result(timeout=60) for future in held]
        assert [r.status_code for r in answered] == [200] * (1 + QUEUE_BOUND), [
            r.text for r in answered
        ]
        assert _shed("embeddings-generate") == shed_before
        assert _queued() == 0
        # Served one at a time, in the order they came: the provider saw them so.
        texts = [request.body["input"] for request in stub.requests]
        assert texts == [
            [f"the one running on {backend} (under)"],
            *([f"waiting {n} on {backend} (under)"] for n in range(QUEUE_BOUND)),
        ], texts
