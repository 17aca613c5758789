"""``POST /api/v1/rag/query`` with ``stream: true``: the same events, framed alike, on both
backends (the answer generated through the OpenAI SDK against the stub)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.parity.conftest import AUTH
from tests.parity.test_generation import events_of


def _masked(events: list[tuple[str, Any]], collection: str) -> list[tuple[str, Any]]:
    def mask(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: "<id>" if k == "chunk_id" else mask(v) for k, v in node.items()}
        if isinstance(node, list):
            return [mask(item) for item in node]
        if isinstance(node, str):
            return node.replace(collection, "<collection>")
        return node

    return [(name, mask(data)) for name, data in events]


def test_streamed_answers_are_identical(clients: dict[str, httpx.Client]) -> None:
    streams = []
    plain = []
    for backend, client in clients.items():
        collection = f"stream-{backend}"
        indexed = client.post(
            "/api/v1/rag/index",
            headers=AUTH,
            json={
                "content": "Owls hunt at night. Their feathers make no sound in flight.",
                "source": "owls.txt",
                "collection": collection,
                "document_id": "owls",
            },
        )
        assert indexed.status_code == 200, indexed.text
        body = {"query": "How do owls hunt?", "collection": collection, "stream": True}
        response = client.post("/api/v1/rag/query", headers=AUTH, json=body)
        assert response.status_code == 200, response.text
        streams.append(_masked(events_of(response), collection))
        body["stream"] = False
        plain.append(client.post("/api/v1/rag/query", headers=AUTH, json=body).json())
    assert streams[0] == streams[1]
    names = [name for name, _ in streams[0]]
    assert names[0] == "sources" and names[-1] == "done" and set(names[1:-1]) == {"delta"}
    sources = streams[0][0][1]["sources"]
    assert sources[0]["document_id"] == "owls"
    done = streams[0][-1][1]
    assert done["answer_mode"] == "generative"
    text = "".join(data["text"] for name, data in streams[0] if name == "delta")
    assert done["answer"] == text == plain[0]["answer"]
    assert "sources" not in done


def test_a_stream_for_a_missing_collection_is_a_plain_404(clients: dict[str, httpx.Client]) -> None:
    for client in clients.values():
        response = client.post(
            "/api/v1/rag/query",
            headers=AUTH,
            json={"query": "q", "collection": "never-made", "stream": True},
        )
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
