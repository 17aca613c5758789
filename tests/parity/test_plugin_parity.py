"""A plugin's operation on both backends: the example plugin (examples/synthstack-readability),
installed in the test environment as any pip-installed plugin is, answers the same bytes on both.

Neither adapter has code for it: their routes come from the operations the core computes (the
built-in modules' and the installed plugins'), and the served document merges its fragment.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from synthstack_core import Settings
from tests.parity.conftest import AUTH, KEY_B

PATH = "/api/v1/readability"
TEXT = (
    "Readability is the ease with which a reader can understand a written text. In natural "
    "language, the readability of text depends on its content and its presentation."
)


def _both(
    clients: dict[str, httpx.Client], name: str, **request: Any
) -> tuple[int, dict[str, Any]]:
    """Send one request to both backends; they must answer the same status, headers and body."""
    headers = {"X-Request-ID": f"plugin-{name}", **request.pop("headers", {})}
    answers = {
        backend: client.request("POST", PATH, headers=headers, **request)
        for backend, client in clients.items()
    }
    fastapi, django = answers["fastapi"], answers["django"]
    assert (fastapi.status_code, fastapi.content) == (django.status_code, django.content)
    for header in ("content-type", "x-request-id", "www-authenticate"):
        assert fastapi.headers.get(header) == django.headers.get(header), header
    body: dict[str, Any] = json.loads(fastapi.content)
    return fastapi.status_code, body


def test_a_text_is_scored(clients: dict[str, httpx.Client]) -> None:
    status, body = _both(clients, "score", headers=AUTH, json={"text": TEXT})
    assert status == 200
    assert body == {
        "sentences": 2,
        "words": 27,
        "syllables": 47,
        "syllables_estimated": 0,
        "flesch_reading_ease": 45.87,
        "flesch_kincaid_grade": 10.22,
    }


def test_a_text_without_words_has_no_score(clients: dict[str, httpx.Client]) -> None:
    status, body = _both(clients, "no-words", headers={"X-API-Key": KEY_B}, json={"text": "42!"})
    assert status == 200
    assert body["words"] == 0 and body["flesch_reading_ease"] is None


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_text_is_a_422(clients: dict[str, httpx.Client], text: str) -> None:
    status, body = _both(clients, f"empty-{len(text)}", headers=AUTH, json={"text": text})
    assert status == 422 and body["code"] == "invalid_request"
    assert [error["loc"] for error in body["errors"]] == [["text"]]


def test_a_text_over_the_plugins_limit_is_a_413(clients: dict[str, httpx.Client]) -> None:
    # SYNTHSTACK_READABILITY_MAX_CHARS: 100,000 characters by default.
    status, body = _both(clients, "too-long", headers=AUTH, json={"text": "word " * 20_001})
    assert status == 413 and body["code"] == "text_too_long"
    assert "SYNTHSTACK_READABILITY_MAX_CHARS" in body["detail"]


def test_the_core_checks_come_first(clients: dict[str, httpx.Client]) -> None:
    status, body = _both(clients, "no-key", json={"text": TEXT})
    assert (status, body["code"]) == (401, "missing_api_key")
    status, body = _both(
        clients, "not-json", headers={**AUTH, "Content-Type": "application/json"}, content=b"{"
    )
    assert (status, body["code"]) == (400, "malformed_body")
    status, body = _both(clients, "extra", headers=AUTH, json={"text": TEXT, "lang": "en"})
    assert status == 422


def test_the_served_document_describes_it(clients: dict[str, httpx.Client]) -> None:
    fastapi = clients["fastapi"].get("/openapi.json")
    django = clients["django"].get("/api/v1/schema/")
    assert fastapi.content == django.content
    document = fastapi.json()
    assert document["paths"][PATH]["post"]["operationId"] == "readability-score"
    assert "ReadabilityResponse" in document["components"]["schemas"]


def test_the_plugins_setting_is_read_from_its_own_prefix(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from synthstack_fastapi import create_app

    monkeypatch.setenv("SYNTHSTACK_READABILITY_MAX_CHARS", "20")
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        short = client.post(PATH, headers=AUTH, json={"text": "Twenty characters ok"})
        longer = client.post(PATH, headers=AUTH, json={"text": "Twenty-one characters"})
    assert (short.status_code, longer.status_code) == (200, 413)


def test_without_plugins_the_operation_is_not_served(service_env: dict[str, str]) -> None:
    from fastapi.testclient import TestClient

    from synthstack_fastapi import create_app

    with TestClient(
        create_app(Settings(SYNTHSTACK_PLUGINS="")), raise_server_exceptions=False
    ) as client:
        assert client.post(PATH, headers=AUTH, json={"text": TEXT}).status_code == 404
        assert PATH not in client.get("/openapi.json").json()["paths"]
        assert client.get("/openapi.json").content == client.get("/api/v1/schema/").content
