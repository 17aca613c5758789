"""SynthStack mounted under ``/ml`` in a FastAPI host, and the key dependency on a host route."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.hosts.conftest import AUTH
from tests.hosts.fastapi_host import build_host


@pytest.fixture
def client(
    empty_database: str, host_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("DATABASE_URL", empty_database)
    # Entering the client runs the host's lifespan, which starts (and migrates) SynthStack.
    with TestClient(build_host()) as client:
        yield client


def _problem(response: object) -> dict[str, object]:
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    problem: dict[str, object] = json.loads(response.content)  # type: ignore[attr-defined]
    return problem


def test_api_under_the_prefix(client: TestClient) -> None:
    health = client.get("/ml/health")
    assert health.status_code == 200, health.text
    embedding = client.post(
        "/ml/api/v1/embeddings/generate", json={"text": "a mounted service"}, headers=AUTH
    )
    assert embedding.status_code == 200, embedding.text
    assert len(embedding.json()["embedding"]) == embedding.json()["dimensions"]

    missing = client.get("/ml/api/v1/nothing-here", headers={"X-Request-ID": "probe-1"})
    assert missing.status_code == 404
    assert _problem(missing)["instance"] == "/ml/api/v1/nothing-here"
    assert _problem(missing)["request_id"] == "probe-1"

    wrong_method = client.delete("/ml/api/v1/embeddings/generate", headers=AUTH)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert _problem(wrong_method)["instance"] == "/ml/api/v1/embeddings/generate"

    unauthenticated = client.post("/ml/api/v1/embeddings/generate", json={"text": "no key"})
    assert unauthenticated.status_code == 401
    assert _problem(unauthenticated)["instance"] == "/ml/api/v1/embeddings/generate"
    assert unauthenticated.headers["www-authenticate"] == 'Bearer realm="synthstack"'


def test_docs_under_the_prefix(client: TestClient) -> None:
    for page in ("/ml/docs", "/ml/redoc", "/ml/api/v1/docs/", "/ml/api/v1/redoc/"):
        html = client.get(page).text
        urls = re.findall(r'(?:href|src|spec-url|data-schema-url)="([^"]+)"', html)
        assert urls, page
        for url in urls:
            assert url.startswith("/ml/"), (page, url)
            assert client.get(url).status_code == 200, (page, url)
    document = client.get("/ml/openapi.json").json()
    assert [server["url"] for server in document["servers"]] == ["/ml"]
    assert (
        client.get("/ml/static/docs/nothing.js").json()["instance"] == "/ml/static/docs/nothing.js"
    )


def test_host_route_with_the_key_dependency(client: TestClient) -> None:
    assert client.get("/whoami", headers=AUTH).json() == {"tenant": "host-tenant"}
    assert (
        client.get("/whoami", headers={"X-API-Key": AUTH["Authorization"][7:]}).status_code == 200
    )

    # The same 401 problems as SynthStack's own operations, naming the host's path.
    bad = client.get("/whoami", headers={"Authorization": "Bearer wrong-key"})
    own_bad = client.post("/ml/api/v1/embeddings/generate", json={"text": "x"},
                          headers={"Authorization": "Bearer wrong-key"})  # fmt: skip
    none = client.get("/whoami")
    own_none = client.post("/ml/api/v1/embeddings/generate", json={"text": "x"})
    for host_answer, own_answer in ((bad, own_bad), (none, own_none)):
        assert host_answer.status_code == own_answer.status_code == 401
        host_problem, own_problem = _problem(host_answer), _problem(own_answer)
        assert host_problem["instance"] == "/whoami"
        for problem in (host_problem, own_problem):
            del problem["instance"], problem["request_id"]
        assert host_problem == own_problem
        assert host_answer.headers["www-authenticate"] == own_answer.headers["www-authenticate"]
    assert _problem(client.get("/whoami"))["code"] == "missing_api_key"
