"""RAG storage in PostgreSQL: collections, documents, chunks, vectors (pgvector) and BM25 postings.

Every query is scoped by tenant: a collection is found by (tenant, name), and documents and chunks
only through their collection, so a tenant never reads, searches or deletes another's data.

A document is written in one transaction — its row (upserted, which also locks it), the removal of
its previous chunks, its new chunks with their vectors, and their postings — so a failed ingestion
leaves nothing behind and two concurrent re-indexings of one document never mix: the second waits
for the first's row lock, then replaces its chunks whole.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from synthstack_core.errors import Conflict
from synthstack_core.stores.database import Database

__all__ = [
    "ChunkToStore",
    "CollectionRecord",
    "DocumentRecord",
    "RagRepository",
    "ScoredChunk",
]

#: PostgreSQL text-search configuration of the lexical index (stemmed English, no stop words):
#: measured on SciFact, BM25 over it gives nDCG@10 0.691 against 0.662 with ``simple``.
TS_CONFIG = "english"
BM25_K1 = 1.2
BM25_B = 0.75


@dataclass(frozen=True)
class CollectionRecord:
    """A collection row."""

    id: uuid.UUID
    name: str
    description: str
    embedding_model: str
    dimensions: int
    created_at: datetime
    documents: int = 0
    chunks: int = 0


@dataclass(frozen=True)
class DocumentRecord:
    """A document row."""

    id: uuid.UUID
    external_id: str
    collection: str
    source: str
    source_type: str
    metadata: dict[str, Any]
    content_sha256: str
    characters: int
    chunk_count: int
    chunk_size: int
    chunk_overlap: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ChunkToStore:
    """A chunk ready to be written: its text, place and vector."""

    position: int
    content: str
    start: int
    end: int
    page: int | None
    token_count: int
    vector: npt.NDArray[np.float32]


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
    score: float


#: pgvector's HNSW indexes ``vector`` up to 2,000 dimensions and ``halfvec`` up to 4,000: larger
#: embeddings (text-embedding-3-large, 3,072) are indexed and searched as half-precision vectors.
MAX_VECTOR_INDEX_DIMENSIONS = 2000


def _vector_type(dimensions: int) -> str:
    size = int(dimensions)
    return f"vector({size})" if size <= MAX_VECTOR_INDEX_DIMENSIONS else f"halfvec({size})"


def _vector_literal(vector: npt.NDArray[np.float32]) -> str:
    return "[" + ",".join(format(float(x), ".8g") for x in vector) + "]"


def _filter_sql(filters: Mapping[str, Any], params: dict[str, Any]) -> str:
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


class RagRepository:
    """Tenant-scoped reads and writes of the RAG tables."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # -- collections -------------------------------------------------------------------------

    async def _tenant_id(self, session: AsyncSession, tenant: str) -> uuid.UUID | None:
        found = await session.scalar(
            text("SELECT id FROM tenants WHERE name = :name"), {"name": tenant}
        )
        return found if isinstance(found, uuid.UUID) else None

    async def get_collection(
        self, tenant: str, name: str, *, with_counts: bool = False
    ) -> CollectionRecord | None:
        """The tenant's collection ``name`` (its document and chunk counts only if asked: counting
        reads the whole collection, which indexing and searching must not pay for)."""
        async with self._db.session() as session:
            if with_counts:
                rows = await self._collections(session, tenant, name)
                return rows[0] if rows else None
            row = (
                await session.execute(
                    text(
                        "SELECT c.id, c.name, c.description, c.embedding_model, c.dimensions,"
                        " c.created_at FROM rag_collections c JOIN tenants t ON t.id = c.tenant_id"
                        " WHERE t.name = :tenant AND c.name = :name"
                    ),
                    {"tenant": tenant, "name": name},
                )
            ).first()
        return CollectionRecord(*row) if row is not None else None

    async def list_collections(self, tenant: str) -> list[CollectionRecord]:
        """The tenant's collections by name, with their counts."""
        async with self._db.session() as session:
            return await self._collections(session, tenant, None)

    async def _collections(
        self, session: AsyncSession, tenant: str, name: str | None
    ) -> list[CollectionRecord]:
        params: dict[str, Any] = {"tenant": tenant}
        where = ""
        if name is not None:
            where = " AND c.name = :name"
            params["name"] = name
        rows = await session.execute(
            text(
                "SELECT c.id, c.name, c.description, c.embedding_model, c.dimensions, c.created_at,"
                " (SELECT count(*) FROM rag_documents d WHERE d.collection_id = c.id),"
                " (SELECT count(*) FROM rag_chunks k WHERE k.collection_id = c.id)"
                " FROM rag_collections c JOIN tenants t ON t.id = c.tenant_id"
                f" WHERE t.name = :tenant{where} ORDER BY c.name"
            ),
            params,
        )
        return [CollectionRecord(*row) for row in rows]

    async def create_collection(
        self,
        tenant_id: uuid.UUID,
        name: str,
        *,
        embedding_model: str,
        dimensions: int,
        description: str = "",
        exist_ok: bool = False,
    ) -> CollectionRecord:
        """Create a collection (409 if it exists, unless ``exist_ok``)."""
        await self.ensure_vector_index(dimensions)
        async with self._db.session() as session:
            try:
                await session.execute(
                    text(
                        "INSERT INTO rag_collections"
                        " (id, tenant_id, name, description, embedding_model, dimensions)"
                        " VALUES (:id, :tenant_id, :name, :description, :model, :dimensions)"
                    ),
                    {
                        "id": uuid.uuid4(),
                        "tenant_id": tenant_id,
                        "name": name,
                        "description": description,
                        "model": embedding_model,
                        "dimensions": dimensions,
                    },
                )
                await session.commit()
            except IntegrityError:
                await session.rollback()
                if not exist_ok:
                    raise Conflict(f"Collection {name!r} exists already.") from None
            row = await session.execute(
                text(
                    "SELECT id, name, description, embedding_model, dimensions, created_at"
                    " FROM rag_collections WHERE tenant_id = :tenant_id AND name = :name"
                ),
                {"tenant_id": tenant_id, "name": name},
            )
            return CollectionRecord(*row.one())

    async def ensure_vector_index(self, dimensions: int) -> None:
        """An HNSW index for vectors of this size (pgvector indexes one size per index)."""
        size = int(dimensions)
        kind = _vector_type(size)
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
                    f"WHERE dimensions = {size}"
                )
            )

    async def delete_collection(self, tenant: str, name: str) -> tuple[int, int] | None:
        """Delete a collection with everything in it; (documents, chunks) deleted, or None."""
        async with self._db.session() as session, session.begin():
            row = (
                await session.execute(
                    text(
                        "SELECT c.id FROM rag_collections c JOIN tenants t ON t.id = c.tenant_id"
                        " WHERE t.name = :tenant AND c.name = :name FOR UPDATE OF c"
                    ),
                    {"tenant": tenant, "name": name},
                )
            ).first()
            if row is None:
                return None
            counts = (
                await session.execute(
                    text(
                        "SELECT (SELECT count(*) FROM rag_documents WHERE collection_id = :id),"
                        " (SELECT count(*) FROM rag_chunks WHERE collection_id = :id)"
                    ),
                    {"id": row[0]},
                )
            ).one()
            await session.execute(
                text("DELETE FROM rag_postings WHERE collection_id = :id"), {"id": row[0]}
            )
            await session.execute(
                text("DELETE FROM rag_collections WHERE id = :id"), {"id": row[0]}
            )
            return int(counts[0]), int(counts[1])

    # -- documents ---------------------------------------------------------------------------

    async def get_document(
        self, tenant: str, collection: str, external_id: str
    ) -> DocumentRecord | None:
        """A document of the tenant's collection."""
        async with self._db.session() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT d.id, d.external_id, c.name, d.source, d.source_type, d.metadata,"
                        " d.content_sha256, d.characters, d.chunk_count, d.chunk_size,"
                        " d.chunk_overlap, d.created_at, d.updated_at"
                        " FROM rag_documents d JOIN rag_collections c ON c.id = d.collection_id"
                        " JOIN tenants t ON t.id = c.tenant_id"
                        " WHERE t.name = :tenant AND c.name = :collection"
                        " AND d.external_id = :external_id"
                    ),
                    {"tenant": tenant, "collection": collection, "external_id": external_id},
                )
            ).first()
        return DocumentRecord(*row) if row is not None else None

    async def list_documents(
        self,
        collection: CollectionRecord,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[DocumentRecord]:
        """Documents of a collection, newest first, after a (created_at, id) position."""
        params: dict[str, Any] = {"collection_id": collection.id, "limit": limit}
        where = ""
        if after is not None:
            where = " AND (d.created_at, d.id) < (:created_at, :id)"
            params["created_at"], params["id"] = after
        async with self._db.session() as session:
            rows = await session.execute(
                text(
                    "SELECT d.id, d.external_id, :name, d.source, d.source_type, d.metadata,"
                    " d.content_sha256, d.characters, d.chunk_count, d.chunk_size,"
                    " d.chunk_overlap, d.created_at, d.updated_at"
                    f" FROM rag_documents d WHERE d.collection_id = :collection_id{where}"
                    " ORDER BY d.created_at DESC, d.id DESC LIMIT :limit"
                ),
                {**params, "name": collection.name},
            )
            return [DocumentRecord(*row) for row in rows]

    async def replace_document(
        self,
        collection: CollectionRecord,
        *,
        external_id: str,
        source: str,
        source_type: str,
        metadata: Mapping[str, Any],
        content_sha256: str,
        characters: int,
        chunk_size: int,
        chunk_overlap: int,
        chunks: Sequence[ChunkToStore],
    ) -> uuid.UUID:
        """Write a document and its chunks, replacing any previous version, in one transaction."""
        async with self._db.session() as session, session.begin():
            document_id = (
                await session.execute(
                    text(
                        "INSERT INTO rag_documents (id, collection_id, external_id, source,"
                        " source_type, metadata, content_sha256, characters, chunk_count,"
                        " chunk_size, chunk_overlap)"
                        " VALUES (:id, :collection_id, :external_id, :source, :source_type,"
                        " CAST(:metadata AS jsonb), :sha, :characters, :count, :size, :overlap)"
                        " ON CONFLICT (collection_id, external_id) DO UPDATE SET"
                        " source = EXCLUDED.source, source_type = EXCLUDED.source_type,"
                        " metadata = EXCLUDED.metadata, content_sha256 = EXCLUDED.content_sha256,"
                        " characters = EXCLUDED.characters, chunk_count = EXCLUDED.chunk_count,"
                        " chunk_size = EXCLUDED.chunk_size, chunk_overlap = EXCLUDED.chunk_overlap,"
                        " updated_at = now()"
                        " RETURNING id"
                    ),
                    {
                        "id": uuid.uuid4(),
                        "collection_id": collection.id,
                        "external_id": external_id,
                        "source": source,
                        "source_type": source_type,
                        "metadata": json.dumps(dict(metadata)),
                        "sha": content_sha256,
                        "characters": characters,
                        "count": len(chunks),
                        "size": chunk_size,
                        "overlap": chunk_overlap,
                    },
                )
            ).scalar_one()
            await session.execute(
                text(
                    "DELETE FROM rag_postings WHERE chunk_id IN"
                    " (SELECT id FROM rag_chunks WHERE document_id = :document_id)"
                ),
                {"document_id": document_id},
            )
            await session.execute(
                text("DELETE FROM rag_chunks WHERE document_id = :document_id"),
                {"document_id": document_id},
            )
            await session.execute(
                text(
                    "INSERT INTO rag_chunks (id, document_id, collection_id, position, content,"
                    " char_start, char_end, page, token_count, lexeme_count, dimensions, embedding)"
                    " VALUES (:id, :document_id, :collection_id, :position, :content, :start,"
                    " :end, :page, :tokens, 0, :dimensions, CAST(:embedding AS vector))"
                ),
                [
                    {
                        "id": uuid.uuid4(),
                        "document_id": document_id,
                        "collection_id": collection.id,
                        "position": chunk.position,
                        "content": chunk.content,
                        "start": chunk.start,
                        "end": chunk.end,
                        "page": chunk.page,
                        "tokens": chunk.token_count,
                        "dimensions": collection.dimensions,
                        "embedding": _vector_literal(chunk.vector),
                    }
                    for chunk in chunks
                ],
            )
            await session.execute(
                text(
                    "INSERT INTO rag_postings (collection_id, lexeme, chunk_id, tf)"
                    " SELECT c.collection_id, t.lexeme, c.id,"
                    " coalesce(array_length(t.positions, 1), 1)"
                    f" FROM rag_chunks c, unnest(to_tsvector('{TS_CONFIG}', c.content)) t"
                    " WHERE c.document_id = :document_id"
                ),
                {"document_id": document_id},
            )
            await session.execute(
                text(
                    "UPDATE rag_chunks c SET lexeme_count = coalesce(s.total, 0) FROM"
                    " (SELECT chunk_id, sum(tf) AS total FROM rag_postings"
                    "  WHERE chunk_id IN (SELECT id FROM rag_chunks WHERE document_id = :d)"
                    "  GROUP BY chunk_id) s"
                    " WHERE c.id = s.chunk_id"
                ),
                {"d": document_id},
            )
        assert isinstance(document_id, uuid.UUID)
        return document_id

    async def delete_document(self, tenant: str, collection: str, external_id: str) -> int | None:
        """Delete a document with its chunks, vectors and postings; chunks deleted, or None."""
        async with self._db.session() as session, session.begin():
            row = (
                await session.execute(
                    text(
                        "SELECT d.id, d.chunk_count FROM rag_documents d"
                        " JOIN rag_collections c ON c.id = d.collection_id"
                        " JOIN tenants t ON t.id = c.tenant_id"
                        " WHERE t.name = :tenant AND c.name = :collection"
                        " AND d.external_id = :external_id FOR UPDATE OF d"
                    ),
                    {"tenant": tenant, "collection": collection, "external_id": external_id},
                )
            ).first()
            if row is None:
                return None
            await session.execute(
                text(
                    "DELETE FROM rag_postings WHERE chunk_id IN"
                    " (SELECT id FROM rag_chunks WHERE document_id = :id)"
                ),
                {"id": row[0]},
            )
            await session.execute(text("DELETE FROM rag_documents WHERE id = :id"), {"id": row[0]})
            return int(row[1])

    # -- search ------------------------------------------------------------------------------

    _RESULT_COLUMNS = (
        "c.id, d.external_id, c.content, d.source, d.metadata, c.char_start, c.char_end, c.page"
    )

    async def search_dense(
        self,
        collection: CollectionRecord,
        vector: npt.NDArray[np.float32],
        *,
        limit: int,
        filters: Mapping[str, Any],
    ) -> list[ScoredChunk]:
        """Chunks by cosine similarity to ``vector`` (HNSW, iterative scan under filters)."""
        size = int(collection.dimensions)
        params: dict[str, Any] = {
            "collection_id": collection.id,
            "query": _vector_literal(vector),
            "limit": limit,
        }
        where = _filter_sql(filters, params)
        kind = _vector_type(size)
        distance = f"c.embedding::{kind} <=> CAST(:query AS {kind})"
        async with self._db.session() as session, session.begin():
            await session.execute(text("SET LOCAL hnsw.ef_search = 100"))
            await session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            rows = await session.execute(
                text(
                    f"SELECT {self._RESULT_COLUMNS}, 1 - ({distance}) AS score"
                    " FROM rag_chunks c JOIN rag_documents d ON d.id = c.document_id"
                    f" WHERE c.collection_id = :collection_id AND c.dimensions = {size}{where}"
                    f" ORDER BY {distance} LIMIT :limit"
                ),
                params,
            )
            found = [ScoredChunk(*row) for row in rows]
        return sorted(found, key=lambda chunk: -chunk.score)

    async def search_lexical(
        self,
        collection: CollectionRecord,
        query: str,
        *,
        limit: int,
        filters: Mapping[str, Any],
    ) -> list[ScoredChunk]:
        """Chunks by BM25 (k1 1.2, b 0.75) over the collection's postings."""
        params: dict[str, Any] = {"collection_id": collection.id, "query": query, "limit": limit}
        where = _filter_sql(filters, params)
        sql = f"""
        WITH q AS MATERIALIZED (
            SELECT DISTINCT lexeme FROM unnest(to_tsvector('{TS_CONFIG}', :query))
        ),
        stats AS MATERIALIZED (
            SELECT count(*) AS n, greatest(avg(lexeme_count), 1) AS avgdl
            FROM rag_chunks WHERE collection_id = :collection_id
        ),
        -- Each query term is looked up through the (collection_id, lexeme) index, instead of
        -- scanning the collection's postings (measured on SciFact: 30-63 ms against 70-88 ms).
        df AS MATERIALIZED (
            SELECT q.lexeme, (
                SELECT count(*) FROM rag_postings p
                WHERE p.collection_id = :collection_id AND p.lexeme = q.lexeme
            ) AS df
            FROM q
        ),
        scored AS (
            SELECT p.chunk_id, sum(
                ln(1 + (stats.n - df.df + 0.5) / (df.df + 0.5))
                * p.tf * {BM25_K1 + 1}
                / (p.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * k.lexeme_count / stats.avgdl))
            ) AS score
            FROM df
            CROSS JOIN LATERAL (
                SELECT p.chunk_id, p.tf FROM rag_postings p
                WHERE p.collection_id = :collection_id AND p.lexeme = df.lexeme
                OFFSET 0
            ) p
            JOIN rag_chunks k ON k.id = p.chunk_id
            CROSS JOIN stats
            WHERE df.df > 0
            GROUP BY p.chunk_id
        )
        SELECT {self._RESULT_COLUMNS}, s.score
        FROM scored s JOIN rag_chunks c ON c.id = s.chunk_id
        JOIN rag_documents d ON d.id = c.document_id
        WHERE TRUE{where}
        ORDER BY s.score DESC, c.id LIMIT :limit
        """
        async with self._db.session() as session:
            rows = await session.execute(text(sql), params)
            return [ScoredChunk(*row) for row in rows]
