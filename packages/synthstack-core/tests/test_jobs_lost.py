"""A job whose last run's end the database failed to store, while Procrastinate recorded it (and
deleted its record), is failed by the stalled-job check with the database's 503 problem, instead
of showing ``queued`` or ``running`` for ever; jobs Procrastinate still holds are left alone."""

from __future__ import annotations

import json
import uuid

import psycopg

from synthstack_core import Settings, SynthStack
from synthstack_core.http import HttpRequest
from synthstack_core.operations import by_id as operation

KEY = "lost-jobs-key-0001"


async def test_a_job_procrastinate_no_longer_holds_is_failed(empty_database_url: str) -> None:
    settings = Settings(
        DATABASE_URL=empty_database_url, SYNTHSTACK_API_KEYS=f"lost:{KEY}", SYNTHSTACK_WORKER="none"
    )
    index = operation("rag-index")
    headers = {
        "authorization": f"Bearer {KEY}",
        "content-type": "application/json",
        "prefer": "respond-async",
    }
    async with SynthStack(settings) as stack:
        submitted = []
        for name in ("lost", "kept"):
            body = {"content": f"The {name} heron.", "source": f"{name}.txt", "collection": "c"}
            answer = await stack.handle(
                index,
                HttpRequest(
                    "POST",
                    index.path,
                    {**headers, "x-request-id": f"submit-{name}"},
                    json.dumps(body).encode(),
                ),
            )
            assert answer.status == 202, answer.body
            submitted.append(json.loads(answer.body)["id"])
        lost, kept = submitted
        assert await stack.jobs.fail_lost_jobs() == []  # both held by Procrastinate
        async with await psycopg.AsyncConnection.connect(empty_database_url) as connection:
            # What a failed last run leaves when storing the job's end failed: the row says
            # running, Procrastinate's record of it is gone.
            await connection.execute("UPDATE jobs SET status = 'running' WHERE id = %s", (lost,))
            await connection.execute(
                "DELETE FROM procrastinate_jobs"
                " WHERE id = (SELECT procrastinate_job_id FROM jobs WHERE id = %s)",
                (lost,),
            )
            await connection.commit()
        assert [str(job_id) for job_id in await stack.jobs.fail_lost_jobs()] == [lost]
        assert await stack.jobs.fail_lost_jobs() == []
        failed = await stack.jobs.get("lost", uuid.UUID(lost))
        assert failed.status == "failed" and failed.finished_at is not None
        assert failed.error is not None
        assert {key: failed.error[key] for key in ("status", "code", "instance", "request_id")} == {
            "status": 503,
            "code": "dependency_unavailable",
            "instance": index.path,
            # The request that submitted it, whose access-log line has the same id.
            "request_id": "submit-lost",
        }
        assert (await stack.jobs.get("lost", uuid.UUID(kept))).status == "queued"
        async with await psycopg.AsyncConnection.connect(empty_database_url) as connection:
            cursor = await connection.execute(
                "SELECT job_id::text FROM job_payloads ORDER BY job_id"
            )
            assert [row[0] for row in await cursor.fetchall()] == [kept]
