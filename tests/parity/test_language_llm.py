"""Analyses from a remote chat model (``SYNTHSTACK_ANALYSIS_LLM=auto``), on both backends.

The chat model is the OpenAI stub, whose JSON answer is no analysis: every analysis must then be a
clear 502 ``provider_error`` (never a 500, never the stub's text), alike on both backends. Both
apps are built here with the setting on: a FastAPI app of its own, and the process's Django
service restarted with it (and restarted again, without it, afterwards).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.parity.conftest import rebuilt_clients
from tests.parity.test_language import REVIEW, _both, _mask


@pytest.fixture(scope="module")
def llm_clients(
    service_env: dict[str, str], django_app: Any, clients: dict[str, httpx.Client]
) -> Iterator[dict[str, httpx.Client]]:
    """Both backends with analyses from the chat model."""
    with rebuilt_clients(django_app, {"SYNTHSTACK_ANALYSIS_LLM": "auto"}) as rebuilt:
        yield rebuilt


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/analysis/sentiment", {"text": REVIEW}),
        ("/api/v1/analysis/summarize", {"text": REVIEW}),
        ("/api/v1/analysis/keywords", {"text": REVIEW}),
        ("/api/v1/analysis/classify", {"text": REVIEW, "categories": ["a", "b"]}),
        ("/api/v1/analysis/text", {"text": REVIEW, "analyses": ["keywords", "sentiment"]}),
        ("/api/v1/complexity/estimate", {"title": "Fix a typo"}),
    ],
)
def test_an_unusable_chat_model_answer_is_a_502(
    llm_clients: dict[str, httpx.Client], path: str, body: dict[str, Any]
) -> None:
    answers = _both(llm_clients, path, body)
    assert [a.status_code for a in answers] == [502, 502], answers[0].text
    problems = [_mask(answer.json()) for answer in answers]
    assert problems[0] == problems[1] and problems[0]["code"] == "provider_error"
    assert "Stub reply" not in answers[0].text


@pytest.mark.parametrize(
    "analyses", [["keywords", "sentiment"], ["sentiment", "keywords"], ["summary", "keywords"]]
)
def test_the_first_unusable_analysis_in_the_request_answers(
    llm_clients: dict[str, httpx.Client], analyses: list[str]
) -> None:
    """Whichever model answer arrives first, the error is that of the first analysis asked for."""
    for _ in range(3):
        answers = _both(
            llm_clients, "/api/v1/analysis/text", {"text": REVIEW, "analyses": analyses}
        )
        for answer in answers:
            assert answer.status_code == 502
            assert f"model's {analyses[0]} is unusable" in answer.json()["detail"]


def test_complexity_analysis_needs_no_model(llm_clients: dict[str, httpx.Client]) -> None:
    answers = _both(
        llm_clients,
        "/api/v1/complexity/analyze",
        {"lines_added": 10, "lines_removed": 2, "files_changed": 1},
    )
    assert [a.status_code for a in answers] == [200, 200]
