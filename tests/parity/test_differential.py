"""The same requests to both backends give the same status, headers and body.

Request ids are masked where the server chose them; floats are compared within 1e-6 (both backends
run the same model, so in practice they are equal to the bit).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.parity.conftest import AUTH, KEY_B

HEADERS_THAT_MATTER = (
    "content-type",
    "x-request-id",
    "allow",
    "retry-after",
    "www-authenticate",
    "cache-control",
    "x-content-type-options",
)

JSON = {"Content-Type": "application/json"}
LONG = "word " * 4001  # 20,005 characters: over the default text limit


def _req(
    method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    return {"method": method, "url": path, "headers": headers or {}, **kwargs}


CASES: dict[str, dict[str, Any]] = {
    "health": _req("GET", "/health"),
    "models": _req("GET", "/api/v1/embeddings/models", headers=AUTH),
    "models-x-api-key": _req("GET", "/api/v1/embeddings/models", headers={"X-API-Key": KEY_B}),
    "generate": _req("POST", "/api/v1/embeddings/generate", headers=AUTH, json={"text": "hello"}),
    "generate-openai-dims": _req(
        "POST",
        "/api/v1/embeddings/generate",
        headers=AUTH,
        json={"text": "hello", "model": "text-embedding-3-small", "dimensions": 256},
    ),
    "batch": _req(
        "POST",
        "/api/v1/embeddings/batch",
        headers=AUTH,
        json={"texts": ["b", "a", "b", "a longer third text"]},
    ),
    "similarity": _req(
        "POST",
        "/api/v1/embeddings/similarity",
        headers=AUTH,
        json={"text1": "The cat sits on the mat", "text2": "A feline rests on a rug"},
    ),
    "malformed-json": _req(
        "POST", "/api/v1/embeddings/generate", headers={**AUTH, **JSON}, content=b'{"text": '
    ),
    "not-utf8": _req(
        "POST", "/api/v1/embeddings/generate", headers={**AUTH, **JSON}, content=b'{"text": "\xff"}'
    ),
    "no-key": _req("POST", "/api/v1/embeddings/generate", json={"text": "hello"}),
    "wrong-key": _req(
        "POST",
        "/api/v1/embeddings/generate",
        headers={"Authorization": "Bearer not-a-key-at-all"},
        json={"text": "hello"},
    ),
    "basic-auth-scheme": _req(
        "GET", "/api/v1/embeddings/models", headers={"Authorization": "Basic dXNlcjpwYXNz"}
    ),
    "unknown-path": _req("GET", "/api/v1/nothing-here", headers=AUTH),
    "unknown-path-trailing-slash": _req("GET", "/api/v1/embeddings/models/", headers=AUTH),
    "wrong-method": _req("DELETE", "/api/v1/embeddings/generate", headers=AUTH),
    "wrong-method-get": _req("GET", "/api/v1/embeddings/batch", headers=AUTH),
    "wrong-method-no-key": _req("PATCH", "/api/v1/embeddings/batch"),
    "unknown-path-no-key": _req("POST", "/api/v1/embeddings/nothing", json={"text": "a"}),
    "options": _req("OPTIONS", "/api/v1/embeddings/generate", headers=AUTH),
    "head-on-get": _req("HEAD", "/api/v1/embeddings/models", headers=AUTH),
    "put-health": _req("PUT", "/health"),
    "too-large": _req(
        "POST",
        "/api/v1/embeddings/generate",
        headers={**AUTH, **JSON},
        content=json.dumps({"text": "x" * 1_100_000}).encode(),
    ),
    "wrong-content-type": _req(
        "POST",
        "/api/v1/embeddings/generate",
        headers={**AUTH, "Content-Type": "text/plain"},
        content=b'{"text": "hello"}',
    ),
    "form-content-type": _req(
        "POST", "/api/v1/embeddings/generate", headers=AUTH, data={"text": "hello"}
    ),
    "latin1-charset": _req(
        "POST",
        "/api/v1/embeddings/generate",
        headers={**AUTH, "Content-Type": "application/json; charset=latin-1"},
        content=b'{"text": "hello"}',
    ),
    "number-for-string": _req(
        "POST", "/api/v1/embeddings/generate", headers=AUTH, json={"text": 5}
    ),
    "empty-text": _req("POST", "/api/v1/embeddings/generate", headers=AUTH, json={"text": ""}),
    "nul-text": _req(
        "POST", "/api/v1/embeddings/generate", headers=AUTH, json={"text": "a\u0000b"}
    ),
    "too-long-text": _req("POST", "/api/v1/embeddings/generate", headers=AUTH, json={"text": LONG}),
    "unknown-field": _req(
        "POST", "/api/v1/embeddings/generate", headers=AUTH, json={"text": "a", "extra": 1}
    ),
    "missing-field": _req("POST", "/api/v1/embeddings/generate", headers=AUTH, json={}),
    "array-body": _req("POST", "/api/v1/embeddings/generate", headers=AUTH, json=["a"]),
    "string-dimensions": _req(
        "POST", "/api/v1/embeddings/generate", headers=AUTH, json={"text": "a", "dimensions": "8"}
    ),
    "batch-empty-list": _req("POST", "/api/v1/embeddings/batch", headers=AUTH, json={"texts": []}),
    "batch-empty-string": _req(
        "POST", "/api/v1/embeddings/batch", headers=AUTH, json={"texts": ["a", "", "c"]}
    ),
    "batch-over-limit": _req(
        "POST", "/api/v1/embeddings/batch", headers=AUTH, json={"texts": ["t"] * 129}
    ),
    "unknown-model": _req(
        "POST", "/api/v1/embeddings/generate", headers=AUTH, json={"text": "a", "model": "nope-1"}
    ),
    "unsupported-dimensions": _req(
        "POST", "/api/v1/embeddings/generate", headers=AUTH, json={"text": "a", "dimensions": 128}
    ),
    "dimensions-over-native": _req(
        "POST",
        "/api/v1/embeddings/generate",
        headers=AUTH,
        json={"text": "a", "model": "text-embedding-3-small", "dimensions": 2000},
    ),
    "bad-request-id-is-replaced": _req(
        "GET", "/health", headers={"X-Request-ID": "bad id with spaces"}
    ),
}


def _send(client: httpx.Client, case: dict[str, Any], request_id: str | None) -> httpx.Response:
    case = {**case, "headers": dict(case["headers"])}
    if request_id is not None:
        case["headers"].setdefault("X-Request-ID", request_id)
    return client.request(**case)


def _close(a: Any, b: Any, path: str = "$") -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, int | float) and isinstance(b, int | float), path
        assert abs(a - b) <= 1e-6, f"{path}: {a} != {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path}: keys differ"
        for key in a:
            _close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _masked(response: httpx.Response, server_chose_id: bool) -> Any:
    if not response.content:
        return None
    body = response.json()
    if server_chose_id and isinstance(body, dict) and "request_id" in body:
        assert body["request_id"] == response.headers["x-request-id"]
        body["request_id"] = "<masked>"
    return body


def _headers(response: httpx.Response, server_chose_id: bool) -> dict[str, str]:
    found = {name: response.headers.get(name) for name in HEADERS_THAT_MATTER}
    if server_chose_id:
        assert found["x-request-id"]
        found["x-request-id"] = "<masked>"
    return {k: v for k, v in found.items() if v is not None}


@pytest.mark.parametrize("name", list(CASES))
def test_backends_answer_alike(name: str, clients: dict[str, httpx.Client]) -> None:
    case = CASES[name]
    server_chose_id = name == "bad-request-id-is-replaced"
    request_id = None if server_chose_id else f"diff-{name}"
    fastapi = _send(clients["fastapi"], case, request_id)
    django = _send(clients["django"], case, request_id)
    assert fastapi.status_code == django.status_code, (fastapi.text[:300], django.text[:300])
    assert _headers(fastapi, server_chose_id) == _headers(django, server_chose_id)
    bodies = {
        "fastapi": _masked(fastapi, server_chose_id),
        "django": _masked(django, server_chose_id),
    }
    for backend, body in bodies.items():
        if isinstance(body, dict) and "backend" in body:  # /health names the backend it runs on
            assert body.pop("backend") == backend
    _close(bodies["fastapi"], bodies["django"])
    if not server_chose_id and fastapi.status_code != 200:
        # Errors are byte-for-byte identical.
        assert fastapi.content == django.content


EXPECTED_STATUS = {
    "health": 200, "models": 200, "models-x-api-key": 200, "generate": 200,
    "generate-openai-dims": 200, "batch": 200, "similarity": 200, "malformed-json": 400,
    "not-utf8": 400, "no-key": 401, "wrong-key": 401, "basic-auth-scheme": 401,
    "unknown-path": 404, "unknown-path-trailing-slash": 404, "wrong-method": 405,
    "wrong-method-get": 405, "put-health": 405, "wrong-method-no-key": 405,
    "unknown-path-no-key": 404, "options": 405, "head-on-get": 405, "too-large": 413,
    "wrong-content-type": 415,
    "form-content-type": 415, "latin1-charset": 415, "number-for-string": 422,
    "empty-text": 422, "nul-text": 422, "too-long-text": 422, "unknown-field": 422,
    "missing-field": 422, "array-body": 422, "string-dimensions": 422, "batch-empty-list": 422,
    "batch-empty-string": 422, "batch-over-limit": 422, "unknown-model": 422,
    "unsupported-dimensions": 422, "dimensions-over-native": 422,
    "bad-request-id-is-replaced": 200,
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("backend", ["fastapi", "django"])
def test_status_and_problem_shape(name: str, backend: str, request: pytest.FixtureRequest) -> None:
    client: httpx.Client = request.getfixturevalue(f"{backend}_client")
    response = _send(client, CASES[name], f"shape-{name}")
    assert response.status_code == EXPECTED_STATUS[name], response.text[:500]
    if response.status_code >= 400 and CASES[name]["method"] == "HEAD":
        assert response.content == b""  # HEAD: the headers of the problem, no body
        assert response.headers["content-type"] == "application/problem+json"
    elif response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == response.status_code
        assert problem["request_id"] == response.headers["x-request-id"]
        assert problem["code"] and problem["title"] and problem["detail"]
        assert "Traceback" not in response.text
        if response.status_code == 422:
            assert problem["errors"], problem
        if response.status_code == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
        if response.status_code == 405:
            assert response.headers["allow"]


def test_keys_of_two_tenants_both_work(clients: dict[str, httpx.Client]) -> None:
    for client in clients.values():
        assert (
            client.get("/api/v1/embeddings/models", headers={"X-API-Key": KEY_B}).status_code == 200
        )
