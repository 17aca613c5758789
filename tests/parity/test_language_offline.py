"""The offline analysers and complexity estimator on both backends, with no remote provider.

Both apps are (re)built here without the OpenAI settings: a FastAPI app of its own, and the
process's Django service restarted without them (and restarted again, with them, afterwards).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.parity.conftest import AUTH
from tests.parity.test_language import REVIEW, _both


@pytest.fixture(scope="module")
def offline_clients(
    service_env: dict[str, str], django_app: Any, clients: dict[str, httpx.Client]
) -> Iterator[dict[str, httpx.Client]]:
    """A FastAPI app built with no remote provider, and the Django app likewise.

    The Django project reads its settings from the environment when its service starts; it is
    restarted here without the OpenAI settings and restarted again afterwards.
    """
    from fastapi.testclient import TestClient

    from synthstack_core import Settings
    from synthstack_django.service import reset_stack
    from synthstack_fastapi import create_app

    removed = {name: os.environ.pop(name) for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    reset_stack()
    try:
        with (
            TestClient(create_app(Settings()), raise_server_exceptions=False) as fastapi,
            httpx.Client(
                transport=httpx.WSGITransport(app=django_app), base_url="http://testserver"
            ) as django,
        ):
            yield {"fastapi": fastapi, "django": django}
    finally:
        os.environ.update(removed)
        reset_stack()


OFFLINE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/analysis/sentiment", {"text": REVIEW, "include_aspects": True}),
    ("/api/v1/analysis/summarize", {"text": REVIEW * 3, "max_length": 2}),
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
