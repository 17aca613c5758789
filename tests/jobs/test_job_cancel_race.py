"""A cancel that meets a job writing its document, made deterministic with row locks the test
holds, with a real ``synthstack worker``.

The rule: the job's write and a cancel are serialised on the job's row (the write claims it in its
own transaction once it holds the document's row). A cancel committed before the write claims the
job rolls the write back: the job is ``cancelled`` and the document as it was. A cancel arriving
after the claim waits for the write's commit, then answers 409 ``job_ended``: the job ends
``succeeded`` with the document complete.

(Procrastinate's abort, which a cancel also asks for, cancels the job's task when it arrives; a
write that has committed by then stays. The first case is that: before the claim, the write
committed while the cancel waited, and the job ended ``cancelled`` over a stored document.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.jobs.support import ASYNC, AUTH, Worker, api_client, document, ended, wait_for

COLLECTION = "race"
DOCUMENT = "herons"


def _body(paragraphs: int, topic: str) -> dict[str, Any]:
    return {
        "content": document(paragraphs, topic),
        "source": "herons.txt",
        "collection": COLLECTION,
        "document_id": DOCUMENT,
        "chunk_size": 32,
        "chunk_overlap": 4,
    }


def _stored(api: httpx.Client) -> dict[str, Any]:
    answer = api.get(f"/api/v1/rag/documents/{DOCUMENT}?collection={COLLECTION}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _waiting(monitor: psycopg.Connection[Any], statement: str) -> bool:
    """Whether a session of this database waits for a lock in a statement starting with
    ``statement``."""
    row = monitor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query LIKE %s",
        (statement + "%",),
    ).fetchone()
    return row is not None and row[0] > 0


def _until(condition: Any, what: str, worker: Worker, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}\n{worker.output()[-6000:]}"
        time.sleep(0.1)


def _run_over(monitor: psycopg.Connection[Any], job_id: str) -> bool:
    """Whether Procrastinate no longer runs the job (its record deleted or ended)."""
    row = monitor.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"
        " AND id = (SELECT procrastinate_job_id FROM jobs WHERE id = %s)",
        (job_id,),
    ).fetchone()
    return row is not None and row[0] == 0


def _cancel(api: httpx.Client, job_id: str, answers: list[httpx.Response]) -> None:
    answers.append(api.delete(f"/api/v1/jobs/{job_id}", headers=AUTH))


@pytest.fixture
def monitor(module_database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(module_database_url, autocommit=True) as connection:
        yield connection


def test_a_cancel_meeting_the_job_s_write(
    module_database_url: str, monitor: psycopg.Connection[Any], tmp_path: Path
) -> None:
    worker: Worker | None = None
    with pytest.MonkeyPatch.context() as patch:
        for api in api_client(module_database_url, "none", patch):
            try:
                before = api.post("/api/v1/rag/index", headers=AUTH, json=_body(2, "herons"))
                assert before.status_code == 200, before.text
                original = _stored(api)

                # 1. The cancel commits first: it takes the job's row while the job's write waits
                # for the document's row, before it claims the job; then the write, let go, waits
                # for the job's row too (the claim; before, it committed and only its end
                # waited); the cancel gets it first, and the write is rolled back.
                answers: list[httpx.Response] = []
                accepted = api.post("/api/v1/rag/index", headers=ASYNC, json=_body(6, "egrets"))
                assert accepted.status_code == 202, accepted.text
                job_id = accepted.json()["id"]
                with (
                    psycopg.connect(module_database_url) as document_holder,
                    psycopg.connect(module_database_url) as job_holder,
                ):
                    document_holder.execute(
                        "SELECT d.id FROM rag_documents d"
                        " JOIN rag_collections c ON c.id = d.collection_id"
                        " WHERE c.name = %s AND d.external_id = %s FOR UPDATE",
                        (COLLECTION, DOCUMENT),
                    )
                    worker = Worker(module_database_url, tmp_path / "worker.log")
                    _until(
                        lambda: _waiting(monitor, "INSERT INTO rag_documents"),
                        "the job's write waits for the document's row",
                        worker,
                    )
                    job_holder.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (job_id,))
                    cancelling = threading.Thread(target=_cancel, args=(api, job_id, answers))
                    cancelling.start()
                    _until(
                        lambda: _waiting(monitor, "SELECT jobs.status"),
                        "the cancel waits for the job's row",
                        worker,
                    )
                    document_holder.rollback()
                    _until(
                        lambda: _waiting(monitor, "UPDATE jobs"),
                        "the job waits for its row",
                        worker,
                    )
                    assert not answers
                    job_holder.rollback()  # the cancel first, then the job
                cancelling.join(60)
                assert len(answers) == 1
                assert answers[0].status_code == 200, answers[0].text
                assert answers[0].json()["status"] == "cancelled"
                _until(
                    lambda job_id=job_id: _run_over(monitor, job_id), "the job's run ended", worker
                )
                job = wait_for(api, job_id, ended, 60, worker)
                assert job["status"] == "cancelled" and job["result"] is None, job
                assert _stored(api) == original  # as it was: nothing of the job's write

                # 2. The write claims the job first (then waits, on the old chunks' rows): the
                # cancel waits for its commit and answers 409; the job ends succeeded.
                answers.clear()
                with psycopg.connect(module_database_url) as holder:
                    holder.execute(
                        "SELECT k.id FROM rag_chunks k JOIN rag_documents d"
                        " ON d.id = k.document_id JOIN rag_collections c"
                        " ON c.id = d.collection_id"
                        " WHERE c.name = %s AND d.external_id = %s FOR UPDATE OF k",
                        (COLLECTION, DOCUMENT),
                    )
                    accepted = api.post("/api/v1/rag/index", headers=ASYNC, json=_body(4, "storks"))
                    assert accepted.status_code == 202, accepted.text
                    job_id = accepted.json()["id"]
                    _until(
                        lambda: _waiting(monitor, "WITH gone AS (DELETE FROM rag_chunks"),
                        "the job's write waits for the old chunks' rows",
                        worker,
                    )
                    cancelling = threading.Thread(target=_cancel, args=(api, job_id, answers))
                    cancelling.start()
                    _until(
                        lambda: _waiting(monitor, "SELECT jobs.status"),
                        "the cancel waits for the job's row",
                        worker,
                    )
                    assert not answers
                    holder.rollback()  # the write commits, then the cancel reads the job
                cancelling.join(60)
                assert len(answers) == 1
                assert answers[0].status_code == 409, answers[0].text
                assert answers[0].json()["code"] == "job_ended"
                job = wait_for(api, job_id, ended, 60, worker)
                assert job["status"] == "succeeded", (job, worker.output())
                stored = _stored(api)
                assert stored["chunks"] == job["result"]["chunks_created"]
                assert stored["content_sha256"] != original["content_sha256"]
            finally:
                if worker is not None:
                    worker.stop()
