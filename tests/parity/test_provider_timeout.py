"""A provider that hangs, on both backends: the real ``openai`` SDK against the OpenAI stub, which
holds its answer (``delay_next``) far longer than ``SYNTHSTACK_PROVIDER_TIMEOUT_SECONDS`` (1 s
here; the SDK's retries are off in the parity suite). Chat (plain and streamed) and embeddings
answer a 504 ``provider_timeout`` problem once the timeout has passed, not when the provider would
have answered, and both backends answer alike. (A provider's 429 with its ``Retry-After``:
``test_generation.py::test_provider_rate_limit_is_a_429_with_retry_after``.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from synthstack_testing import OpenAIStub
from tests.parity.conftest import AUTH, rebuilt_clients

BACKENDS = ["fastapi", "django"]
TIMEOUT_SECONDS = 1.0
#: How long the stub holds each answer: a hang, as far as the service is concerned.
HANG_SECONDS = 20.0


@pytest.fixture(scope="module")
def hasty(django_app: Any) -> Iterator[dict[str, httpx.Client]]:
    """Both backends with a 1 s provider timeout."""
    env = {"SYNTHSTACK_PROVIDER_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS)}
    with rebuilt_clients(django_app, env) as clients:
        yield clients


CALLS = {
    "text": ("/api/v1/generation/text", {"prompt": "Are you there?"}),
    "text-streamed": ("/api/v1/generation/text", {"prompt": "Still there?", "stream": True}),
    "embedding": (
        "/api/v1/embeddings/generate",
        {"text": "a hanging heron", "model": "text-embedding-3-small"},
    ),
}


@pytest.mark.parametrize("call", CALLS)
def test_a_hanging_provider_is_a_504_within_the_timeout(
    hasty: dict[str, httpx.Client], openai_stub: OpenAIStub, call: str
) -> None:
    path, body = CALLS[call]
    problems = []
    for backend in BACKENDS:
        openai_stub.reset()
        openai_stub.delay_next(HANG_SECONDS)
        started = time.monotonic()
        sent = dict(body)
        if "text" in sent:  # each backend its own text: one answered before is in the cache
            sent["text"] = f"{sent['text']} on {backend}"
        response = hasty[backend].post(path, headers=AUTH, json=sent)
        elapsed = time.monotonic() - started
        asked = len(openai_stub.requests)
        openai_stub.reset()
        assert response.status_code == 504, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "provider_timeout" and problem["status"] == 504
        # The provider was asked once, and given up after the timeout, long before its answer.
        assert asked == 1
        assert TIMEOUT_SECONDS <= elapsed < TIMEOUT_SECONDS + 4, elapsed
        problems.append({k: v for k, v in problem.items() if k != "request_id"})
    assert problems[0] == problems[1]
