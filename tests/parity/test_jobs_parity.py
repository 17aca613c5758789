"""Jobs answer alike on both backends: ``Prefer: respond-async`` on ``POST /api/v1/rag/index``,
then reading, listing and cancelling the job.

The parity suite runs no worker (``SYNTHSTACK_WORKER=none`` in its environment), so every job
stays queued here and the answers are deterministic; jobs run by real worker processes are tested
in ``tests/jobs/``. Ids and timestamps are masked; everything else must be equal.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.parity.conftest import AUTH, KEY_B

ASYNC = {**AUTH, "Prefer": "respond-async"}


def _index(collection: str, **more: Any) -> dict[str, Any]:
    return {
        "content": "Cats purr when content. Dogs bark at strangers.",
        "source": "pets.txt",
        "collection": collection,
        "document_id": "pets",
        "chunk_size": 32,
        "chunk_overlap": 4,
        **more,
    }


def _mask(node: Any, ids: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            key: "<time>"
            if key in {"created_at", "started_at", "finished_at"} and value is not None
            else "<cursor>"
            if key == "next_cursor" and value is not None
            else _mask(value, ids)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_mask(item, ids) for item in node]
    if isinstance(node, str):
        for real, name in ids.items():
            node = node.replace(real, name)
    return node


def _scenario(client: httpx.Client, collection: str) -> list[tuple[int, dict[str, str], Any]]:
    """Every step's status, job headers and masked body."""
    answers: list[tuple[int, dict[str, str], Any]] = []
    ids: dict[str, str] = {collection: "<collection>"}

    def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**kwargs.pop("headers", AUTH), "X-Request-ID": f"jobs-{len(answers)}"}
        response = client.request(method, url, headers=headers, **kwargs)
        body = response.json()
        if isinstance(body, dict) and "id" in body and str(body["id"]) not in ids:
            ids[str(body["id"])] = f"<job {len(ids)}>"
        kept = {
            name: _mask(response.headers[name], ids)
            for name in ("location", "preference-applied")
            if name in response.headers
        }
        answers.append((response.status_code, kept, _mask(body, ids)))
        return response

    first = call("POST", "/api/v1/rag/index", headers=ASYNC, json=_index(collection)).json()
    second = call(
        "POST",
        "/api/v1/rag/index",
        headers={**AUTH, "Prefer": "wait=10, Respond-Async; x=1"},
        json=_index(collection, document_id="other"),
    ).json()
    call("GET", f"/api/v1/jobs/{first['id']}")
    call("GET", f"/api/v1/jobs/{first['id']}", headers={"X-API-Key": KEY_B})
    call("GET", f"/api/v1/jobs/{uuid.UUID(int=7)}")
    call("GET", "/api/v1/jobs/not-a-uuid")
    call("DELETE", f"/api/v1/jobs/{first['id']}", headers={"X-API-Key": KEY_B})
    call("DELETE", f"/api/v1/jobs/{first['id']}")
    call("DELETE", f"/api/v1/jobs/{first['id']}")
    call("GET", f"/api/v1/jobs/{first['id']}")
    # Checked before anything is queued, as without the preference.
    call("POST", "/api/v1/rag/index", headers=ASYNC, json=_index(collection, chunk_overlap=16))
    call("POST", "/api/v1/rag/index", headers=ASYNC, json=_index(collection, content="   "))
    call("POST", "/api/v1/rag/index", headers=ASYNC, json={"content": "x"})
    call("POST", "/api/v1/rag/index", headers={"Prefer": "respond-async"}, json=_index(collection))
    # Other preferences are ignored: the synchronous answer.
    call(
        "POST",
        "/api/v1/rag/index",
        headers={**AUTH, "Prefer": "return=minimal"},
        json=_index(collection, document_id="sync"),
    )
    call("DELETE", f"/api/v1/jobs/{second['id']}")
    # An upload: parsed and checked first, its bytes kept with the job.
    uploaded = call(
        "POST",
        "/api/v1/rag/documents",
        headers=ASYNC,
        data={"collection": collection, "document_id": "notes"},
        files={"file": ("notes.md", b"# Notes\n\nCats purr when content.", "text/markdown")},
    ).json()
    call(
        "POST",
        "/api/v1/rag/documents",
        headers=ASYNC,
        data={"collection": collection},
        files={"file": ("image.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")},
    )
    call("GET", "/api/v1/jobs?kind=rag-upload-document&status=queued&limit=1")
    call("DELETE", f"/api/v1/jobs/{uploaded['id']}")
    return answers


def test_jobs_scenario_is_identical_on_both_backends(clients: dict[str, httpx.Client]) -> None:
    fastapi = _scenario(clients["fastapi"], "jobs-fa")
    django = _scenario(clients["django"], "jobs-dj")
    assert fastapi == django
    statuses = [status for status, _, _ in fastapi]
    assert statuses == [
        202, 202, 200, 404, 404, 404, 404, 200, 409, 200, 422, 422, 422, 401, 200, 200,
        202, 415, 200, 200,
    ]  # fmt: skip
    accepted = fastapi[0]
    assert accepted[1] == {
        "location": "/api/v1/jobs/<job 1>",
        "preference-applied": "respond-async",
    }
    assert accepted[2] == {
        "id": "<job 1>",
        "kind": "rag-index",
        "status": "queued",
        "progress": {"done": 0, "total": None, "unit": "chunks"},
        "attempts": 0,
        "created_at": "<time>",
        "started_at": None,
        "finished_at": None,
        "result": None,
        "error": None,
    }
    assert fastapi[2][2] == accepted[2]
    # Another tenant's job is a 404 exactly like a missing one (but for the id in the detail).
    other, missing = fastapi[3][2], fastapi[4][2]
    assert other["code"] == missing["code"] == "not_found"
    # A path that cannot name a job (not a UUID) names nothing: 404, as for every path parameter.
    assert fastapi[5][2]["code"] == "not_found"
    cancelled = fastapi[7][2]
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"] == "<time>"
    assert fastapi[8][2]["code"] == "job_ended"
    assert fastapi[9][2] == cancelled
    assert [fastapi[n][2]["code"] for n in (10, 11)] == ["invalid_request", "empty_document"]
    assert fastapi[14][1] == {} and fastapi[14][2]["document_id"] == "sync"
    upload = fastapi[16][2]
    assert upload["kind"] == "rag-upload-document" and upload["status"] == "queued"
    assert fastapi[17][2]["code"] == "unsupported_document_type"
    assert fastapi[18][2]["jobs"] == [upload]
    assert fastapi[19][2]["status"] == "cancelled"


def test_listing_filters_and_pages(clients: dict[str, httpx.Client]) -> None:
    for backend, client in clients.items():
        submitted = [
            client.post(
                "/api/v1/rag/index",
                headers=ASYNC,
                json=_index(f"list-{backend}", document_id=f"d{n}"),
            ).json()["id"]
            for n in range(3)
        ]
        assert (
            client.delete(f"/api/v1/jobs/{submitted[1]}", headers=AUTH).json()["status"]
            == "cancelled"
        )
        pages: list[str] = []
        cursor = None
        while True:
            query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
            page = client.get(f"/api/v1/jobs?{query}", headers=AUTH).json()
            pages.extend(job["id"] for job in page["jobs"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        # Newest first; every job of the tenant once.
        assert [job for job in pages if job in submitted] == submitted[::-1]
        assert len(pages) == len(set(pages))
        cancelled = client.get("/api/v1/jobs?status=cancelled&kind=rag-index", headers=AUTH).json()
        assert submitted[1] in {job["id"] for job in cancelled["jobs"]}
        assert all(job["status"] == "cancelled" for job in cancelled["jobs"])
        queued = {
            job["id"]
            for job in client.get("/api/v1/jobs?status=queued&limit=100", headers=AUTH).json()[
                "jobs"
            ]
        }
        assert {submitted[0], submitted[2]} <= queued and submitted[1] not in queued
        other = client.get("/api/v1/jobs", headers={"X-API-Key": KEY_B}).json()
        assert not set(submitted) & {job["id"] for job in other["jobs"]}
        for bad in ("status=done", "kind=transcribe", "cursor=bm90LWEtY3Vyc29y", "limit=0"):
            answer = client.get(f"/api/v1/jobs?{bad}", headers=AUTH)
            assert answer.status_code == 422, (backend, bad, answer.text)
        for job in (submitted[0], submitted[2]):
            client.delete(f"/api/v1/jobs/{job}", headers=AUTH)
