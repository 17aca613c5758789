"""Jobs run by real workers on a real PostgreSQL: ``synthstack worker`` processes (one killed with
SIGKILL in the middle of a job), and the worker embedded in a server process.

The API runs in-process (FastAPI) without a worker of its own (``SYNTHSTACK_WORKER=none``), except
in the embedded-worker test; jobs are submitted with ``Prefer: respond-async`` and read back
through ``GET /api/v1/jobs/{id}``. Workers beat every second (``SYNTHSTACK_JOB_STALLED_SECONDS=3``),
so a killed one is taken for dead after 3 s.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.jobs.support import ASYNC, AUTH, ROOT, Worker, api_client, ended, wait_for
from tests.jobs.support import document as _document

AUDIO = ROOT / "packages/synthstack-core/tests/fixtures/audio"


@pytest.fixture(scope="module")
def api(module_database_url: str) -> Iterator[httpx.Client]:
    """The API without a worker of its own."""
    with pytest.MonkeyPatch.context() as patch:
        yield from api_client(module_database_url, "none", patch)


@pytest.fixture
def workers(module_database_url: str, tmp_path: Path) -> Iterator[list[Worker]]:
    """Start workers with ``workers.append(Worker(...))``; all are stopped afterwards."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def _payloads(database_url: str, job_id: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM job_payloads WHERE job_id = %s", (job_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_job_ends_with_the_synchronous_answer(
    api: httpx.Client, workers: list[Worker], module_database_url: str, tmp_path: Path
) -> None:
    body = {
        "content": _document(12),
        "source": "pets.txt",
        "collection": "jobs-sync",
        "document_id": "pets",
        "chunk_size": 48,
        "chunk_overlap": 8,
    }
    accepted = api.post("/api/v1/rag/index", headers=ASYNC, json=body)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]
    assert accepted.headers["location"] == f"/api/v1/jobs/{job_id}"
    assert _payloads(module_database_url, job_id) == 1
    workers.append(Worker(module_database_url, tmp_path / "worker.log"))
    job = wait_for(api, job_id, ended, timeout=180)
    assert job["status"] == "succeeded", (job, (tmp_path / "worker.log").read_text())
    assert job["attempts"] == 1 and job["error"] is None
    assert job["started_at"] is not None and job["finished_at"] is not None
    result = job["result"]
    assert result["document_id"] == "pets" and result["chunks_created"] > 1
    assert job["progress"] == {
        "done": result["chunks_created"],
        "total": result["chunks_created"],
        "unit": "chunks",
    }
    # The synchronous call answers the same body (the document is stored, unchanged).
    again = api.post("/api/v1/rag/index", headers=AUTH, json=body)
    assert again.status_code == 200 and again.json() == result
    stored = api.get("/api/v1/rag/documents/pets?collection=jobs-sync", headers=AUTH).json()
    assert stored["chunks"] == result["chunks_created"]
    assert _payloads(module_database_url, job_id) == 0
    # Cancelling a job that has ended is a conflict.
    refused = api.delete(f"/api/v1/jobs/{job_id}", headers=AUTH)
    assert refused.status_code == 409 and refused.json()["code"] == "job_ended"
    # An upload: its result is the synchronous call's 201 body, the stored document.
    uploaded = api.post(
        "/api/v1/rag/documents",
        headers=ASYNC,
        data={"collection": "jobs-sync", "document_id": "notes"},
        files={"file": ("notes.md", _document(4).encode(), "text/markdown")},
    )
    assert uploaded.status_code == 202, uploaded.text
    upload_job = wait_for(api, uploaded.json()["id"], ended, timeout=120)
    assert upload_job["status"] == "succeeded", upload_job
    document = api.get("/api/v1/rag/documents/notes?collection=jobs-sync", headers=AUTH)
    assert upload_job["result"] == document.json()
    assert _payloads(module_database_url, uploaded.json()["id"]) == 0


def test_a_transcription_job_counts_its_audio_for_its_tenant(
    api: httpx.Client, workers: list[Worker], module_database_url: str, tmp_path: Path
) -> None:
    """The worker transcribes (real Whisper), reports seconds of audio, and counts them in the
    job's tenant's usage, which the API reads back (the API transcribes nothing here)."""
    audio = (AUDIO / "long.ogg").read_bytes()
    usage = api.get("/api/v1/usage", headers=AUTH).json()
    assert usage["totals"]["audio_seconds"] == 0
    accepted = api.post(
        "/api/v1/transcription/transcribe",
        headers=ASYNC,
        files={"file": ("long.ogg", audio, "audio/ogg")},
        data={"temperature": "0", "response_format": "text"},
    )
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]
    assert accepted.json()["progress"] == {"done": 0, "total": 35, "unit": "seconds"}
    assert _payloads(module_database_url, job_id) == 1
    workers.append(Worker(module_database_url, tmp_path / "worker.log"))
    job = wait_for(api, job_id, ended, timeout=180)
    assert job["status"] == "succeeded", (job, (tmp_path / "worker.log").read_text())
    assert job["progress"] == {"done": 35, "total": 35, "unit": "seconds"}
    assert isinstance(job["result"], str) and "umbrella" in job["result"].lower()
    assert _payloads(module_database_url, job_id) == 0
    # The worker writes its counts every second (SYNTHSTACK_USAGE_FLUSH_SECONDS=1).
    deadline = time.monotonic() + 30
    while True:
        usage = api.get("/api/v1/usage", headers=AUTH).json()
        if usage["totals"]["audio_seconds"] > 0:
            break
        assert time.monotonic() < deadline, usage
        time.sleep(0.5)
    assert usage["tenant"] == "jobs-tenant"
    assert abs(usage["totals"]["audio_seconds"] - 34.97) < 0.05, usage["totals"]
    # The synchronous call answers the same text.
    synchronous = api.post(
        "/api/v1/transcription/transcribe",
        headers=AUTH,
        files={"file": ("long.ogg", audio, "audio/ogg")},
        data={"temperature": "0", "response_format": "text"},
    )
    assert synchronous.status_code == 200 and synchronous.text == job["result"]


def test_a_job_s_event_stream_follows_its_progress(
    api: httpx.Client, workers: list[Worker], module_database_url: str, tmp_path: Path
) -> None:
    """An indexing of many chunks, followed from before a worker takes it: the queued job, the
    chunks embedded growing slice by slice, and the succeeded job last."""
    body = {
        "content": _document(400),
        "source": "events.txt",
        "collection": "jobs-events",
        "document_id": "events",
        "chunk_size": 32,
        "chunk_overlap": 4,
    }
    accepted = api.post("/api/v1/rag/index", headers=ASYNC, json=body)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]
    workers.append(Worker(module_database_url, tmp_path / "worker.log"))
    followed = api.get(f"/api/v1/jobs/{job_id}/events", headers=AUTH)
    assert followed.status_code == 200, followed.text
    assert followed.headers["content-type"] == "text/event-stream"
    blocks = followed.text.split("\n\n")
    assert blocks[-1] == ""
    jobs = []
    for block in blocks[:-1]:
        name, data = block.split("\n")
        assert name == "event: job"
        jobs.append(json.loads(data.removeprefix("data: ")))
    assert jobs[0]["status"] in {"queued", "running"}
    assert jobs[-1] == api.get(f"/api/v1/jobs/{job_id}", headers=AUTH).json()
    assert jobs[-1]["status"] == "succeeded", (jobs[-1], (tmp_path / "worker.log").read_text())
    total = jobs[-1]["progress"]["total"]
    done = [job["progress"]["done"] for job in jobs]
    assert done == sorted(done) and done[-1] == total
    # The stream saw the work going on, not only its start and end (64 chunks a slice).
    assert any(0 < value < total for value in done), done


def test_a_killed_worker_s_job_runs_again_to_a_complete_document(
    api: httpx.Client, workers: list[Worker], module_database_url: str, tmp_path: Path
) -> None:
    body = {
        "content": _document(1500),
        "source": "long.txt",
        "collection": "jobs-kill",
        "document_id": "long",
        "chunk_size": 32,
        "chunk_overlap": 4,
    }
    accepted = api.post("/api/v1/rag/index", headers=ASYNC, json=body)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]
    first = Worker(module_database_url, tmp_path / "first.log")
    workers.append(first)
    running = wait_for(
        api,
        job_id,
        lambda job: ended(job) or job["progress"]["done"] > 0,
        timeout=180,
    )
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    assert running["status"] == "running", running
    total = running["progress"]["total"]
    assert 0 < running["progress"]["done"] < total
    # Nothing half-written: the document is not there until the job has stored all of it.
    missing = api.get("/api/v1/rag/documents/long?collection=jobs-kill", headers=AUTH)
    assert missing.status_code == 404
    workers.append(Worker(module_database_url, tmp_path / "second.log"))
    job = wait_for(api, job_id, ended, timeout=300)
    assert job["status"] == "succeeded", (job, (tmp_path / "second.log").read_text())
    assert job["attempts"] == 2
    assert job["result"]["chunks_created"] == total == job["progress"]["done"]
    stored = api.get("/api/v1/rag/documents/long?collection=jobs-kill", headers=AUTH).json()
    assert stored["chunks"] == total
    assert _payloads(module_database_url, job_id) == 0


def test_the_embedded_worker_runs_jobs_in_the_server_process(module_database_url: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        for client in api_client(module_database_url, "embedded", patch):
            body = {"content": _document(3), "source": "e.txt", "collection": "jobs-embedded"}
            accepted = client.post("/api/v1/rag/index", headers=ASYNC, json=body)
            assert accepted.status_code == 202, accepted.text
            job = wait_for(client, accepted.json()["id"], ended, timeout=120)
            assert job["status"] == "succeeded", job
            document = job["result"]["document_id"]
            stored = client.get(
                f"/api/v1/rag/documents/{document}?collection=jobs-embedded", headers=AUTH
            )
            assert stored.status_code == 200
