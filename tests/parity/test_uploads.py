"""``POST /api/v1/rag/documents``: multipart uploads, read by the core as they stream in.

Every case runs on both backends, which must answer alike. After each one the upload directory
(``SYNTHSTACK_UPLOAD_DIR``) must be empty, and a refused upload must leave no document behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.documents import encrypt_pdf, make_docx, make_pdf, w_p
from tests.parity.conftest import AUTH, KEY_B

BACKENDS = ["fastapi", "django"]
URL = "/api/v1/rag/documents"


def _upload(
    client: httpx.Client,
    content: bytes,
    filename: str = "notes.md",
    content_type: str = "application/octet-stream",
    **fields: str,
) -> httpx.Response:
    return client.post(
        URL, headers=AUTH, files={"file": (filename, content, content_type)}, data=fields
    )


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    body.pop("request_id")
    return body


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_markdown_upload_is_indexed_and_searchable(
    clients: dict[str, httpx.Client], backend: str, upload_dir: Path
) -> None:
    client = clients[backend]
    collection = f"uploads-md-{backend}"
    text = (
        "# Bees\n\n**Honeybees** dance to tell [the hive](hive.md) where flowers are.\n\n"
        "![](bee.png)\n\n## Wax\n\nWax is made by workers."
    )
    response = _upload(
        client,
        text.encode(),
        "bees.md",
        collection=collection,
        document_id="bees",
        metadata=json.dumps({"topic": "insects", "year": 2026}),
        chunk_size="16",
        chunk_overlap="2",
    )
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["document_id"] == "bees"
    assert document["collection"] == collection
    assert document["source"] == "bees.md"
    assert document["source_type"] == "markdown"
    assert document["title"] == "Bees"  # its first heading
    assert document["metadata"] == {"topic": "insects", "year": 2026}
    assert document["chunks"] >= 2
    assert document["status"] == "indexed"
    found = client.post(
        "/api/v1/rag/search",
        headers=AUTH,
        json={"query": "honeybee dance", "collection": collection, "mode": "lexical"},
    ).json()
    assert found["results"][0]["document_id"] == "bees"
    # Indexed as text: no markup, the link's text, nothing of an image without alt text.
    assert "Honeybees dance to tell the hive" in found["results"][0]["content"]
    for result in found["results"]:
        for markup in ("**", "](", "![", "bee.png"):
            assert markup not in result["content"]
    assert found["results"][0]["source"] == "bees.md"
    assert found["results"][0]["metadata"] == {"topic": "insects", "year": 2026}
    # The other tenant sees none of it.
    other = client.get(f"{URL}/bees?collection={collection}", headers={"X-API-Key": KEY_B})
    assert other.status_code == 404


@pytest.mark.parametrize("backend", BACKENDS)
def test_pdf_chunks_carry_their_page(
    clients: dict[str, httpx.Client], backend: str, upload_dir: Path
) -> None:
    client = clients[backend]
    collection = f"uploads-pdf-{backend}"
    pdf = make_pdf(
        [
            ["Page one talks about volcanoes and lava flows."],
            ["Page two explains glaciers and ice sheets."],
            ["Page three covers deserts and sand dunes."],
        ],
        title="Earth",
    )
    response = _upload(
        client, pdf, "earth.bin", collection=collection, document_id="earth", chunk_size="16",
        chunk_overlap="0",
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["source_type"] == "pdf"
    for query, page in (("glaciers ice", 2), ("desert dunes", 3), ("volcano lava", 1)):
        results = client.post(
            "/api/v1/rag/search",
            headers=AUTH,
            json={"query": query, "collection": collection, "mode": "lexical", "limit": 1},
        ).json()["results"]
        assert results[0]["page"] == page, (query, results)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_files_own_title_is_kept_and_indexed_with_its_chunks(
    clients: dict[str, httpx.Client], backend: str, upload_dir: Path
) -> None:
    client = clients[backend]
    collection = f"uploads-title-{backend}"
    long_title = "Geology survey " + "appendix " * 80  # 735 characters
    pdf = make_pdf(
        [["Basalt columns form as lava cools slowly."], ["Granite forms deep underground."]],
        title=long_title,
    )
    response = _upload(client, pdf, "g.pdf", collection=collection, document_id="g")
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["title"] == " ".join(long_title.split())[:512].strip()  # kept: 512 at most
    # "survey" is only in the title: the chunk is found through its header.
    results = client.post(
        "/api/v1/rag/search",
        headers=AUTH,
        json={"query": "survey", "collection": collection, "mode": "lexical"},
    ).json()["results"]
    assert len(results) == document["chunks"] >= 1
    assert all(r["title"] == document["title"] and "survey" not in r["content"] for r in results)


@pytest.mark.parametrize("backend", BACKENDS)
def test_docx_upload_and_reupload_replaces(
    clients: dict[str, httpx.Client], backend: str, upload_dir: Path
) -> None:
    client = clients[backend]
    collection = f"uploads-docx-{backend}"
    first = make_docx(w_p("Quarterly report: revenue grew in every region."))
    second = make_docx(w_p("Revised report: revenue fell in the north."))
    assert (
        _upload(client, first, "r.docx", collection=collection, document_id="r").status_code == 201
    )
    again = _upload(
        client, second, "r.docx", collection=collection, document_id="r", title="Revised report"
    )
    assert again.status_code == 201
    assert again.json()["source_type"] == "docx"
    assert again.json()["title"] == "Revised report"  # the form's (this file declares none)
    listed = client.get(f"{URL}?collection={collection}", headers=AUTH).json()
    assert [d["document_id"] for d in listed["documents"]] == ["r"]
    results = client.post(
        "/api/v1/rag/search",
        headers=AUTH,
        json={"query": "revenue", "collection": collection, "mode": "lexical"},
    ).json()["results"]
    assert results and all("north" in r["content"] for r in results)


def _refusals() -> list[tuple[str, dict[str, Any], int, str]]:
    """(case, request kwargs, status, code): every one must store nothing."""
    boundary = "x-boundary"
    pdf = make_pdf([["Secret text."]])
    return [
        ("json body", {"json": {"file": "x"}}, 415, "unsupported_media_type"),
        (
            "multipart without boundary",
            {"content": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data"}},
            415,
            "unsupported_media_type",
        ),
        (
            "png image",
            {"files": {"file": ("a.png", b"\x89PNG\r\n\x1a\n" + bytes(300), "image/png")}},
            415,
            "unsupported_document_type",
        ),
        (
            "pdf that is not one",
            {"files": {"file": ("a.pdf", b"%PDF-1.7\nnot really a pdf", "application/pdf")}},
            422,
            "corrupt_document",
        ),
        (
            "encrypted pdf",
            {"files": {"file": ("s.pdf", encrypt_pdf(pdf, user_password="pw"), "application/pdf")}},
            422,
            "encrypted_document",
        ),
        ("empty file", {"files": {"file": ("e.txt", b"", "text/plain")}}, 422, "empty_document"),
        ("blank file", {"files": {"file": ("e.txt", b"  \n\n ", "text/plain")}}, 422, "empty_document"),
        ("no file part", {"files": {"chunk_size": (None, "64")}}, 422, "invalid_request"),
        (
            "unknown field",
            {"files": {"file": ("a.txt", b"hello", "text/plain")}, "data": {"colour": "red"}},
            422,
            "invalid_request",
        ),
        (
            "repeated field",
            {
                "files": {"file": ("a.txt", b"hello", "text/plain")},
                "data": {"collection": ["a", "b"]},
            },
            422,
            "invalid_request",
        ),
        (
            "metadata not json",
            {"files": {"file": ("a.txt", b"hello", "text/plain")}, "data": {"metadata": "{nope"}},
            422,
            "invalid_request",
        ),
        (
            "declared type does not match",
            {"files": {"file": ("a.txt", b"hello", "text/plain")}, "data": {"source_type": "pdf"}},
            422,
            "corrupt_document",
        ),
        (
            "no closing boundary",
            {
                "content": (
                    f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                    f'filename="a.txt"\r\n\r\nhello world'
                ).encode(),
                "headers": {"Content-Type": f"multipart/form-data; boundary={boundary}"},
            },
            400,
            "malformed_body",
        ),
        (
            "over the upload limit",
            {"files": {"file": ("big.txt", b"a " * (1024 * 1024), "text/plain")}},
            413,
            "payload_too_large",
        ),
    ]  # fmt: skip


@pytest.mark.parametrize(("case", "kwargs", "status", "code"), _refusals(), ids=lambda v: str(v))
def test_refused_uploads_store_nothing_and_answer_alike(
    clients: dict[str, httpx.Client],
    upload_dir: Path,
    case: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    problems = []
    for backend in BACKENDS:
        client = clients[backend]
        collection = f"refused-{backend}"
        request = dict(kwargs)
        if "files" in request:
            data = dict(request.get("data", {}))
            data.setdefault("collection", collection)
            data.setdefault("document_id", "refused")
            request["data"] = data
        headers = {**AUTH, **request.pop("headers", {}), "X-Request-ID": f"upload-{case[:20]}"}
        response = client.post(URL, headers=headers, **request)
        assert response.status_code == status, (backend, case, response.text)
        problem = _problem(response)
        assert problem["code"] == code, (backend, case, problem)
        problems.append(problem)
        stored = client.get(f"{URL}/refused?collection={collection}", headers=AUTH)
        assert stored.status_code == 404, (backend, case)
        assert list(upload_dir.iterdir()) == [], (backend, case)
    assert problems[0] == problems[1]


def test_a_chunked_upload_is_refused_once_over_the_limit(
    clients: dict[str, httpx.Client], upload_dir: Path
) -> None:
    """No ``Content-Length``: the core counts while reading. (FastAPI only in-process: a WSGI app
    may not read a body without a length unless the server terminates the input, as gunicorn
    does; tests/cli checks gunicorn.)"""
    chunks = iter([b"--b\r\n", b"x" * (600 * 1024), b"y" * (600 * 1024), b"z" * (600 * 1024)])
    response = clients["fastapi"].post(
        URL,
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
        content=chunks,
    )
    assert response.status_code == 413
    assert _problem(response)["code"] == "payload_too_large"
