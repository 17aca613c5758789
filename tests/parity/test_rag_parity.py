"""The RAG operations answer alike on both backends: the same scenario, run against each.

Both backends share one database, so each runs the scenario in a collection of its own name; ids,
timestamps and that name are masked, and everything else (statuses, bodies, scores within 1e-6)
must be equal.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.parity.conftest import AUTH, KEY_B
from tests.parity.test_differential import _close

DOCS = {
    "cats": "Cats are small felines. A cat purrs when content.\n\nKittens play with yarn.",
    "markets": "# Markets\n\nStock markets fell sharply on Monday.\n\n## Rates\n\nRates rose.",
}


def _scenario(client: httpx.Client, collection: str) -> list[tuple[int, Any]]:
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/v1/rag/collections", {"json": {"name": collection, "description": "p"}}),
        ("POST", "/api/v1/rag/collections", {"json": {"name": collection}}),
        ("GET", "/api/v1/rag/collections", {}),
        *(
            (
                "POST",
                "/api/v1/rag/index",
                {
                    "json": {
                        "content": text,
                        "source": f"{name}.md",
                        "source_type": "markdown",
                        "collection": collection,
                        "document_id": name,
                        "metadata": {"topic": name, "n": 1},
                        "chunk_size": 32,
                        "chunk_overlap": 4,
                    }
                },
            )
            for name, text in DOCS.items()
        ),
        *(
            ("POST", "/api/v1/rag/search", {"json": {"query": "purring cat", "collection": collection, "mode": mode}})
            for mode in ("lexical", "dense", "hybrid")
        ),
        (
            "POST",
            "/api/v1/rag/search",
            {"json": {"query": "rates", "collection": collection, "filter": {"topic": {"in": ["markets"]}}}},
        ),
        ("POST", "/api/v1/rag/query", {"json": {"query": "Why does a cat purr?", "collection": collection, "context_limit": 3}}),
        ("GET", f"/api/v1/rag/documents/cats?collection={collection}", {}),
        ("GET", f"/api/v1/rag/documents?collection={collection}&limit=1", {}),
        ("GET", f"/api/v1/rag/documents?collection={collection}&limit=0", {}),
        ("GET", "/api/v1/rag/documents/cats?collection=no-such-collection", {}),
        ("GET", f"/api/v1/rag/documents/bad%20id?collection={collection}", {}),
        ("GET", "/api/v1/rag/documents/cats?collection=bad%20name", {}),
        ("GET", "/api/v1/rag/stats", {}),
        ("POST", "/api/v1/rag/index", {"json": {"content": "x", "source": "s", "collection": collection, "chunk_size": 32, "chunk_overlap": 16}}),
        ("POST", "/api/v1/rag/index", {"json": {"content": "   ", "source": "s", "collection": collection}}),
        ("POST", "/api/v1/rag/index-project-document", {"json": {"document_id": "readme", "project_id": collection, "filename": "README.md", "content": "# Project\n\nHello.", "file_type": "md"}}),
        ("POST", "/api/v1/rag/search", {"json": {"query": "cats", "collection": "never-created"}}),
        ("DELETE", f"/api/v1/rag/documents/cats?collection={collection}", {}),
        ("DELETE", f"/api/v1/rag/documents/cats?collection={collection}", {}),
        ("POST", "/api/v1/rag/search", {"json": {"query": "purring cat", "collection": collection, "mode": "lexical"}}),
        ("PUT", f"/api/v1/rag/collections/{collection}", {}),
        ("DELETE", f"/api/v1/rag/collections/{collection}", {}),
        ("DELETE", f"/api/v1/rag/collections/project_{collection}", {}),
        ("DELETE", f"/api/v1/rag/collections/{collection}", {}),
        ("POST", "/api/v1/rag/index", {"json": {"content": "Lions live in prides.", "source": "l.txt", "title": "Big cats", "collection": f"{collection}-t", "document_id": "lions"}}),
        ("GET", f"/api/v1/rag/documents/lions?collection={collection}-t", {}),
        ("POST", "/api/v1/rag/index", {"json": {"content": "x", "source": "s", "title": "", "collection": f"{collection}-t"}}),
        ("DELETE", f"/api/v1/rag/collections/{collection}-t", {}),
    ]  # fmt: skip
    answers: list[tuple[int, Any]] = []
    for number, (method, url, kwargs) in enumerate(steps):
        headers = {**AUTH, "X-Request-ID": f"rag-{number}"}
        response = client.request(method, url, headers=headers, **kwargs)
        answers.append((response.status_code, _mask(response.json(), collection)))
    return answers


def _mask(node: Any, collection: str) -> Any:
    if isinstance(node, dict):
        masked = {}
        for key, value in node.items():
            if key in {"created_at", "updated_at", "chunk_id", "next_cursor"} and value is not None:
                masked[key] = "<masked>"
            elif key == "collections" and isinstance(value, list):
                mine = [c for c in value if collection in c.get("name", "")]
                masked[key] = _mask(mine, collection)
            else:
                masked[key] = _mask(value, collection)
        return masked
    if isinstance(node, list):
        return [_mask(item, collection) for item in node]
    if isinstance(node, str):
        return node.replace(collection, "<collection>")
    return node


def test_rag_scenario_is_identical_on_both_backends(clients: dict[str, httpx.Client]) -> None:
    fastapi = _scenario(clients["fastapi"], "parity-fa")
    django = _scenario(clients["django"], "parity-dj")
    assert [status for status, _ in fastapi] == [status for status, _ in django]
    assert [status for status, _ in fastapi] == [
        201, 409, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 422, 404, 404, 422, 200,
        422, 422, 200, 404, 200, 404, 200, 405, 200, 200, 404, 200, 200, 422, 200,
    ]  # fmt: skip
    for (_, a), (_, b) in zip(fastapi, django, strict=True):
        _close(a, b)
    lexical = fastapi[5][1]["results"]
    assert lexical[0]["document_id"] == "cats"
    after_delete = fastapi[23][1]["results"]
    assert fastapi[11][1]["next_cursor"] and len(fastapi[11][1]["documents"]) == 1
    # A remote provider (the OpenAI stub) is configured here, so the answer is generated; the stub
    # cites nothing, so nothing is cited (extractive answers: packages/synthstack-core/tests).
    answer = fastapi[9][1]
    assert answer["answer_mode"] == "generative" and answer["model"] != "all-minilm-l6-v2"
    assert answer["sources"][0]["document_id"] == "cats" and answer["citations"] == []
    assert all(result["document_id"] != "cats" for result in after_delete)
    assert fastapi[10][1]["title"] is None and fastapi[-3][1]["title"] == "Big cats"


def test_other_tenant_sees_nothing(clients: dict[str, httpx.Client]) -> None:
    for backend, client in clients.items():
        name = f"private-{backend}"
        created = client.post("/api/v1/rag/collections", headers=AUTH, json={"name": name})
        assert created.status_code == 201
        client.post(
            "/api/v1/rag/index",
            headers=AUTH,
            json={"content": "secret plans", "source": "s", "collection": name, "document_id": "d"},
        )
        other = {"X-API-Key": KEY_B}
        assert (
            client.get(f"/api/v1/rag/documents/d?collection={name}", headers=other).status_code
            == 404
        )
        assert (
            client.post(
                "/api/v1/rag/search", headers=other, json={"query": "secret", "collection": name}
            ).status_code
            == 404
        )
        assert client.delete(f"/api/v1/rag/collections/{name}", headers=other).status_code == 404
        listed = client.get("/api/v1/rag/collections", headers=other).json()["collections"]
        assert name not in {c["name"] for c in listed}
        assert client.delete(f"/api/v1/rag/collections/{name}", headers=AUTH).status_code == 200


def test_writing_creates_a_collection_reading_does_not(clients: dict[str, httpx.Client]) -> None:
    """The contract's rule: indexing or uploading to a collection that does not exist creates it;
    searching or querying one that does not exist is a 404 and creates nothing."""
    for backend, client in clients.items():
        read, indexed, uploaded = (
            f"implicit-{backend}-{kind}" for kind in ("read", "index", "upload")
        )
        for path, body in (
            ("/api/v1/rag/search", {"query": "cats", "collection": read}),
            ("/api/v1/rag/query", {"query": "cats?", "collection": read}),
            ("/api/v1/rag/query", {"query": "cats?", "collection": read, "stream": True}),
        ):
            answer = client.post(path, headers=AUTH, json=body)
            assert answer.status_code == 404, (backend, path, answer.text)
            assert answer.json()["code"] == "not_found"
        names = {
            c["name"]
            for c in client.get("/api/v1/rag/collections", headers=AUTH).json()["collections"]
        }
        assert read not in names

        index = client.post(
            "/api/v1/rag/index",
            headers=AUTH,
            json={"content": DOCS["cats"], "source": "cats.txt", "collection": indexed},
        )
        upload = client.post(
            "/api/v1/rag/documents",
            headers=AUTH,
            data={"collection": uploaded},
            files={"file": ("cats.md", DOCS["markets"].encode(), "text/markdown")},
        )
        assert (index.status_code, upload.status_code) == (200, 201), (index.text, upload.text)
        collections = client.get("/api/v1/rag/collections", headers=AUTH).json()["collections"]
        created = {c["name"]: c for c in collections if c["name"] in {indexed, uploaded}}
        assert set(created) == {indexed, uploaded}
        assert {c["documents"] for c in created.values()} == {1}
        search = client.post(
            "/api/v1/rag/search",
            headers=AUTH,
            json={"query": "cats", "collection": indexed, "limit": 1},
        ).json()
        # total_found is the number of results returned (here at most `limit`), not of matches.
        assert search["total_found"] == len(search["results"]) == 1
        for name in (indexed, uploaded):
            assert client.delete(f"/api/v1/rag/collections/{name}", headers=AUTH).status_code == 200
