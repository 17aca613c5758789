"""Anthropic through the real ``anthropic`` SDK against the local stub, on both backends.

Both apps are rebuilt here with ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` set and
``SYNTHSTACK_LLM_MODEL`` naming an Anthropic model: a FastAPI app of its own, and the process's
Django service restarted with them (and restarted again, without them, afterwards).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from synthstack_testing import AnthropicStub
from synthstack_testing.chat_stub import expected_chat_reply
from tests.parity.conftest import AUTH, rebuilt_clients
from tests.parity.test_generation import _mask, events_of

MODEL = "claude-haiku-4-5"


@pytest.fixture(scope="module")
def anthropic_stub() -> Iterator[AnthropicStub]:
    with AnthropicStub() as stub:
        yield stub


@pytest.fixture(scope="module")
def anthropic_clients(
    anthropic_stub: AnthropicStub, django_app: Any, clients: dict[str, httpx.Client]
) -> Iterator[dict[str, httpx.Client]]:
    env = {
        "ANTHROPIC_API_KEY": anthropic_stub.api_key,
        "ANTHROPIC_BASE_URL": anthropic_stub.base_url,
        "SYNTHSTACK_LLM_MODEL": MODEL,
    }
    with rebuilt_clients(django_app, env) as rebuilt:
        yield rebuilt


def _both(clients: dict[str, httpx.Client], path: str, body: Any = None) -> list[httpx.Response]:
    return [
        clients[name].request("POST" if body else "GET", path, headers=AUTH, json=body)
        for name in ("fastapi", "django")
    ]


def test_anthropic_models_are_listed_and_default(
    anthropic_clients: dict[str, httpx.Client],
) -> None:
    answers = _both(anthropic_clients, "/api/v1/generation/models")
    assert answers[0].json() == answers[1].json()
    listed = answers[0].json()
    assert listed["default"] == MODEL
    assert {m["provider"] for m in listed["models"]} == {"openai", "anthropic", "local"}


def test_chat_through_anthropic(anthropic_clients: dict[str, httpx.Client]) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me about the moon"},
        ],
        "max_tokens": 40,
    }
    answers = _both(anthropic_clients, "/api/v1/generation/chat", body)
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    first = answers[0].json()
    assert first["model"] == MODEL
    expected = expected_chat_reply(MODEL, "Tell me about the moon", max_tokens=40)
    assert first["message"]["content"] == expected.content
    assert _mask(first) == _mask(answers[1].json())


def test_streamed_text_through_anthropic(anthropic_clients: dict[str, httpx.Client]) -> None:
    body = {"prompt": "Stream about comets", "stream": True, "max_tokens": 5}
    answers = _both(anthropic_clients, "/api/v1/generation/text", body)
    streams = [events_of(answer) for answer in answers]
    assert _mask(streams[0]) == _mask(streams[1])
    done = streams[0][-1]
    assert done[0] == "done" and done[1]["finish_reason"] == "length"
    assert done[1]["usage"]["completion_tokens"] == 5


def test_anthropic_rate_limit_is_a_429(
    anthropic_clients: dict[str, httpx.Client], anthropic_stub: AnthropicStub
) -> None:
    problems = []
    for name in ("fastapi", "django"):
        anthropic_stub.fail_next(429, retry_after=3)
        response = anthropic_clients[name].post(
            "/api/v1/generation/text", headers=AUTH, json={"prompt": "hi"}
        )
        assert response.status_code == 429, response.text
        assert response.headers["retry-after"] == "3"
        problems.append(_mask(response.json()))
    assert problems[0] == problems[1]


def test_a_conversation_must_start_with_the_user_for_anthropic(
    anthropic_clients: dict[str, httpx.Client], clients: dict[str, httpx.Client]
) -> None:
    body = {"messages": [{"role": "assistant", "content": "Hello!"}], "model": MODEL}
    answers = _both(anthropic_clients, "/api/v1/generation/chat", body)
    assert [a.status_code for a in answers] == [422, 422]
    assert _mask(answers[0].json()) == _mask(answers[1].json())
    only_system = {"messages": [{"role": "system", "content": "Be brief."}]}
    answers = _both(anthropic_clients, "/api/v1/generation/chat", only_system)
    assert [a.status_code for a in answers] == [422, 422]
