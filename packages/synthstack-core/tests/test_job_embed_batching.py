"""Indexing jobs share embedding runs (``SYNTHSTACK_JOB_EMBED_BATCHING``), on the real model and a
real PostgreSQL.

Two tenants' indexing jobs whose chunks wait while the model is busy are embedded in one model run;
each job stores the vectors a synchronous index of the same content stores, and each tenant is
counted its own texts. With the setting off, nothing is shared.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from synthstack_core import Settings, SynthStack
from synthstack_core.http import HttpRequest
from synthstack_core.operations import by_id as operation
from synthstack_core.providers.local_onnx import LOCAL_MODEL

KEYS = {"batch-a": "batch-key-a-0001", "batch-b": "batch-key-b-0001", "batch-c": "batch-key-c-0001"}
TITLES = {
    "batch-a": "Cats and the purring of domestic felines",
    "batch-b": "Tidal energy along the northern coast",
}


def _content(tenant: str) -> str:
    """A title, then a body of several long chunks (a title-only chunk and long ones)."""
    body = " ".join(
        f"Paragraph {n} of {tenant}: {TITLES[tenant].lower()} is studied again, with measurements "
        f"taken at site {n * 7}, compared with earlier surveys and discussed at length." * 3
        for n in range(6)
    )
    return f"{TITLES[tenant]}\n\n{body}"


def _settings(database_url: str, *, batching: bool) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
        SYNTHSTACK_API_KEYS=",".join(f"{name}:{key}" for name, key in KEYS.items()),
        SYNTHSTACK_KEY_CACHE_SECONDS=0,
        SYNTHSTACK_MIGRATE_ON_START=False,
        SYNTHSTACK_WORKER="none",  # the jobs are run here, as a worker runs them
        SYNTHSTACK_USAGE_FLUSH_SECONDS=3600,
        SYNTHSTACK_JOB_EMBED_BATCHING=batching,
    )


async def _index(stack: SynthStack, tenant: str, body: dict[str, Any], *, job: bool) -> Any:
    op = operation("rag-index")
    headers = {"authorization": f"Bearer {KEYS[tenant]}", "content-type": "application/json"}
    if job:
        headers["prefer"] = "respond-async"
    raw = json.dumps(body).encode()
    response = await stack.handle(op, HttpRequest(op.method, op.path, headers, raw))
    assert response.status == (202 if job else 200), response.body
    return json.loads(response.body)


async def _vectors(stack: SynthStack, document_id: str) -> np.ndarray[Any, Any]:
    async with stack.database.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT c.embedding::text FROM rag_chunks c JOIN rag_documents d"
                    " ON d.id = c.document_id WHERE d.external_id = :id ORDER BY c.position"
                ),
                {"id": document_id},
            )
        ).scalars()
        return np.array([json.loads(row) for row in rows], dtype=np.float32)


def _runs() -> tuple[float, float]:
    """Shared embedding runs so far, and those that carried one caller alone."""
    labels = {"model": LOCAL_MODEL.id}
    name = "synthstack_embedding_shared_run_callers"
    count = REGISTRY.get_sample_value(f"{name}_count", labels) or 0.0
    alone = REGISTRY.get_sample_value(f"{name}_bucket", {**labels, "le": "1.0"}) or 0.0
    return count, alone


@pytest.mark.parametrize("batching", [True, False], ids=["batching", "one-run-per-job"])
async def test_jobs_waiting_for_the_model_share_a_run_and_keep_their_vectors_and_tenants(
    empty_database_url: str, batching: bool
) -> None:
    async with SynthStack(_settings(empty_database_url, batching=batching)) as stack:
        stack.usage.recorder.bind(None)
        # The synchronous path, by a third tenant (whose cache entries are its own).
        expected = {}
        for tenant in TITLES:
            body = {
                "content": _content(tenant),
                "document_id": f"sync-{tenant}",
                "title": TITLES[tenant],
                "source": tenant,
                "collection": "sync",
                "chunk_size": 128,
            }
            await _index(stack, "batch-c", body, job=False)
            expected[tenant] = await _vectors(stack, f"sync-{tenant}")
            assert len(expected[tenant]) >= 3
        jobs = {}
        for tenant in TITLES:
            body = {
                "content": _content(tenant),
                "document_id": f"job-{tenant}",
                "title": TITLES[tenant],
                "source": tenant,
                "collection": "jobs",
                "chunk_size": 128,
            }
            jobs[tenant] = uuid.UUID((await _index(stack, tenant, body, job=True))["id"])
        stack.usage.recorder.bind(None)  # what the requests left bound is not the jobs'
        # The model busy with a long run (another job's texts, as it were) while both jobs start.
        busy = [
            f"Busy text {n}: " + "a long sentence about nothing in particular. " * 30
            for n in range(128)
        ]
        before = _runs()
        occupier = asyncio.create_task(stack.embeddings.embed(busy, tenant=None, gather=True))
        await asyncio.sleep(0.2)  # the occupier holds the model (it takes seconds)
        assert not occupier.done()
        await asyncio.gather(*(stack.jobs.run(job_id, attempt=1) for job_id in jobs.values()))
        await occupier
        (runs, alone), (runs_before, alone_before) = _runs(), before
        if batching:
            # The occupier's run alone, then one run carrying both jobs' chunks.
            assert (runs - runs_before, alone - alone_before) == (2, 1)
        else:
            assert runs == runs_before  # nothing shared
        for tenant, job_id in jobs.items():
            job = await stack.jobs.get(tenant, job_id)
            assert job.status == "succeeded", job.error
            stored = await _vectors(stack, f"job-{tenant}")
            assert stored.shape == expected[tenant].shape
            np.testing.assert_allclose(stored, expected[tenant], atol=2e-5)
        await stack.usage.recorder.flush()
        async with stack.database.session() as session:
            counted = dict(
                (
                    await session.execute(
                        text(
                            "SELECT t.name, sum(u.texts_embedded) FROM usage_quantities u"
                            " JOIN tenants t ON t.id = u.tenant_id GROUP BY t.name"
                        )
                    )
                ).all()
            )
        for tenant in TITLES:
            assert counted[tenant] == len(expected[tenant]), counted


async def test_cancelled_callers_leave_the_others_their_rows(empty_database_url: str) -> None:
    async with SynthStack(_settings(empty_database_url, batching=True)) as stack:
        embeddings = stack.embeddings
        busy = [f"Busy {n}: " + "words that keep the model at work. " * 30 for n in range(64)]
        texts = {tenant: _content(tenant).split(". ")[:5] for tenant in TITLES}
        expected = {
            tenant: (await embeddings.embed(texts[tenant], tenant="batch-c")).vectors
            for tenant in TITLES
        }
        occupier = asyncio.create_task(embeddings.embed(busy, tenant=None, gather=True))
        await asyncio.sleep(0.2)  # the occupier holds the model
        callers = {
            tenant: asyncio.create_task(embeddings.embed(texts[tenant], tenant=tenant, gather=True))
            for tenant in TITLES
        }
        await asyncio.sleep(0.05)  # both queued behind it
        assert not occupier.done()
        occupier.cancel()  # mid-run: it finishes the run, then is cancelled
        callers["batch-a"].cancel()  # queued: it leaves the queue
        got = await callers["batch-b"]
        np.testing.assert_allclose(got.vectors, expected["batch-b"], atol=2e-5)
        for task in (occupier, callers["batch-a"]):
            with pytest.raises(asyncio.CancelledError):
                await task
