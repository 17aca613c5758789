"""Move an indexed pgvector collection of a benchmark database to Qdrant local mode, in place.

For measuring search on the Qdrant store without re-embedding a corpus (SciFact takes ~15 min on a
quiet machine, hours on a loaded one): on a **copy** of a benchmark database (``cp -a bench/.data
bench/.data-copy`` while it is stopped), it writes the collection's vectors to Qdrant local mode in
``DATA/qdrant`` through ``QdrantStore.upsert`` (the store's own write path, with the payload an
ingestion writes), then marks the collection ``vector_store = 'qdrant'`` and clears the vectors
kept in the chunk rows, as a collection made on the Qdrant store has them. Chunks, postings and
statistics are untouched. Then search it with ``SYNTHSTACK_QDRANT_PATH=DATA/qdrant``::

    .hatch/default/bin/python bench/qdrant_copy.py bench/.data-quality-qd --collection scifact
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psycopg

from synthstack_core.stores.embedded import EmbeddedPostgres
from synthstack_core.stores.qdrant import QdrantStore
from synthstack_core.stores.vectors import VectorPoint, VectorScope


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("data", type=Path, help="the database copy's directory (holds postgres/)")
    parser.add_argument("--collection", default="scifact")
    args = parser.parse_args(argv)
    data = args.data.resolve()
    postgres = EmbeddedPostgres(data)
    url = postgres.start()
    try:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            row = conn.execute(
                "SELECT id, tenant_id, dimensions, vector_store FROM rag_collections"
                " WHERE name = %s",
                (args.collection,),
            ).fetchone()
            if row is None or row[3] != "pgvector":
                print(f"no pgvector collection {args.collection!r}", file=sys.stderr)
                return 1
            scope = VectorScope(row[1], row[0], int(row[2]))
            points = [
                VectorPoint(
                    chunk_id,
                    document_id,
                    np.asarray(vector.strip("[]").split(","), dtype=np.float32),
                    metadata or {},
                )
                for chunk_id, document_id, vector, metadata in conn.execute(
                    "SELECT c.id, c.document_id, CAST(c.embedding AS text), d.metadata"
                    " FROM rag_chunks c JOIN rag_documents d ON d.id = c.document_id"
                    " WHERE c.collection_id = %s ORDER BY c.id",
                    (scope.collection_id,),
                )
            ]

            async def write() -> int:
                store = QdrantStore(path=data / "qdrant")
                try:
                    await store.upsert(scope, points)
                    return await store.count(scope)
                finally:
                    await store.aclose()

            written = asyncio.run(write())
            conn.execute(
                "UPDATE rag_collections SET vector_store = 'qdrant' WHERE id = %s",
                (scope.collection_id,),
            )
            conn.execute(
                "UPDATE rag_chunks SET embedding = NULL WHERE collection_id = %s",
                (scope.collection_id,),
            )
            conn.commit()
        print(f"{args.collection}: {len(points)} vectors, {written} points in {data / 'qdrant'}")
    finally:
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
