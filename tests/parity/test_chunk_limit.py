"""``SYNTHSTACK_MAX_CHUNKS_PER_DOCUMENT``: a document that would make more chunks is refused (413
``too_many_chunks``) before anything is embedded or written, alike on both backends, whether sent
as JSON (``rag/index``) or uploaded (``rag/documents``)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.parity.conftest import AUTH, rebuilt_clients

TEXT = " ".join(f"Sentence number {i} says something about chunk limits." for i in range(40))


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == "too_many_chunks"
    assert "SYNTHSTACK_MAX_CHUNKS_PER_DOCUMENT" in body["detail"]
    return body


def test_a_document_over_the_chunk_limit_is_refused_alike(django_app: Any) -> None:
    refused: dict[str, list[dict[str, Any]]] = {}
    with rebuilt_clients(django_app, {"SYNTHSTACK_MAX_CHUNKS_PER_DOCUMENT": "3"}) as clients:
        for backend, client in clients.items():
            collection = f"chunk-limit-{backend}"
            headers = {**AUTH, "X-Request-ID": "chunk-limit"}
            index = client.post(
                "/api/v1/rag/index",
                headers=headers,
                json={"content": TEXT, "source": "s.txt", "collection": collection,
                      "document_id": "long", "chunk_size": 16, "chunk_overlap": 0},
            )  # fmt: skip
            upload = client.post(
                "/api/v1/rag/documents",
                headers=headers,
                files={"file": ("long.txt", TEXT.encode(), "text/plain")},
                data={"collection": collection, "document_id": "long", "chunk_size": "16",
                      "chunk_overlap": "0"},
            )  # fmt: skip
            refused[backend] = [_problem(index), _problem(upload)]
            # Nothing written: not even the collection the document would have created.
            listed = client.get("/api/v1/rag/collections", headers=AUTH).json()
            assert collection not in [c["name"] for c in listed["collections"]]
            # A document within the limit is indexed.
            fits = client.post(
                "/api/v1/rag/index",
                headers=AUTH,
                json={"content": TEXT[:150], "source": "s.txt", "collection": collection,
                      "document_id": "short", "chunk_size": 16, "chunk_overlap": 0},
            )  # fmt: skip
            assert fits.status_code == 200, fits.text
            assert 1 <= fits.json()["chunks_created"] <= 3
            assert client.delete(
                f"/api/v1/rag/collections/{collection}", headers=AUTH
            ).status_code in (200, 204)
    assert refused["fastapi"] == refused["django"]
    assert refused["fastapi"][0]["instance"] == "/api/v1/rag/index"
