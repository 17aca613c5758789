"""``/api/v1/analysis/*`` and ``/api/v1/complexity/*`` on both backends.

Offline analysers: test_language_offline.py; analyses from a chat model:
test_language_llm.py. Here: what both share (the scale, generation with context, bad input).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.parity.conftest import AUTH

BACKENDS = ["fastapi", "django"]
REVIEW = (
    "The new release is wonderful: setup took five minutes and the docs are clear. "
    "Sadly the export feature is terrible and broken, and the awful support ignored me."
)


def _mask(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: "<masked>" if k == "request_id" else _mask(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask(item) for item in node]
    return node


def _both(clients: dict[str, httpx.Client], path: str, body: Any = None) -> list[httpx.Response]:
    return [
        clients[name].request("POST" if body is not None else "GET", path, headers=AUTH, json=body)
        for name in BACKENDS
    ]


def test_scale_is_identical(clients: dict[str, httpx.Client]) -> None:
    answers = _both(clients, "/api/v1/complexity/scale")
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()


def test_generate_with_context_uses_the_chat_model(clients: dict[str, httpx.Client]) -> None:
    body = {"prompt": "Write a tagline", "context": "A bakery in Lyon", "max_tokens": 30}
    body["temperature"] = 0
    answers = _both(clients, "/api/v1/analysis/generate", body)
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["model"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/analysis/sentiment", {"text": ""}),
        ("/api/v1/analysis/keywords", {"text": "x", "max_keywords": 51}),
        ("/api/v1/analysis/keywords", {"text": "x", "max_keywords": 0}),
        ("/api/v1/analysis/classify", {"text": "x", "categories": []}),
        ("/api/v1/analysis/classify", {"text": "x", "categories": ["a", "A "]}),
        ("/api/v1/analysis/summarize", {"text": "x", "max_length": 9}),
        ("/api/v1/analysis/summarize", {"text": "x", "max_length": 1001}),
        ("/api/v1/analysis/summarize", {"text": "x", "max_sentences": 21}),
        ("/api/v1/analysis/text", {"text": "x", "analyses": ["sentiment", "poetry"]}),
        ("/api/v1/analysis/generate", {"prompt": "x", "max_tokens": 0}),
        ("/api/v1/complexity/estimate", {"description": "no title"}),
        ("/api/v1/complexity/adjustment", {"pre_level": 0, "actual_level": 6}),
        ("/api/v1/complexity/analyze", {"lines_added": -1, "lines_removed": 0, "files_changed": 1}),
    ],
)
def test_bad_input_is_refused_alike(
    clients: dict[str, httpx.Client], path: str, body: dict[str, Any]
) -> None:
    answers = _both(clients, path, body)
    assert [a.status_code for a in answers] == [422, 422], answers[0].text
    assert _mask(answers[0].json()) == _mask(answers[1].json())
