"""Where a collection's chunk vectors live: one interface, two stores (pgvector and Qdrant).

The chunk rows — text, span, page, BM25 postings — are always in PostgreSQL, the system of record;
a :class:`VectorStore` holds their vectors and finds the nearest ones. Each collection records
which store holds its vectors (``rag_collections.vector_store``), chosen when it is created from
``SYNTHSTACK_VECTOR_STORE``; switching the setting changes where new collections go and never
strands existing ones.

- :class:`PgVectorStore` keeps a vector in its chunk row (``rag_chunks.embedding``): it is written
  by the chunk's own ``INSERT``, in the document's transaction, and removed with the row, so
  :meth:`~VectorStore.upsert` and the deletions have nothing more to do; a search returns whole
  chunks in one query (partial HNSW index per size).
- :class:`~synthstack_core.stores.qdrant.QdrantStore` keeps them in Qdrant; the repository writes
  them before it commits the document and reads the chunk rows of the ids Qdrant returns.

A search is always scoped to one collection of one tenant, and takes the same metadata filter as
lexical search: equality, or membership (a list), on the document's flat metadata.
"""

from __future__ import annotations

import abc
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from synthstack_core.stores.database import Database

__all__ = [
    "DEFAULT_EF_SEARCH",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_M",
    "MAX_VECTOR_INDEX_DIMENSIONS",
    "PgVectorStore",
    "ScoredChunk",
    "StoreName",
    "VectorHit",
    "VectorPoint",
    "VectorScope",
    "VectorStore",
    "metadata_filter_sql",
    "vector_literal",
    "vector_type",
]

StoreName = Literal["pgvector", "qdrant"]

#: pgvector's HNSW indexes ``vector`` up to 2,000 dimensions and ``halfvec`` up to 4,000: larger
#: embeddings (text-embedding-3-large, 3,072) are indexed and searched as half-precision vectors.
MAX_VECTOR_INDEX_DIMENSIONS = 2000

#: ``hnsw.ef_search`` of a dense search. On 100k vectors seeded from 13.5k real MiniLM embeddings
#: (bench/vectors.py) 100 already gave recall@10 0.996; on bench/scale.py's 100k chunks, drawn
#: around only 512 seeds with isotropic noise (thousands of nearly equidistant neighbours for a
#: query), it gave 0.54-0.56 with m 16, and 0.948 even at 1,000. With the graph of ``HNSW_M`` and
#: ``HNSW_EF_CONSTRUCTION``: 0.71 at 100, 0.948 at 400, 0.965 at 500 (docs/benchmarks.md,
#: "Retrieval at scale (lexical p95 and dense recall)"), about 3x the search time of 100. The
#: service's value is ``SYNTHSTACK_HNSW_EF_SEARCH`` (default 100, as here): real embeddings need
#: no more, and every dense search pays for the list; a deployment with large collections of
#: near-equidistant vectors raises it.
DEFAULT_EF_SEARCH = 100
#: The HNSW graph's ``m`` and ``ef_construction`` (pgvector's defaults are 16 and 64): twice the
#: links per node, and a wider search while building, so that clusters of near-equidistant
#: vectors stay connected (recall above). Applies to indexes created from now on.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk found by a search, with its score."""

    chunk_id: uuid.UUID
    document_id: str
    content: str
    source: str
    metadata: dict[str, Any]
    start: int
    end: int
    page: int | None
    title: str | None
    score: float


@dataclass(frozen=True)
class VectorScope:
    """One collection of one tenant: every read and write of a store is inside one."""

    tenant_id: uuid.UUID
    collection_id: uuid.UUID
    dimensions: int


@dataclass(frozen=True)
class VectorPoint:
    """A chunk's vector, with what a search filters on."""

    chunk_id: uuid.UUID
    document_id: uuid.UUID
    vector: npt.NDArray[np.float32]
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class VectorHit:
    """A nearest chunk: its id and cosine similarity, and its row when the store has read it."""

    chunk_id: uuid.UUID
    score: float
    chunk: ScoredChunk | None = None


def vector_type(dimensions: int) -> str:
    """The pgvector type vectors of this size are indexed and compared as."""
    size = int(dimensions)
    return f"vector({size})" if size <= MAX_VECTOR_INDEX_DIMENSIONS else f"halfvec({size})"


def vector_literal(vector: npt.NDArray[np.float32]) -> str:
    """A vector as pgvector's text input."""
    return "[" + ",".join(format(float(x), ".8g") for x in vector) + "]"


def metadata_filter_sql(filters: Mapping[str, Any], params: dict[str, Any]) -> str:
    """``AND ...`` conditions on ``d.metadata`` (jsonb containment, so numbers compare as numbers)."""
    clauses: list[str] = []
    for index, (key, condition) in enumerate(sorted(filters.items())):
        values = condition if isinstance(condition, list) else [condition]
        alternatives = []
        for number, value in enumerate(values):
            name = f"f{index}_{number}"
            params[name] = json.dumps({key: value})
            alternatives.append(f"d.metadata @> CAST(:{name} AS jsonb)")
        clauses.append("(" + " OR ".join(alternatives) + ")")
    return "".join(f" AND {clause}" for clause in clauses)


#: The columns of a ``ScoredChunk`` (``c`` a chunk row, ``d`` its document), before its score.
RESULT_COLUMNS = (
    "c.id, d.external_id, c.content, d.source, d.metadata, c.char_start, c.char_end, c.page,"
    " d.title"
)


#: A dense search in one statement (see :class:`PgVectorStore`). ``approximate``: the nearest
#: chunks as the planner finds them — through the HNSW index (iterative scan) when it expects many
#: chunks to match, else exactly through the collection's b-tree. Only if it holds fewer than
#: ``limit`` rows is ``exact`` read (a materialized CTE runs only when scanned, and the condition,
#: which does not depend on the row, gates the scan): every matching chunk's distance, with no
#: ORDER BY the index could serve. The rows are read whole for the ``limit`` ids kept, and sorted
#: by distance last, because ``relaxed_order`` lets the index return them slightly out of order.
_SEARCH_SQL = """
WITH approximate AS MATERIALIZED (
    SELECT c.id, {distance} AS distance{matching}
    ORDER BY {distance} LIMIT :limit
),
exact AS MATERIALIZED (
    SELECT c.id, {distance} AS distance{matching}
),
nearest AS (
    SELECT id, distance FROM approximate
    WHERE (SELECT count(*) FROM approximate) >= :limit
    UNION ALL
    (
        SELECT id, distance FROM exact
        WHERE (SELECT count(*) FROM approximate) < :limit
        ORDER BY distance, id LIMIT :limit
    )
)
SELECT {columns}, 1 - n.distance AS score
FROM nearest n JOIN rag_chunks c ON c.id = n.id JOIN rag_documents d ON d.id = c.document_id
ORDER BY n.distance, c.id
"""


class VectorStore(abc.ABC):
    """Holds chunk vectors and finds the nearest ones within one tenant's collection."""

    #: What ``GET /api/v1/rag/stats`` reports as a collection's ``store``.
    name: ClassVar[StoreName]
    #: What readiness calls it.
    kind: str
    #: The vectors are columns of the chunk rows (written and deleted with them).
    in_chunk_rows: ClassVar[bool] = False

    def row_embedding(self, vector: npt.NDArray[np.float32]) -> str | None:
        """What the chunk row's ``embedding`` column holds: nothing, unless the store is the row."""
        return None

    @abc.abstractmethod
    async def upsert(self, scope: VectorScope, points: Sequence[VectorPoint]) -> None:
        """Write (or overwrite) the vectors of one document's chunks; all or an exception."""

    @abc.abstractmethod
    async def delete_points(self, scope: VectorScope, chunk_ids: Sequence[uuid.UUID]) -> None:
        """Remove these chunks' vectors (absent ones are no error)."""

    @abc.abstractmethod
    async def delete_document(self, scope: VectorScope, document_id: uuid.UUID) -> None:
        """Remove every vector of a document."""

    @abc.abstractmethod
    async def delete_collection(self, scope: VectorScope) -> None:
        """Remove every vector of a collection."""

    @abc.abstractmethod
    async def search(
        self,
        scope: VectorScope,
        vector: npt.NDArray[np.float32],
        *,
        limit: int,
        filters: Mapping[str, Any],
    ) -> list[VectorHit]:
        """The ``limit`` nearest vectors by cosine similarity, best first, matching ``filters``."""

    @abc.abstractmethod
    async def search_in(
        self,
        session: AsyncSession,
        scope: VectorScope,
        vector: npt.NDArray[np.float32],
        *,
        limit: int,
        filters: Mapping[str, Any],
    ) -> list[VectorHit]:
        """:meth:`search` inside the caller's database transaction ``session``: the chunk rows
        a store reads with its hits are those of that transaction's snapshot. (A store outside
        the database reads no rows: its hits carry none, and the caller reads them in its
        snapshot.)"""

    @abc.abstractmethod
    async def ensure_index(self, dimensions: int) -> None:
        """Be ready to index vectors of this size (called when a collection of that size is
        created, before any of its vectors is written)."""

    @abc.abstractmethod
    async def count(self, scope: VectorScope) -> int:
        """How many vectors the store holds for the collection."""

    @abc.abstractmethod
    async def ping(self) -> str:
        """Really reach the store (raises when it cannot serve); returns what answered, for
        readiness (its :attr:`kind`, or more)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections and clients."""


class PgVectorStore(VectorStore):
    """Vectors in their chunk rows (``rag_chunks.embedding``), searched through partial HNSW.

    ``ef_search`` is the HNSW candidate list of a search, set for its transaction (``set_config``
    with ``is_local``, as ``SET LOCAL``) with ``hnsw.iterative_scan = relaxed_order``: pgvector 0.8
    then keeps scanning the graph until ``LIMIT`` rows pass the collection and metadata filters.

    **A search returns min(limit, matching chunks) rows, nearest first.** Iterative scan alone
    does not promise that: the partial HNSW index holds every tenant's collections of one vector
    size, and when the planner reads a selective filter through it (a mid-sized collection inside
    a big table, a metadata filter matching far fewer chunks than the planner expects), the scan
    gives up after ``hnsw.max_scan_tuples`` (20,000) tuples, or once its memory passes
    ``hnsw.scan_mem_multiplier`` x ``work_mem``, with what passed the filter so far: 0 of 20 rows
    in ``tests/test_vector_search.py`` (5,000 chunks beside 30,000 of another collection, and 50
    FAQ chunks among 30,050, all far from the query). So the search statement (``_SEARCH_SQL``)
    reads the HNSW result and, only when it holds fewer than ``limit`` rows, searches exactly over
    the filter (the collection's b-tree and the metadata filter, sorted by distance) — in the same
    statement, so in the same snapshot and with no extra round trip.

    Why this and not a larger ``hnsw.max_scan_tuples`` or a count first: measured, see "pgvector
    search under selective filters" in ``docs/benchmarks.md``.
    """

    name: ClassVar[StoreName] = "pgvector"
    in_chunk_rows: ClassVar[bool] = True
    kind = "pgvector"

    def __init__(self, database: Database, *, ef_search: int = DEFAULT_EF_SEARCH) -> None:
        self._db = database
        self.ef_search = int(ef_search)

    def row_embedding(self, vector: npt.NDArray[np.float32]) -> str | None:
        """The vector itself: it is written by the chunk's ``INSERT``, in the same transaction."""
        return vector_literal(vector)

    async def upsert(self, scope: VectorScope, points: Sequence[VectorPoint]) -> None:
        """Nothing more to write: the chunk rows carry their vectors."""

    async def delete_points(self, scope: VectorScope, chunk_ids: Sequence[uuid.UUID]) -> None:
        """Nothing more to delete: a vector goes with its chunk row."""

    async def delete_document(self, scope: VectorScope, document_id: uuid.UUID) -> None:
        """Nothing more to delete: a vector goes with its chunk row."""

    async def delete_collection(self, scope: VectorScope) -> None:
        """Nothing more to delete: a vector goes with its chunk row."""

    async def search(
        self,
        scope: VectorScope,
        vector: npt.NDArray[np.float32],
        *,
        limit: int,
        filters: Mapping[str, Any],
    ) -> list[VectorHit]:
        """The nearest chunks, read whole in the same query (HNSW, iterative scan under filters)."""
        async with self._db.session() as session, session.begin():
            return await self.search_in(session, scope, vector, limit=limit, filters=filters)

    async def search_in(
        self,
        session: AsyncSession,
        scope: VectorScope,
        vector: npt.NDArray[np.float32],
        *,
        limit: int,
        filters: Mapping[str, Any],
    ) -> list[VectorHit]:
        """:meth:`search` inside the caller's transaction (and so in its snapshot): HNSW first,
        then, if it returned fewer than ``limit`` rows, an exact search over the filter."""
        size = int(scope.dimensions)
        params: dict[str, Any] = {
            "collection_id": scope.collection_id,
            "query": vector_literal(vector),
            "limit": limit,
        }
        where = metadata_filter_sql(filters, params)
        kind = vector_type(size)
        # Only integers and fixed names are interpolated; values are bound parameters.
        parts = {
            "columns": RESULT_COLUMNS,
            "distance": f"c.embedding::{kind} <=> CAST(:query AS {kind})",
            "matching": (
                " FROM rag_chunks c JOIN rag_documents d ON d.id = c.document_id"
                f" WHERE c.collection_id = :collection_id AND c.dimensions = {size}{where}"
            ),
        }
        await session.execute(
            text(
                "SELECT set_config('hnsw.ef_search', :ef_search, true),"
                " set_config('hnsw.iterative_scan', 'relaxed_order', true)"
            ),
            {"ef_search": str(self.ef_search)},
        )
        rows = await session.execute(text(_SEARCH_SQL.format(**parts)), params)
        found = [ScoredChunk(*row) for row in rows]
        return [VectorHit(chunk.chunk_id, chunk.score, chunk) for chunk in found]

    async def ensure_index(self, dimensions: int) -> None:
        """An HNSW index for vectors of this size (pgvector indexes one size per index)."""
        size = int(dimensions)
        kind = vector_type(size)
        operators = "vector_cosine_ops" if kind.startswith("vector") else "halfvec_cosine_ops"
        async with self._db.engine.begin() as connection:
            # CREATE INDEX IF NOT EXISTS locks the table even when the index exists: look first.
            exists = await connection.scalar(
                text("SELECT to_regclass(:name) IS NOT NULL"),
                {"name": f"ix_rag_chunks_hnsw_{size}"},
            )
            if exists:
                return
            await connection.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS ix_rag_chunks_hnsw_{size} ON rag_chunks "
                    f"USING hnsw ((embedding::{kind}) {operators}) "
                    f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) "
                    f"WHERE dimensions = {size}"
                )
            )

    async def aclose(self) -> None:
        """Nothing of its own to close: the database is the service's."""

    async def count(self, scope: VectorScope) -> int:
        """Chunk rows of the collection that carry a vector."""
        async with self._db.session() as session:
            found = await session.scalar(
                text(
                    "SELECT count(*) FROM rag_chunks"
                    " WHERE collection_id = :id AND embedding IS NOT NULL"
                ),
                {"id": scope.collection_id},
            )
        return int(found or 0)

    async def ping(self) -> str:
        """The ``vector`` extension is installed in the database: ``pgvector <version>``."""
        async with self._db.session() as session:
            version = await session.scalar(
                text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            )
        if version is None:
            raise LookupError("no vector extension")
        return f"{self.kind} {version}"
