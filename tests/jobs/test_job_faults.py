"""Jobs meeting faults, with real processes: PostgreSQL stopped and started again while a
``synthstack worker`` runs them, and an embedding provider (the OpenAI stub, through the real
``openai`` SDK) answering 429 and 5xx.

The database test runs a PostgreSQL of its own (the embedded server in a folder of the test),
stopped with ``pg_ctl stop`` (fast: every session is cut) and started again on the same socket.
The provider test turns the SDK's own retries off (``SYNTHSTACK_PROVIDER_MAX_RETRIES=0``), so
each run of a job sends one request and the runs are the jobs' retries: 2 s, then 4 s, apart,
unless the provider's answer says how long to wait (``Retry-After``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from synthstack_testing import OpenAIStub
from tests.faults.support import owned_postgres
from tests.jobs.support import ASYNC, AUTH, Worker, api_client, document, ended, wait_for

#: How long PostgreSQL stays down.
OUTAGE_SECONDS = 8.0
#: What the provider's 429 asks for: more than the backoff's first wait (2 s) and the worker's
#: polling for jobs scheduled later (5 s) together.
RETRY_AFTER_SECONDS = 15
#: What a problem says, whoever answers it (a job's error or a synchronous call's body).
PROBLEM_FIELDS = ("type", "title", "status", "code", "detail")


def _submit(api: httpx.Client, body: dict[str, Any]) -> str:
    accepted = api.post("/api/v1/rag/index", headers=ASYNC, json=body)
    assert accepted.status_code == 202, accepted.text
    job_id: str = accepted.json()["id"]
    return job_id


def test_jobs_finish_after_postgresql_was_stopped_and_started_again(tmp_path: Path) -> None:
    worker: Worker | None = None
    with owned_postgres("restart") as (postgres, url):
        try:
            with pytest.MonkeyPatch.context() as patch:
                for api in api_client(url, "none", patch):
                    bodies = [
                        {
                            "content": document(250, topic),
                            "source": f"{topic}.txt",
                            "collection": "restart",
                            "document_id": topic,
                            "chunk_size": 32,
                            "chunk_overlap": 4,
                        }
                        for topic in ("cats", "owls", "foxes", "hares")
                    ]
                    ids = [_submit(api, body) for body in bodies]
                    worker = Worker(url, tmp_path / "worker.log", concurrency=2)
                    # The first job is under way (some chunks embedded) when the database stops.
                    running = wait_for(
                        api,
                        ids[0],
                        lambda job: ended(job) or job["progress"]["done"] > 0,
                        180,
                        worker,
                    )
                    assert running["status"] == "running", running
                    postgres.stop()
                    time.sleep(OUTAGE_SECONDS)
                    assert worker.process.poll() is None, worker.output()
                    assert postgres.start() == url  # the same server, on the same socket
                    jobs = [wait_for(api, job_id, ended, 300, worker) for job_id in ids]
                    # The worker lived through it: the same process, its Procrastinate worker started
                    # again once the database answered, ran every job to its end.
                    assert worker.process.poll() is None, worker.output()
                    assert "starting it again in" in worker.output()
                    for job, body in zip(jobs, bodies, strict=True):
                        assert job["status"] == "succeeded", (job, worker.output())
                        created = job["result"]["chunks_created"]
                        assert job["progress"] == {
                            "done": created,
                            "total": created,
                            "unit": "chunks",
                        }
                        stored = api.get(
                            f"/api/v1/rag/documents/{body['document_id']}?collection=restart",
                            headers=AUTH,
                        )
                        assert stored.status_code == 200 and stored.json()["chunks"] == created
                        # The synchronous call makes as many chunks of the same content.
                        again = api.post(
                            "/api/v1/rag/index", headers=AUTH, json={**body, "collection": "sync"}
                        )
                        assert again.status_code == 200, again.text
                        assert again.json()["chunks_created"] == created
                    # The job cut off by the outage ran again.
                    assert jobs[0]["attempts"] >= 2, jobs[0]
        finally:
            if worker is not None:
                worker.stop()


def test_database_outages_do_not_use_up_a_job_s_attempts(tmp_path: Path) -> None:
    """One attempt allowed (``SYNTHSTACK_JOB_MAX_ATTEMPTS=1``), and PostgreSQL stopped twice
    while the job runs: each outage cuts a run, neither is an attempt, the third run ends it."""
    worker: Worker | None = None
    with owned_postgres("outages") as (postgres, url):
        try:
            with pytest.MonkeyPatch.context() as patch:
                for api in api_client(url, "none", patch):
                    body = {
                        "content": document(400, "otters"),
                        "source": "otters.txt",
                        "collection": "outages",
                        "document_id": "otters",
                        "chunk_size": 32,
                        "chunk_overlap": 4,
                    }
                    job_id = _submit(api, body)
                    worker = Worker(
                        url, tmp_path / "worker.log", extra={"SYNTHSTACK_JOB_MAX_ATTEMPTS": "1"}
                    )
                    for run in (1, 2):
                        # The run is under way (run 1: some chunks embedded) when the database
                        # stops.
                        running = wait_for(
                            api,
                            job_id,
                            lambda job, run=run: ended(job)
                            or (
                                job["status"] == "running"
                                and job["attempts"] == run
                                and (run > 1 or job["progress"]["done"] > 0)
                            ),
                            300,
                            worker,
                        )
                        assert running["status"] == "running", (running, worker.output())
                        postgres.stop()
                        time.sleep(OUTAGE_SECONDS / 2)
                        assert worker.process.poll() is None, worker.output()
                        assert postgres.start() == url
                    job = wait_for(api, job_id, ended, 300, worker)
                    assert job["status"] == "succeeded", (job, worker.output())
                    assert job["attempts"] == 3 and job["error"] is None
                    stored = api.get(
                        "/api/v1/rag/documents/otters?collection=outages", headers=AUTH
                    )
                    assert stored.status_code == 200
                    assert stored.json()["chunks"] == job["result"]["chunks_created"]
        finally:
            if worker is not None:
                worker.stop()


@pytest.fixture(scope="module")
def openai_stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as stub:
        yield stub


def _provider(stub: OpenAIStub) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": stub.api_key,
        "OPENAI_BASE_URL": stub.base_url,
        "EMBEDDING_MODEL": "text-embedding-3-small",
        "SYNTHSTACK_PROVIDER_MAX_RETRIES": "0",
        "SYNTHSTACK_JOB_MAX_ATTEMPTS": "3",
    }


def _embedding_requests(stub: OpenAIStub) -> int:
    return sum(1 for request in stub.requests if request.path.endswith("/embeddings"))


def test_a_provider_s_429_and_5xx_are_retried_then_the_job_fails_with_its_problem(
    module_database_url: str, openai_stub: OpenAIStub, tmp_path: Path
) -> None:
    provider = _provider(openai_stub)
    worker: Worker | None = None

    def body(topic: str) -> dict[str, Any]:
        return {"content": document(3, topic), "source": f"{topic}.txt", "collection": "remote"}

    with pytest.MonkeyPatch.context() as patch:
        for api in api_client(module_database_url, "none", patch, provider):
            try:
                worker = Worker(module_database_url, tmp_path / "worker.log", extra=provider)
                # A first job: the worker is up and embeds with the provider.
                first = wait_for(api, _submit(api, body("wrens")), ended, timeout=180)
                assert first["status"] == "succeeded", (first, worker.output())
                assert first["attempts"] == 1 and _embedding_requests(openai_stub) >= 1

                # A 429, then a 503, then an answer: the third run succeeds.
                openai_stub.reset()
                openai_stub.fail_next(429)
                openai_stub.fail_next(503)
                started = time.monotonic()
                job = wait_for(api, _submit(api, body("larks")), ended, timeout=120)
                assert job["status"] == "succeeded", (job, worker.output())
                assert job["attempts"] == 3 and job["error"] is None
                assert time.monotonic() - started >= 2 + 4  # the waits between the runs
                assert _embedding_requests(openai_stub) == 3  # one per run: no SDK retry
                created = job["result"]["chunks_created"]
                assert created >= 1 and job["progress"]["done"] == created

                # A 429 whose Retry-After asks for longer than the backoff (2 s): the next run
                # waits for it.
                openai_stub.reset()
                openai_stub.fail_next(429, retry_after=RETRY_AFTER_SECONDS)
                started = time.monotonic()
                job = wait_for(api, _submit(api, body("finches")), ended, timeout=120)
                assert job["status"] == "succeeded", (job, worker.output())
                assert job["attempts"] == 2 and _embedding_requests(openai_stub) == 2
                assert time.monotonic() - started >= RETRY_AFTER_SECONDS

                # What the synchronous call answers when the provider fails (HTTP 500).
                openai_stub.reset()
                openai_stub.fail_next(500)
                answer = api.post("/api/v1/rag/index", headers=AUTH, json=body("crows"))
                assert answer.status_code == 502, answer.text
                problem = {field: answer.json()[field] for field in PROBLEM_FIELDS}
                assert problem["code"] == "provider_error"

                # A provider that always fails: the job fails after its 3 runs, with that problem,
                # which names the request that submitted the job.
                openai_stub.reset()
                openai_stub.fail_next(500, times=100)
                accepted = api.post(
                    "/api/v1/rag/index",
                    headers={**ASYNC, "X-Request-ID": "submit-crows-0001"},
                    json=body("crows"),
                )
                assert accepted.status_code == 202, accepted.text
                assert accepted.headers["x-request-id"] == "submit-crows-0001"
                failed = wait_for(api, accepted.json()["id"], ended, timeout=120)
                assert failed["status"] == "failed", (failed, worker.output())
                assert failed["attempts"] == 3 and failed["result"] is None
                assert {field: failed["error"][field] for field in PROBLEM_FIELDS} == problem
                assert failed["error"]["request_id"] == "submit-crows-0001"
                assert _embedding_requests(openai_stub) == 3
                # The worker's line about the failure names the request too.
                assert f"{failed['id']} failed on run 3" in worker.output()
                assert "request_id=submit-crows-0001" in worker.output()
            finally:
                openai_stub.reset()
                if worker is not None:
                    worker.stop()
