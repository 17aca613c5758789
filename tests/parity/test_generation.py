"""``/api/v1/generation/*`` on both backends: the real ``openai`` SDK against the local stub, and
the local SmolLM2 model; plain and streamed answers, and every failure, answered alike."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from synthstack_testing import OpenAIStub
from synthstack_testing.chat_stub import expected_chat_reply
from tests.parity.conftest import AUTH

BACKENDS = ["fastapi", "django"]
LOCAL_MODEL = "smollm2-135m-instruct"


def events_of(response: httpx.Response) -> list[tuple[str, Any]]:
    """The server-sent events of a response, checking the framing byte by byte."""
    assert response.headers["content-type"] == "text/event-stream"
    events = []
    text = response.text
    assert text.endswith("\n\n")
    for block in text.split("\n\n")[:-1]:
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        events.append((name_line.removeprefix("event: "), json.loads(data_line[6:])))
    return events


def _mask(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: "<masked>" if key in {"id", "processing_time_ms", "request_id"} else _mask(value)
            for key, value in node.items()
        }
    if isinstance(node, list | tuple):
        return [_mask(item) for item in node]
    return node


def _both(clients: dict[str, httpx.Client], url: str, **kwargs: Any) -> list[httpx.Response]:
    return [clients[name].request(url=url, headers=AUTH, **kwargs) for name in BACKENDS]


@pytest.fixture(autouse=True)
def _fresh_stub(openai_stub: OpenAIStub) -> None:
    openai_stub.reset()


def test_models_list_only_what_is_served(clients: dict[str, httpx.Client]) -> None:
    answers = _both(clients, "/api/v1/generation/models", method="GET")
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    listed = answers[0].json()
    ids = [model["id"] for model in listed["models"]]
    assert LOCAL_MODEL in ids
    providers = {model["provider"] for model in listed["models"]}
    assert providers == {"openai", "local"}  # no Anthropic key in this environment
    default = [model for model in listed["models"] if model["default"]]
    assert len(default) == 1 and default[0]["id"] == listed["default"]
    assert default[0]["provider"] == "openai"  # a remote provider is configured


def test_text_generation_through_the_openai_sdk(clients: dict[str, httpx.Client]) -> None:
    body = {"prompt": "Write about the sea", "max_tokens": 64, "temperature": 0.1}
    answers = _both(clients, "/api/v1/generation/text", method="POST", json=body)
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    first = answers[0].json()
    expected = expected_chat_reply(first["model"], body["prompt"], max_tokens=64)
    assert first["content"] == expected.content
    assert first["finish_reason"] == "stop"
    assert first["usage"]["completion_tokens"] == expected.completion_tokens
    assert first["id"].startswith("gen_")
    assert _mask(first) == _mask(answers[1].json())


def test_chat_generation_and_length_finish(clients: dict[str, httpx.Client]) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me about mountains and rivers"},
        ],
        "max_tokens": 3,
    }
    answers = _both(clients, "/api/v1/generation/chat", method="POST", json=body)
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    first = answers[0].json()
    expected = expected_chat_reply(
        first["model"], "Tell me about mountains and rivers", max_tokens=3
    )
    assert first["message"] == {"role": "assistant", "content": expected.content}
    assert first["finish_reason"] == "length"
    assert _mask(first) == _mask(answers[1].json())


def test_streamed_text_is_framed_identically(clients: dict[str, httpx.Client]) -> None:
    body = {"prompt": "Stream me a story about owls", "stream": True, "max_tokens": 40}
    answers = _both(clients, "/api/v1/generation/text", method="POST", json=body)
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    streams = [events_of(answer) for answer in answers]
    assert _mask(streams[0]) == _mask(streams[1])
    names = [name for name, _ in streams[0]]
    assert names[-1] == "done" and set(names[:-1]) == {"delta"} and len(names) > 3
    done = streams[0][-1][1]
    expected = expected_chat_reply(done["model"], body["prompt"], max_tokens=40)
    assert "".join(data["text"] for name, data in streams[0][:-1]) == expected.content
    assert done["finish_reason"] == "stop"
    assert done["usage"]["completion_tokens"] == expected.completion_tokens
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store"
        assert "content-length" not in answer.headers


def test_streamed_chat(clients: dict[str, httpx.Client]) -> None:
    body = {"messages": [{"role": "user", "content": "hello there"}], "stream": True}
    answers = _both(clients, "/api/v1/generation/chat", method="POST", json=body)
    streams = [events_of(answer) for answer in answers]
    assert _mask(streams[0]) == _mask(streams[1])
    assert streams[0][-1][0] == "done"


@pytest.mark.parametrize("garbage", [False, True], ids=["connection cut", "garbage event"])
def test_a_stream_broken_midway_ends_with_an_error_event(
    clients: dict[str, httpx.Client], openai_stub: OpenAIStub, garbage: bool
) -> None:
    streams = []
    for backend in BACKENDS:
        openai_stub.break_stream_next(after_chunks=2, garbage=garbage)
        response = clients[backend].post(
            "/api/v1/generation/text",
            headers=AUTH,
            json={"prompt": "a long answer please", "stream": True},
        )
        assert response.status_code == 200
        streams.append(events_of(response))
    assert _mask(streams[0]) == _mask(streams[1])
    names = [name for name, _ in streams[0]]
    assert names[-1] == "error" and "done" not in names
    problem = streams[0][-1][1]
    assert problem["status"] == 502 and problem["code"] == "provider_error"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"prompt": "x", "model": "no-such-model"}, 422, "model_not_available"),
        ({"prompt": "x", "max_tokens": 0}, 422, "invalid_request"),
        ({"prompt": "x", "max_tokens": 16_384, "model": LOCAL_MODEL}, 422, "invalid_request"),
        ({"prompt": ""}, 422, "invalid_request"),
        ({"prompt": "x", "temperature": 2.5}, 422, "invalid_request"),
        ({"prompt": "x", "stream": "yes"}, 422, "invalid_request"),
    ],
)
def test_bad_text_requests(
    clients: dict[str, httpx.Client], body: dict[str, Any], status: int, code: str
) -> None:
    answers = _both(clients, "/api/v1/generation/text", method="POST", json=body)
    assert [a.status_code for a in answers] == [status, status]
    problems = [_mask(answer.json()) for answer in answers]
    assert problems[0] == problems[1]
    assert problems[0]["code"] == code


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "wizard", "content": "hi"}],
        [{"role": "user"}],
        [{"role": "user", "content": "hi", "name": "x"}],
    ],
)
def test_bad_chat_requests(clients: dict[str, httpx.Client], messages: list[Any]) -> None:
    answers = _both(clients, "/api/v1/generation/chat", method="POST", json={"messages": messages})
    assert [a.status_code for a in answers] == [422, 422]
    assert _mask(answers[0].json()) == _mask(answers[1].json())


@pytest.mark.parametrize("stream", [False, True])
def test_provider_rate_limit_is_a_429_with_retry_after(
    clients: dict[str, httpx.Client], openai_stub: OpenAIStub, stream: bool
) -> None:
    problems = []
    for backend in BACKENDS:
        openai_stub.fail_next(429, retry_after=7)
        response = clients[backend].post(
            "/api/v1/generation/text", headers=AUTH, json={"prompt": "hi", "stream": stream}
        )
        # A failure before the first event is an ordinary problem response, streamed or not.
        assert response.status_code == 429, response.text
        assert response.headers["retry-after"] == "7"
        problems.append(_mask(response.json()))
    assert problems[0] == problems[1]
    assert "sk-" not in json.dumps(problems[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_local_model_generates_offline(clients: dict[str, httpx.Client], backend: str) -> None:
    response = clients[backend].post(
        "/api/v1/generation/chat",
        headers=AUTH,
        json={
            "messages": [{"role": "user", "content": "Name a colour."}],
            "model": LOCAL_MODEL,
            "max_tokens": 6,
            "temperature": 0,
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == LOCAL_MODEL
    assert answer["message"]["content"].strip()
    assert 1 <= answer["usage"]["completion_tokens"] <= 6
    assert answer["usage"]["prompt_tokens"] > 5
