"""pgvector search under selective filters returns every row it should, nearest first.

The partial HNSW index of a vector size covers every collection of that size. When the planner
reads a selective filter through it — a mid-sized collection inside a bigger table, or a metadata
filter that matches far fewer chunks than the planner expects — pgvector's iterative scan stops
after ``hnsw.max_scan_tuples`` (20,000) visited tuples and can return fewer rows than ``LIMIT``.
The data here is built for that: 30,000 chunks of one collection spread over the sphere, and the
chunks the searches want all lie in the cap opposite the query (cosine < -0.6, 0.5 % of the
sphere), so a scan in distance order meets ~29,800 others first. Without the store's exact
fallback both searches came back with 0 of 20 rows (three data seeds, two index builds each; the
same with 25,000 spread chunks, while with 20,000 the scan still reached them). Vectors are 16-d
(random, normalized) so that the table and its HNSW index build in seconds; the truth is numpy's
brute force over the same float32 vectors.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
import pytest
from sqlalchemy import text

from synthstack_core.stores.database import Database
from synthstack_core.stores.vectors import (
    PgVectorStore,
    VectorScope,
    metadata_filter_sql,
    vector_literal,
)

DIMENSIONS = 16
BOOKS, BOOK_CHUNKS = 150, 200  # 30,000 chunks spread over the sphere
FAQS = 50  # one-chunk documents, far from the query: {"kind": "faq"}
SIDE_DOCUMENTS, SIDE_CHUNKS = 50, 100  # a 5,000-chunk collection, far from the query
LIMIT = 20
FAR = -0.6  # cosine to the query of the chunks searched for

Vectors = npt.NDArray[np.float32]


@dataclass
class Collection:
    """A collection as loaded: its scope and, per chunk, id, vector and document metadata."""

    scope: VectorScope
    ids: list[uuid.UUID] = field(default_factory=list)
    vectors: list[Vectors] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def truth(self, query: Vectors, limit: int, kind: str | None = None) -> list[uuid.UUID]:
        """The exact nearest chunks by cosine similarity (brute force)."""
        keep = [i for i, k in enumerate(self.kinds) if kind is None or k == kind]
        matrix = np.stack([self.vectors[i] for i in keep]).astype(np.float64)
        scores = matrix @ query.astype(np.float64) / np.linalg.norm(matrix, axis=1)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [self.ids[keep[i]] for i in order]


@dataclass
class Loaded:
    database: Database
    query: Vectors
    library: Collection
    side: Collection


def _unit(rows: npt.NDArray[Any]) -> Vectors:
    rows = np.asarray(rows, dtype=np.float32)
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def _load(url: str, rng: np.random.Generator, query: Vectors) -> tuple[Collection, Collection]:
    """Rows written with SQL (COPY), as bench/vectors.py does; no embedding model involved."""
    tenant = uuid.uuid4()
    library = Collection(VectorScope(tenant, uuid.uuid4(), DIMENSIONS))
    side = Collection(VectorScope(tenant, uuid.uuid4(), DIMENSIONS))

    spread = _unit(rng.standard_normal((BOOKS * BOOK_CHUNKS, DIMENSIONS)))
    # Random points of the cap cos(query) < FAR, drawn by rejection.
    far = np.empty((0, DIMENSIONS), dtype=np.float32)
    while len(far) < FAQS + SIDE_DOCUMENTS * SIDE_CHUNKS:
        points = _unit(rng.standard_normal((200_000, DIMENSIONS)))
        far = np.concatenate([far, points[points @ query < FAR]])
    # (collection, metadata kind, the vectors of the document's chunks)
    documents: list[tuple[Collection, str, Vectors]] = [
        (library, "book", spread[i * BOOK_CHUNKS : (i + 1) * BOOK_CHUNKS]) for i in range(BOOKS)
    ]
    documents += [(library, "faq", far[i : i + 1]) for i in range(FAQS)]
    documents += [
        (side, "note", far[FAQS + i * SIDE_CHUNKS : FAQS + (i + 1) * SIDE_CHUNKS])
        for i in range(SIDE_DOCUMENTS)
    ]
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, 'vectors')", (tenant,))
        for collection, name in ((library, "library"), (side, "side")):
            conn.execute(
                "INSERT INTO rag_collections (id, tenant_id, name, embedding_model, dimensions)"
                " VALUES (%s, %s, %s, 'random', %s)",
                (collection.scope.collection_id, tenant, name, DIMENSIONS),
            )
        document_ids: list[uuid.UUID] = []
        with conn.cursor().copy(
            "COPY rag_documents (id, collection_id, external_id, source, source_type, metadata,"
            " content_sha256, characters, chunk_count, chunk_size, chunk_overlap) FROM STDIN"
        ) as documents_copy:
            for number, (collection, kind, vectors) in enumerate(documents):
                document_ids.append(uuid.uuid4())
                documents_copy.write_row(
                    (document_ids[-1], collection.scope.collection_id, f"d{number}", "s", "text",
                     f'{{"kind": "{kind}"}}', "0", 1, len(vectors), 256, 0)
                )  # fmt: skip
        with conn.cursor().copy(
            "COPY rag_chunks (id, document_id, collection_id, position, content, char_start,"
            " char_end, token_count, lexeme_count, dimensions, embedding) FROM STDIN"
        ) as chunks_copy:
            for document_id, (collection, kind, vectors) in zip(
                document_ids, documents, strict=True
            ):
                for position, vector in enumerate(vectors):
                    chunk_id = uuid.uuid4()
                    collection.ids.append(chunk_id)
                    collection.vectors.append(vector)
                    collection.kinds.append(kind)
                    chunks_copy.write_row(
                        (chunk_id, document_id, collection.scope.collection_id, position,
                         f"{kind} {position}", 0, 1, 1, 1, DIMENSIONS, vector_literal(vector))
                    )  # fmt: skip
        conn.commit()
    return library, side


@pytest.fixture(scope="module")
async def loaded(module_database_url: str) -> AsyncIterator[Loaded]:
    rng = np.random.default_rng(20240917)
    query = _unit(rng.standard_normal(DIMENSIONS))
    library, side = _load(module_database_url, rng, query)
    database = Database(module_database_url)
    # The index as the service creates it for a new vector size, built after loading (faster).
    await PgVectorStore(database).ensure_index(DIMENSIONS)
    async with database.engine.connect() as connection:
        await connection.execute(text("ANALYZE rag_chunks, rag_documents"))
        await connection.commit()
    yield Loaded(database, query, library, side)
    await database.aclose()


async def _uses_hnsw(
    loaded: Loaded, collection: Collection, filters: dict[str, Any] | None = None
) -> bool:
    """Whether the planner reads this search through the HNSW index (the store's query, as it
    was before the exact fallback)."""
    kind = f"vector({DIMENSIONS})"
    params: dict[str, Any] = {
        "id": collection.scope.collection_id,
        "q": vector_literal(loaded.query),
    }
    where = metadata_filter_sql(filters or {}, params)
    async with loaded.database.session() as session:
        plan = await session.scalar(
            text(
                "EXPLAIN (FORMAT JSON) SELECT c.id FROM rag_chunks c"
                " JOIN rag_documents d ON d.id = c.document_id"
                f" WHERE c.collection_id = :id AND c.dimensions = {DIMENSIONS}{where}"
                f" ORDER BY c.embedding::{kind} <=> CAST(:q AS {kind}) LIMIT {LIMIT}"
            ),
            params,
        )
    return f"ix_rag_chunks_hnsw_{DIMENSIONS}" in str(plan)


async def test_a_mid_sized_collection_far_from_the_query_gets_all_its_results(
    loaded: Loaded,
) -> None:
    side = loaded.side
    # The precondition: the planner takes the HNSW path (5,000 of 35,050 chunks), which used to
    # come back with 0 rows here.
    assert await _uses_hnsw(loaded, side)
    store = PgVectorStore(loaded.database)
    hits = await store.search(side.scope, loaded.query, limit=LIMIT, filters={})
    assert [hit.chunk_id for hit in hits] == side.truth(loaded.query, LIMIT)
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(hit.chunk is not None and hit.chunk.content.startswith("note") for hit in hits)


async def test_a_metadata_filter_matching_few_chunks_gets_all_of_them(loaded: Loaded) -> None:
    library = loaded.library
    # 50 of the 200 documents are FAQs, so the planner expects ~7,500 chunks and uses HNSW;
    # they have one chunk each: 50 of 30,050 match.
    assert await _uses_hnsw(loaded, library, {"kind": "faq"})
    store = PgVectorStore(loaded.database)
    hits = await store.search(library.scope, loaded.query, limit=LIMIT, filters={"kind": "faq"})
    assert [hit.chunk_id for hit in hits] == library.truth(loaded.query, LIMIT, "faq")
    everything = await store.search(
        library.scope, loaded.query, limit=100, filters={"kind": ["faq"]}
    )
    assert [hit.chunk_id for hit in everything] == library.truth(loaded.query, FAQS, "faq")
    expected = {
        chunk_id: float(vector @ loaded.query)
        for chunk_id, vector in zip(library.ids, library.vectors, strict=True)
    }
    for hit in everything:
        assert hit.score == pytest.approx(expected[hit.chunk_id], abs=1e-5)


async def test_the_common_case_stays_on_hnsw_and_is_sorted(loaded: Loaded) -> None:
    library = loaded.library
    assert await _uses_hnsw(loaded, library)
    store = PgVectorStore(loaded.database)
    hits = await store.search(library.scope, loaded.query, limit=LIMIT, filters={})
    assert len(hits) == LIMIT
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    recall = len({hit.chunk_id for hit in hits} & set(library.truth(loaded.query, LIMIT))) / LIMIT
    assert recall >= 0.9


async def test_the_index_has_the_service_graph_parameters(loaded: Loaded) -> None:
    """``ensure_index`` builds the graph with ``HNSW_M`` links and ``HNSW_EF_CONSTRUCTION`` (not
    pgvector's 16 and 64), and searches set ``DEFAULT_EF_SEARCH``: what the recall measured at
    100k chunks depends on (docs/benchmarks.md)."""
    from synthstack_core.stores.vectors import DEFAULT_EF_SEARCH, HNSW_EF_CONSTRUCTION, HNSW_M

    async with loaded.database.session() as session:
        options = await session.scalar(
            text("SELECT reloptions FROM pg_class WHERE relname = :name"),
            {"name": f"ix_rag_chunks_hnsw_{DIMENSIONS}"},
        )
    assert sorted(options) == sorted([f"m={HNSW_M}", f"ef_construction={HNSW_EF_CONSTRUCTION}"])
    async with loaded.database.session() as session, session.begin():
        await PgVectorStore(loaded.database).search_in(
            session, loaded.library.scope, loaded.query, limit=LIMIT, filters={}
        )
        ef_search = await session.scalar(text("SHOW hnsw.ef_search"))
    assert int(ef_search) == DEFAULT_EF_SEARCH
