"""Vector search at 100k chunks: pgvector HNSW recall@10 and latency by ``hnsw.ef_search``, a small
collection inside the big table, and Qdrant's local mode for comparison.

Data: 100,000 unit 384-d vectors (MiniLM's size). When the retrieval benchmark's SciFact collection
is in ``bench/.data`` (``bench/retrieval.py``), its ~13.5k real chunk embeddings are the seeds;
otherwise 2,000 random cluster centres are. Each of the 100k vectors is a seed plus Gaussian noise
(cosine ~0.8 to its seed), so the set is clustered like real text embeddings, with near-duplicates
and dense neighbourhoods — harder for HNSW than uniform noise. 250 queries are fresh perturbations of
random seeds. Everything is seeded: reruns give the same data.

The vectors go into a scratch database (``synthstack_bench_vectors``, dropped at the end unless
``--keep``) on the embedded PostgreSQL of ``bench/.data``, through the real schema (migrations,
``rag_chunks`` with the partial HNSW index ``ix_rag_chunks_hnsw_384``, built after loading), in a
big collection (100k chunks) and a small one (200 chunks) in the same table. Searches go through
:class:`synthstack_core.stores.vectors.PgVectorStore` — the service's own SQL, ``SET LOCAL
hnsw.ef_search`` and ``hnsw.iterative_scan = relaxed_order`` — at each ``ef_search``. Ground truth is
exact cosine top-10 (numpy over all vectors, the same as a sequential scan); recall@10 = |found ∩
exact| / 10.

The small collection is searched with its own near queries, with and without iterative scan, to
see whether the partial HNSW index plus a collection filter returns too few rows.

Qdrant local mode (qdrant-client in process) is exact brute force (it has no HNSW): its recall is
1.0 by construction, and its latency is that of a numpy scan with payload filtering in Python.

Run from the repository root (~5 min)::

    .hatch/default/bin/python bench/vectors.py
    .hatch/default/bin/python bench/vectors.py --points 20000 --queries 100   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import percentiles_ms, progress, start_database

DIMENSIONS = 384
EF_SEARCH = (40, 64, 100, 200)
K = 10
SMALL = 200
SCRATCH_DB = "synthstack_bench_vectors"
Vectors = npt.NDArray[np.float32]


def _unit(rows: npt.NDArray[Any]) -> Vectors:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _seeds(database_url: str, rng: np.random.Generator) -> tuple[Vectors, str]:
    """SciFact's chunk embeddings if the retrieval benchmark left them, else random centres."""
    import psycopg

    from synthstack_core.stores.database import sqlalchemy_url

    url = sqlalchemy_url(database_url).set(drivername="postgresql")
    try:
        with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
            rows = conn.execute(
                "SELECT k.embedding::text FROM rag_chunks k JOIN rag_collections c"
                " ON c.id = k.collection_id WHERE c.name = 'scifact' AND k.dimensions = %s"
                " AND k.embedding IS NOT NULL",
                (DIMENSIONS,),
            ).fetchall()
    except psycopg.Error:
        rows = []
    if len(rows) >= 1000:
        seeds = np.array([json.loads(row[0]) for row in rows], dtype=np.float32)
        return _unit(seeds), f"{len(seeds):,} SciFact chunk embeddings (MiniLM) as seeds"
    return _unit(rng.standard_normal((2000, DIMENSIONS))), "2,000 random cluster centres"


def _perturb(seeds: Vectors, picks: npt.NDArray[np.int64], rng: np.random.Generator) -> Vectors:
    # Noise of norm ~0.75 around a unit seed: cosine ~0.8 to it.
    noise = rng.standard_normal((len(picks), DIMENSIONS)).astype(np.float32) * (
        0.75 / np.sqrt(DIMENSIONS)
    )
    return _unit(seeds[picks] + noise)


def _literal(row: Vectors) -> str:
    return "[" + ",".join(f"{x:.6g}" for x in row.tolist()) + "]"


def _scratch_database(admin_url: str) -> str:
    import psycopg

    from synthstack_core.stores.database import migrate, sqlalchemy_url

    url = sqlalchemy_url(admin_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SCRATCH_DB}"')
    scratch = url.set(database=SCRATCH_DB).render_as_string(hide_password=False)
    migrate(scratch)
    return scratch


def _drop_scratch(admin_url: str) -> None:
    import psycopg

    from synthstack_core.stores.database import sqlalchemy_url

    url = sqlalchemy_url(admin_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)')


def _load(
    url: str,
    collections: dict[str, tuple[uuid.UUID, Vectors]],
    tenant_id: uuid.UUID,
    ids: dict[str, list[uuid.UUID]],
) -> dict[str, float]:
    """Rows through COPY (chunk ``ids[name][row]`` holds vector ``row``), then the partial HNSW
    index as the migration defines it."""
    import psycopg

    timings: dict[str, float] = {}
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, 'bench')", (tenant_id,))
        conn.execute("DROP INDEX IF EXISTS ix_rag_chunks_hnsw_384")
        started = time.perf_counter()
        for name, (collection_id, vectors) in collections.items():
            conn.execute(
                "INSERT INTO rag_collections (id, tenant_id, name, embedding_model, dimensions)"
                " VALUES (%s, %s, %s, 'all-MiniLM-L6-v2', %s)",
                (collection_id, tenant_id, name, DIMENSIONS),
            )
            documents = [uuid.uuid4() for _ in range((len(vectors) + 99) // 100)]
            with conn.cursor().copy(
                "COPY rag_documents (id, collection_id, external_id, source, source_type,"
                " content_sha256, characters, chunk_count, chunk_size, chunk_overlap)"
                " FROM STDIN"
            ) as copy:
                for number, document_id in enumerate(documents):
                    copy.write_row(
                        (document_id, collection_id, f"d{number}", "bench", "text", "0", 1, 100,
                         256, 0)
                    )  # fmt: skip
            with conn.cursor().copy(
                "COPY rag_chunks (id, document_id, collection_id, position, content, char_start,"
                " char_end, token_count, lexeme_count, dimensions, embedding) FROM STDIN"
            ) as copy:
                for row, vector in enumerate(vectors):
                    copy.write_row(
                        (ids[name][row], documents[row // 100], collection_id, row % 100,
                         f"chunk {row}", 0, 1, 1, 1, DIMENSIONS, _literal(vector))
                    )  # fmt: skip
        conn.commit()
        timings["load_s"] = time.perf_counter() - started
        progress(f"loaded in {timings['load_s']:.0f}s; building the HNSW index")
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute(
            "CREATE INDEX ix_rag_chunks_hnsw_384 ON rag_chunks"
            " USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dimensions = 384"
        )
        conn.execute("ANALYZE rag_chunks")
        conn.commit()
        timings["index_s"] = time.perf_counter() - started
        progress(f"HNSW index built in {timings['index_s']:.0f}s")
    return timings


def _exact(vectors: Vectors, ids: list[uuid.UUID], queries: Vectors) -> list[set[uuid.UUID]]:
    scores = queries @ vectors.T
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    return [{ids[i] for i in row} for row in top]


async def _measure(
    search: Any, queries: Vectors, truth: list[set[uuid.UUID]]
) -> dict[str, float | None]:
    latencies: list[float] = []
    recalls: list[float] = []
    short = 0
    for _ in range(5):  # warm-up
        await search(queries[0])
    for query, exact in zip(queries, truth, strict=True):
        started = time.perf_counter()
        hits = await search(query)
        latencies.append(time.perf_counter() - started)
        found = {hit.chunk_id for hit in hits}
        short += len(hits) < K
        recalls.append(len(found & exact) / K)
    p50, p95 = percentiles_ms(latencies)
    return {"recall@10": float(np.mean(recalls)), "p50_ms": p50, "p95_ms": p95, "short": short}


async def _pgvector(
    url: str,
    scopes: dict[str, Any],
    queries: dict[str, Vectors],
    truth: dict[str, list[set[uuid.UUID]]],
) -> dict[str, dict[str, float | None]]:
    from sqlalchemy import text

    from synthstack_core.stores.database import Database
    from synthstack_core.stores.vectors import (
        RESULT_COLUMNS,
        PgVectorStore,
        VectorHit,
        vector_literal,
    )

    database = Database(url)
    results: dict[str, dict[str, float | None]] = {}
    try:
        for ef in EF_SEARCH:
            store = PgVectorStore(database, ef_search=ef)

            async def search(query: Vectors, store: PgVectorStore = store) -> list[VectorHit]:
                return await store.search(scopes["big"], query, limit=K, filters={})

            results[f"big ef_search={ef}"] = await _measure(search, queries["big"], truth["big"])
            progress(f"pgvector ef_search={ef}: {results[f'big ef_search={ef}']}")
        store = PgVectorStore(database)

        async def small(query: Vectors) -> list[VectorHit]:
            return await store.search(scopes["small"], query, limit=K, filters={})

        results["small, iterative scan (service)"] = await _measure(
            small, queries["small"], truth["small"]
        )

        def raw(iterative: str, *, hide_btree: bool) -> Any:
            async def run(query: Vectors) -> list[VectorHit]:
                # The service's query with another iterative-scan mode; with ``hide_btree`` the
                # collection's b-tree index is dropped inside the (rolled back) transaction, so
                # the planner must use the partial HNSW index, as it may for a mid-sized
                # collection.
                async with database.session() as session:
                    await session.begin()
                    if hide_btree:
                        await session.execute(text("DROP INDEX ix_rag_chunks_collection"))
                    await session.execute(text("SET LOCAL hnsw.ef_search = 100"))
                    await session.execute(text(f"SET LOCAL hnsw.iterative_scan = {iterative}"))
                    distance = "c.embedding::vector(384) <=> CAST(:q AS vector(384))"
                    rows = await session.execute(
                        text(
                            f"SELECT {RESULT_COLUMNS}, 1 - ({distance}) FROM rag_chunks c"
                            " JOIN rag_documents d ON d.id = c.document_id"
                            " WHERE c.collection_id = :id AND c.dimensions = 384"
                            f" ORDER BY {distance} LIMIT :k"
                        ),
                        {"q": vector_literal(query), "id": scopes["small"].collection_id, "k": K},
                    )
                    hits = [VectorHit(row[0], float(row[-1])) for row in rows]
                    await session.rollback()
                return hits

            return run

        for iterative in ("off", "relaxed_order"):
            results[f"small, iterative scan {iterative}"] = await _measure(
                raw(iterative, hide_btree=False), queries["small"], truth["small"]
            )
            results[f"small, HNSW forced, iterative scan {iterative}"] = await _measure(
                raw(iterative, hide_btree=True), queries["small"], truth["small"]
            )
        async with database.session() as session, session.begin():
            await session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            plan = await session.execute(
                text(
                    "EXPLAIN SELECT c.id FROM rag_chunks c WHERE c.collection_id = :id"
                    " AND c.dimensions = 384 ORDER BY c.embedding::vector(384) <=>"
                    " CAST(:q AS vector(384)) LIMIT 10"
                ),
                {"id": scopes["small"].collection_id, "q": vector_literal(queries["small"][0])},
            )
            results["small plan"] = {" | ".join(r[0].strip() for r in plan)[:300]: None}
    finally:
        await database.aclose()
    return results


async def _qdrant(
    scopes: dict[str, Any],
    vectors: dict[str, tuple[list[uuid.UUID], Vectors]],
    queries: dict[str, Vectors],
    truth: dict[str, list[set[uuid.UUID]]],
) -> dict[str, dict[str, float | None]]:
    import warnings

    from synthstack_core.stores.qdrant import QdrantStore
    from synthstack_core.stores.vectors import VectorHit, VectorPoint

    warnings.simplefilter("ignore")  # local mode warns above 20k points: that is what we measure
    store = QdrantStore(path=":memory:")
    results: dict[str, dict[str, float | None]] = {}
    try:
        started = time.perf_counter()
        for name, (ids, rows) in vectors.items():
            document = uuid.uuid4()
            for first in range(0, len(ids), 5000):
                await store.upsert(
                    scopes[name],
                    [
                        VectorPoint(chunk_id, document, rows[first + offset], {})
                        for offset, chunk_id in enumerate(ids[first : first + 5000])
                    ],
                )
        progress(f"qdrant local: {sum(len(v[0]) for v in vectors.values()):,} points in "
                 f"{time.perf_counter() - started:.0f}s")  # fmt: skip
        for name in ("big", "small"):

            async def search(query: Vectors, name: str = name) -> list[VectorHit]:
                return await store.search(scopes[name], query, limit=K, filters={})

            count = min(len(queries[name]), 20)  # brute force, seconds a query: fewer suffice
            results[f"{name} (local mode, exact)"] = await _measure(
                search, queries[name][:count], truth[name][:count]
            )
    finally:
        await store.aclose()
    return results


def _table(results: dict[str, dict[str, float | None]]) -> str:
    lines = [
        "| store / case | recall@10 | p50 ms | p95 ms | queries with < 10 rows |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, row in results.items():
        if "recall@10" not in row:
            continue
        lines.append(
            f"| {label} | {row['recall@10']:.4f} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} |"
            f" {int(row['short'] or 0)} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=250)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--no-qdrant", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(20261128)
    with ExitStack() as stack:
        admin_url = start_database(stack)
        seeds, origin = _seeds(admin_url, rng)
        progress(f"seeds: {origin}")
        big = _perturb(seeds, rng.integers(0, len(seeds), args.points), rng)
        small_seeds = rng.integers(0, len(seeds), 20)
        small = _perturb(seeds, rng.choice(small_seeds, SMALL), rng)
        queries = {
            "big": _perturb(seeds, rng.integers(0, len(seeds), args.queries), rng),
            "small": _perturb(seeds, rng.choice(small_seeds, args.queries), rng),
        }
        url = _scratch_database(admin_url)
        if not args.keep:
            stack.callback(_drop_scratch, admin_url)
        tenant_id = uuid.uuid4()
        collections = {"big": (uuid.uuid4(), big), "small": (uuid.uuid4(), small)}
        ids = {name: [uuid.uuid4() for _ in vectors] for name, (_, vectors) in collections.items()}
        timings = _load(url, collections, tenant_id, ids)
        from synthstack_core.stores.vectors import VectorScope

        scopes = {
            name: VectorScope(tenant_id, collection_id, DIMENSIONS)
            for name, (collection_id, _) in collections.items()
        }
        truth = {name: _exact(collections[name][1], ids[name], queries[name]) for name in ids}
        results = asyncio.run(_pgvector(url, scopes, queries, truth))
        if not args.no_qdrant:
            vectors = {name: (ids[name], collections[name][1]) for name in ids}
            results.update(asyncio.run(_qdrant(scopes, vectors, queries, truth)))
    report = {
        "points": args.points,
        "queries": args.queries,
        "data": origin,
        "timings": timings,
        "results": results,
    }
    print(f"\n{args.points:,} vectors ({origin}); {args.queries} queries; load "
          f"{timings['load_s']:.0f}s, HNSW build {timings['index_s']:.0f}s\n")  # fmt: skip
    print(_table(results))
    for label, row in results.items():
        if "recall@10" not in row:
            print(f"\n{label}: {next(iter(row))}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
