"""Indexing SciFact documents synchronously and through jobs, with and without shared embedding runs.

In one process, on the embedded PostgreSQL in ``bench/.data`` (or ``--database-url``), the first
``--docs`` SciFact documents (``--corpus``: ``corpus.jsonl``; by default the one in ``--data``, the
directory ``bench/retrieval.py`` reads) are indexed as ``bench/retrieval.py`` indexes them (title +
blank line + text, the title given, 256-token chunks, overlap 32), three ways:

- ``sync``: one ``POST /api/v1/rag/index`` at a time through ``SynthStack.handle``;
- ``jobs``: every document submitted with ``Prefer: respond-async`` to a stack whose embedded worker
  runs ``--concurrency`` jobs at once, ``SYNTHSTACK_JOB_EMBED_BATCHING=true``; timed from the first
  submission until every job has ended;
- ``jobs-unbatched``: the same with ``SYNTHSTACK_JOB_EMBED_BATCHING=false``.

Each round runs the three in a rotated order (so load changes on a shared machine hit all), each
into a new collection of a tenant of its own, with the embedding cache off. Prints documents per
second per variant and round, the medians, their ratios, and the CPU other processes took meanwhile
(``ForeignLoad``)::

    hatch run bench-ingest-jobs --docs 500 --rounds 2 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs installed
from _servers import ForeignLoad, database_processes, machine, progress, start_database
from retrieval import CHUNK_OVERLAP, CHUNK_SIZE, DEFAULT_DATA, Doc, _read_jsonl
from sqlalchemy import text

VARIANTS = ("sync", "jobs", "jobs-unbatched")
CORPUS_ENV = "SYNTHSTACK_BENCH_SCIFACT_CORPUS"


def load_docs(corpus: Path, limit: int) -> list[Doc]:
    """The first ``limit`` documents of ``corpus.jsonl``, as ``bench/retrieval.py`` indexes them."""
    rows = _read_jsonl(corpus)[:limit]
    return [
        Doc(
            str(row["_id"]),
            f"{row.get('title') or ''}\n\n{row.get('text') or ''}".strip(),
            str(row.get("title") or "").strip() or None,
        )
        for row in rows
    ]


def _settings(database_url: str, tenant: str, *, variant: str, concurrency: int) -> Any:
    from synthstack_core import Settings

    return Settings(
        DATABASE_URL=database_url,
        SYNTHSTACK_API_KEYS=f"{tenant}:{tenant}-key-000000",
        SYNTHSTACK_MIGRATE_ON_START=False,
        SYNTHSTACK_CACHE_MAX_ENTRIES=0,  # every text embedded, whatever ran before
        SYNTHSTACK_WORKER="none" if variant == "sync" else "embedded",
        SYNTHSTACK_WORKER_CONCURRENCY=concurrency,
        SYNTHSTACK_JOB_EMBED_BATCHING=variant == "jobs",
    )


async def _post(stack: Any, tenant: str, body: dict[str, Any], *, job: bool) -> None:
    from synthstack_core.http import HttpRequest
    from synthstack_core.operations import by_id

    op = by_id("rag-index")
    headers = {"authorization": f"Bearer {tenant}-key-000000", "content-type": "application/json"}
    if job:
        headers["prefer"] = "respond-async"
    response = await stack.handle(
        op, HttpRequest(op.method, op.path, headers, json.dumps(body).encode())
    )
    if response.status != (202 if job else 200):
        raise RuntimeError(f"{response.status}: {response.body[:300]!r}")


async def _unfinished(stack: Any, tenant: str) -> tuple[int, int]:
    """This tenant's jobs not ended, and those failed."""
    async with stack.database.session() as session:
        row = (
            await session.execute(
                text(
                    "SELECT count(*) FILTER (WHERE j.status IN ('queued', 'running')),"
                    " count(*) FILTER (WHERE j.status <> 'succeeded' AND j.status NOT IN"
                    " ('queued', 'running')) FROM jobs j JOIN tenants t ON t.id = j.tenant_id"
                    " WHERE t.name = :tenant"
                ),
                {"tenant": tenant},
            )
        ).one()
    return int(row[0]), int(row[1])


async def run_variant(
    database_url: str, docs: Sequence[Doc], variant: str, concurrency: int, label: str
) -> dict[str, Any]:
    """Index ``docs`` one way; documents per second (setup and the model's loading untimed)."""
    from synthstack_core import SynthStack

    tenant = f"ingest-{label}"
    settings = _settings(database_url, tenant, variant=variant, concurrency=concurrency)
    job = variant != "sync"
    async with SynthStack(settings) as stack:
        await stack.embeddings.embed(["warm up the model"], tenant=None)
        collection = f"ingest-{label}-{uuid.uuid4().hex[:6]}"
        bodies = [
            {
                "content": doc.content,
                "source": f"scifact/{doc.doc_id}",
                "collection": collection,
                "document_id": doc.doc_id,
                **({"title": doc.title} if doc.title else {}),
                "chunk_size": CHUNK_SIZE,
                "chunk_overlap": CHUNK_OVERLAP,
            }
            for doc in docs
        ]
        own = lambda: [psutil.Process(), *database_processes()]  # noqa: E731
        with ForeignLoad(own) as foreign:
            started = time.perf_counter()
            for body in bodies:
                await _post(stack, tenant, body, job=job)
            failed = 0
            while job:
                pending, failed = await _unfinished(stack, tenant)
                if pending == 0:
                    break
                await asyncio.sleep(0.05)
            seconds = time.perf_counter() - started
    return {
        "variant": variant,
        "docs": len(docs),
        "seconds": round(seconds, 2),
        "docs_per_s": round(len(docs) / seconds, 2),
        "failed_jobs": failed,
        "foreign_cores": None if foreign.cores is None else round(foreign.cores, 2),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=500, help="the first N corpus documents")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="jobs the worker runs at once")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the SciFact directory")
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help=f"corpus.jsonl (default: ${CORPUS_ENV}, else corpus.jsonl in --data)",
    )
    parser.add_argument("--database-url", help="a migrated database (default: bench/.data)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    corpus = args.corpus or Path(os.environ.get(CORPUS_ENV) or args.data / "corpus.jsonl")
    docs = load_docs(corpus, args.docs)
    info = machine()
    progress(f"{len(docs)} documents from {corpus}; load average {info['load_average_start']}")
    runs: list[dict[str, Any]] = []
    with ExitStack() as stack:
        database_url = args.database_url or start_database(stack)
        for round_ in range(args.rounds):
            order = VARIANTS[round_ % 3 :] + VARIANTS[: round_ % 3]
            for variant in order:
                label = f"{variant}-r{round_}-{uuid.uuid4().hex[:4]}"
                result = asyncio.run(
                    run_variant(database_url, docs, variant, args.concurrency, label)
                )
                result["round"] = round_
                runs.append(result)
                progress(
                    f"round {round_} {variant:15} {result['docs_per_s']:6.2f} docs/s "
                    f"({result['seconds']} s, foreign {result['foreign_cores']} cores, "
                    f"failed jobs {result['failed_jobs']})"
                )
    medians = {
        variant: statistics.median(r["docs_per_s"] for r in runs if r["variant"] == variant)
        for variant in VARIANTS
    }
    print(f"\n{len(docs)} documents, worker concurrency {args.concurrency}, {args.rounds} rounds")
    for variant in VARIANTS:
        per_round = [r["docs_per_s"] for r in runs if r["variant"] == variant]
        print(f"  {variant:15} median {medians[variant]:6.2f} docs/s  rounds {per_round}")
    print(f"  jobs / sync: x{medians['jobs'] / medians['sync']:.2f}")
    print(f"  jobs / jobs-unbatched: x{medians['jobs'] / medians['jobs-unbatched']:.2f}")
    foreign = [r["foreign_cores"] for r in runs if r["foreign_cores"] is not None]
    if foreign:
        print(f"  other processes: {statistics.mean(foreign):.2f} cores on average")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "concurrency": args.concurrency,
                    "runs": runs,
                    "medians": medians,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
