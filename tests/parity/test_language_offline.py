"""The offline analysers and complexity estimator on both backends.

The parity environment sets ``SYNTHSTACK_ANALYSIS_LLM=off``: even with a remote provider
configured, analyses come from VADER, TextRank, YAKE, embeddings and the offline estimator.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.parity.conftest import AUTH
from tests.parity.test_language import REVIEW, _both


@pytest.fixture
def offline_clients(clients: dict[str, httpx.Client]) -> dict[str, httpx.Client]:
    """The parity apps: SYNTHSTACK_ANALYSIS_LLM=off there, so analyses are offline."""
    return clients


OFFLINE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/analysis/sentiment", {"text": REVIEW, "include_aspects": True}),
    ("/api/v1/analysis/summarize", {"text": REVIEW * 3, "max_length": 20}),
    ("/api/v1/analysis/summarize", {"text": REVIEW * 3, "max_length": 100, "max_sentences": 1}),
    ("/api/v1/analysis/keywords", {"text": REVIEW, "max_keywords": 5}),
    (
        "/api/v1/analysis/classify",
        {"text": "The invoice total is wrong", "categories": ["billing", "weather", "sports"]},
    ),
    ("/api/v1/analysis/text", {"text": REVIEW}),
    (
        "/api/v1/complexity/estimate",
        {
            "title": "Fix typo in README",
            "description": "The word 'recieve' is misspelled.",
            "issue_type": "bug",
            "labels": ["docs"],
        },
    ),
    (
        "/api/v1/complexity/analyze",
        {
            "lines_added": 420,
            "lines_removed": 80,
            "files_changed": 12,
            "commits": 9,
            "review_comments": 14,
            "time_to_merge_hours": 30,
            "pre_complexity_score": 2,
        },
    ),
    ("/api/v1/complexity/adjustment", {"pre_level": 2, "actual_level": 4}),
]


@pytest.mark.parametrize(("path", "body"), OFFLINE_CASES, ids=[c[0] for c in OFFLINE_CASES])
def test_offline_answers_are_identical(
    offline_clients: dict[str, httpx.Client], path: str, body: dict[str, Any]
) -> None:
    answers = _both(offline_clients, path, body)
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    assert answers[0].json() == answers[1].json()


def test_offline_results_make_sense(offline_clients: dict[str, httpx.Client]) -> None:
    client = offline_clients["fastapi"]
    sentiment = client.post(
        "/api/v1/analysis/sentiment", headers=AUTH, json={"text": REVIEW}
    ).json()
    assert sentiment["sentiment"] == "mixed" and sentiment["model"] == "vader-3.3.2"
    classified = client.post(
        "/api/v1/analysis/classify",
        headers=AUTH,
        json={"text": "The invoice total is wrong", "categories": ["billing", "weather"]},
    ).json()
    assert classified["classifications"][0]["category"] == "billing"
    assert abs(sum(c["confidence"] for c in classified["classifications"]) - 1) < 1e-6
    summary = client.post(
        "/api/v1/analysis/summarize",
        headers=AUTH,
        json={"text": REVIEW * 3, "max_length": 20, "max_sentences": 2},
    ).json()
    assert summary["summary"] and len(summary["summary"].split()) <= 20
    assert 1 <= len(summary["key_points"]) <= 2
    assert all(point in REVIEW for point in summary["key_points"])
    estimate = client.post(
        "/api/v1/complexity/estimate",
        headers=AUTH,
        json={
            "title": "Migrate every service from MySQL to PostgreSQL",
            "description": "- rewrite the data layer\n- dual writes\n- backfill\n- cut over",
            "issue_type": "epic",
            "related_files": [f"services/s{i}/db.py" for i in range(12)],
        },
    ).json()
    assert estimate["complexity_score"] >= 4
    assert estimate["factors"] and estimate["reasoning"]
    scale = client.get("/api/v1/complexity/scale", headers=AUTH).json()
    assert [level["points"] for level in scale["levels"]] == [5, 10, 20, 35, 50]
