"""RAG storage: collections, documents, chunks and BM25 postings in PostgreSQL; vectors in the
collection's :class:`~synthstack_core.stores.vectors.VectorStore` (pgvector or Qdrant).

Every query is scoped by tenant: a collection is found by (tenant, name), and documents and chunks
only through their collection, so a tenant never reads, searches or deletes another's data.

A document is written in one transaction — its row (upserted, which also locks it), the removal of
its previous chunks, its new chunks, and their postings — so a failed ingestion leaves nothing
behind and two concurrent re-indexings of one document never mix: the second waits for the first's
row lock, then replaces its chunks whole. With pgvector the vectors are columns of the chunk rows,
written by the same statements. With Qdrant the new chunks' points (new ids) are written before
the transaction commits; if that write fails the transaction rolls back, the points written are
removed and the caller gets a 503. The previous version's points are deleted after the commit;
until then they are invisible, because a search only returns chunks whose rows it reads back from
PostgreSQL (committed, in the tenant's collection, matching the filter). Deleting a document or
a collection deletes its points after the rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from synthstack_core.errors import Conflict, DependencyUnavailable
from synthstack_core.stores.database import Database
from synthstack_core.stores.vectors import (
    RESULT_COLUMNS,
    PgVectorStore,
    ScoredChunk,
    StoreName,
    VectorPoint,
    VectorScope,
    VectorStore,
    metadata_filter_sql,
    vector_type,
)

__all__ = [
    "ChunkToStore",
    "CollectionRecord",
    "DocumentRecord",
    "RagRepository",
    "ScoredChunk",
]

logger = logging.getLogger("synthstack.rag")

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
    store: StoreName
    tenant_id: uuid.UUID
    documents: int = 0
    chunks: int = 0

    @property
    def vector_scope(self) -> VectorScope:
        """Where its vectors are, in its vector store."""
        return VectorScope(self.tenant_id, self.id, self.dimensions)


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


class RagRepository:
    """Tenant-scoped reads and writes of the RAG tables and of the collections' vector stores."""

    def __init__(
        self,
        database: Database,
        stores: Sequence[VectorStore] = (),
        *,
        default_store: StoreName = "pgvector",
    ) -> None:
        """``stores`` are the vector stores this deployment reaches (pgvector always); new
        collections keep their vectors in ``default_store``."""
        self._db = database
        self._stores: dict[str, VectorStore] = {"pgvector": PgVectorStore(database)}
        self._stores.update({store.name: store for store in stores})
        if default_store not in self._stores:
            raise ValueError(f"vector store {default_store!r} is not configured")
        self.default_store: StoreName = default_store

    def vector_store(self, collection: CollectionRecord) -> VectorStore:
        """The store holding the collection's vectors (503 if this deployment cannot reach it)."""
        store = self._stores.get(collection.store)
        if store is None:
            raise DependencyUnavailable(
                f"Collection {collection.name!r} keeps its vectors in {collection.store}, "
                "which this deployment is not configured to reach."
            )
        return store

    async def vector_count(self, collection: CollectionRecord) -> int:
        """How many vectors the collection's store really holds for it."""
        return await self.vector_store(collection).count(collection.vector_scope)

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
                        " c.created_at, c.vector_store, c.tenant_id"
                        " FROM rag_collections c JOIN tenants t ON t.id = c.tenant_id"
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
                " c.vector_store, c.tenant_id,"
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
        """Create a collection (409 if it exists, unless ``exist_ok``); its vectors go to the
        default store."""
        if self.default_store == "pgvector":
            await self.ensure_vector_index(dimensions)
        async with self._db.session() as session:
            try:
                await session.execute(
                    text(
                        "INSERT INTO rag_collections (id, tenant_id, name, description,"
                        " embedding_model, dimensions, vector_store)"
                        " VALUES (:id, :tenant_id, :name, :description, :model, :dimensions,"
                        " :store)"
                    ),
                    {
                        "id": uuid.uuid4(),
                        "tenant_id": tenant_id,
                        "name": name,
                        "description": description,
                        "model": embedding_model,
                        "dimensions": dimensions,
                        "store": self.default_store,
                    },
                )
                await session.commit()
            except IntegrityError:
                await session.rollback()
                if not exist_ok:
                    raise Conflict(f"Collection {name!r} exists already.") from None
            row = await session.execute(
                text(
                    "SELECT id, name, description, embedding_model, dimensions, created_at,"
                    " vector_store, tenant_id"
                    " FROM rag_collections WHERE tenant_id = :tenant_id AND name = :name"
                ),
                {"tenant_id": tenant_id, "name": name},
            )
            return CollectionRecord(*row.one())

    async def ensure_vector_index(self, dimensions: int) -> None:
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
                    f"WHERE dimensions = {size}"
                )
            )

    async def delete_collection(self, tenant: str, name: str) -> tuple[int, int] | None:
        """Delete a collection with everything in it; (documents, chunks) deleted, or None."""
        async with self._db.session() as session, session.begin():
            row = (
                await session.execute(
                    text(
                        "SELECT c.id, c.name, c.description, c.embedding_model, c.dimensions,"
                        " c.created_at, c.vector_store, c.tenant_id"
                        " FROM rag_collections c JOIN tenants t ON t.id = c.tenant_id"
                        " WHERE t.name = :tenant AND c.name = :name FOR UPDATE OF c"
                    ),
                    {"tenant": tenant, "name": name},
                )
            ).first()
            if row is None:
                return None
            collection = CollectionRecord(*row)
            store = self.vector_store(collection)  # unreachable: 503 before anything is deleted
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
        await self._after_commit(store.delete_collection(collection.vector_scope))
        return int(counts[0]), int(counts[1])

    @staticmethod
    async def _after_commit(deletion: Awaitable[None]) -> None:
        """Delete points whose rows are gone: a failure only leaves points no search returns
        (their rows are not there to read back), so it is logged, not raised."""
        try:
            with anyio.CancelScope(shield=True):
                await deletion
        except DependencyUnavailable:
            logger.warning("vector store: points of deleted chunks are left behind")

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
        """Write a document and its chunks, replacing any previous version, in one transaction
        (with an external vector store, see the module's docstring)."""
        store = self.vector_store(collection)
        chunk_ids = [uuid.uuid4() for _ in chunks]
        old_chunk_ids: list[uuid.UUID] = []
        points_written = False
        try:
            async with self._db.session() as session, session.begin():
                document_id = (
                    await session.execute(
                        text(
                            "INSERT INTO rag_documents (id, collection_id, external_id, source,"
                            " source_type, metadata, content_sha256, characters, chunk_count,"
                            " chunk_size, chunk_overlap)"
                            " VALUES (:id, :collection_id, :external_id, :source, :source_type,"
                            " CAST(:metadata AS jsonb), :sha, :characters, :count, :size,"
                            " :overlap)"
                            " ON CONFLICT (collection_id, external_id) DO UPDATE SET"
                            " source = EXCLUDED.source, source_type = EXCLUDED.source_type,"
                            " metadata = EXCLUDED.metadata,"
                            " content_sha256 = EXCLUDED.content_sha256,"
                            " characters = EXCLUDED.characters,"
                            " chunk_count = EXCLUDED.chunk_count,"
                            " chunk_size = EXCLUDED.chunk_size,"
                            " chunk_overlap = EXCLUDED.chunk_overlap,"
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
                if not store.in_chunk_rows:
                    # Read after the row lock: the chunks of the version committed last.
                    old_chunk_ids = list(
                        (
                            await session.execute(
                                text("SELECT id FROM rag_chunks WHERE document_id = :document_id"),
                                {"document_id": document_id},
                            )
                        ).scalars()
                    )
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
                        "INSERT INTO rag_chunks (id, document_id, collection_id, position,"
                        " content, char_start, char_end, page, token_count, lexeme_count,"
                        " dimensions, embedding)"
                        " VALUES (:id, :document_id, :collection_id, :position, :content,"
                        " :start, :end, :page, :tokens, 0, :dimensions,"
                        " CAST(:embedding AS vector))"
                    ),
                    [
                        {
                            "id": chunk_id,
                            "document_id": document_id,
                            "collection_id": collection.id,
                            "position": chunk.position,
                            "content": chunk.content,
                            "start": chunk.start,
                            "end": chunk.end,
                            "page": chunk.page,
                            "tokens": chunk.token_count,
                            "dimensions": collection.dimensions,
                            "embedding": store.row_embedding(chunk.vector),
                        }
                        for chunk_id, chunk in zip(chunk_ids, chunks, strict=True)
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
                # Last, so that a failure rolls everything back: the store removes what it
                # wrote of a failed write itself, and raises DependencyUnavailable.
                await store.upsert(
                    collection.vector_scope,
                    [
                        VectorPoint(chunk_id, document_id, chunk.vector, metadata)
                        for chunk_id, chunk in zip(chunk_ids, chunks, strict=True)
                    ],
                )
                points_written = True
        except BaseException:
            if points_written:  # the commit failed: the new points belong to nothing
                await self._after_commit(store.delete_points(collection.vector_scope, chunk_ids))
            raise
        await self._after_commit(store.delete_points(collection.vector_scope, old_chunk_ids))
        return document_id

    async def delete_document(self, tenant: str, collection: str, external_id: str) -> int | None:
        """Delete a document with its chunks, vectors and postings; chunks deleted, or None."""
        async with self._db.session() as session, session.begin():
            row = (
                await session.execute(
                    text(
                        "SELECT d.id, d.chunk_count, c.vector_store, c.tenant_id, c.id,"
                        " c.dimensions FROM rag_documents d"
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
            store = self._stores.get(row[2])
            if store is None:
                raise DependencyUnavailable(
                    f"Collection {collection!r} keeps its vectors in {row[2]}, "
                    "which this deployment is not configured to reach."
                )
            await session.execute(
                text(
                    "DELETE FROM rag_postings WHERE chunk_id IN"
                    " (SELECT id FROM rag_chunks WHERE document_id = :id)"
                ),
                {"id": row[0]},
            )
            await session.execute(text("DELETE FROM rag_documents WHERE id = :id"), {"id": row[0]})
        await self._after_commit(store.delete_document(VectorScope(row[3], row[4], row[5]), row[0]))
        return int(row[1])

    # -- search ------------------------------------------------------------------------------

    async def search_dense(
        self,
        collection: CollectionRecord,
        vector: npt.NDArray[np.float32],
        *,
        limit: int,
        filters: Mapping[str, Any],
    ) -> list[ScoredChunk]:
        """Chunks by cosine similarity to ``vector``, from the collection's vector store."""
        hits = await self.vector_store(collection).search(
            collection.vector_scope, vector, limit=limit, filters=filters
        )
        missing = [hit.chunk_id for hit in hits if hit.chunk is None]
        rows = await self._chunks_by_id(collection, missing, filters) if missing else {}
        found: list[ScoredChunk] = []
        for hit in hits:
            if hit.chunk is not None:
                found.append(hit.chunk)
            elif hit.chunk_id in rows:
                found.append(dataclasses.replace(rows[hit.chunk_id], score=hit.score))
        return found

    async def _chunks_by_id(
        self,
        collection: CollectionRecord,
        ids: Sequence[uuid.UUID],
        filters: Mapping[str, Any],
        session: AsyncSession | None = None,
    ) -> dict[uuid.UUID, ScoredChunk]:
        """The committed chunk rows of these ids that are in the tenant's collection and match
        the filter (a point without one, or outside it, is never returned); in ``session``'s
        snapshot when given."""
        params: dict[str, Any] = {
            "ids": list(ids),
            "collection_id": collection.id,
            "tenant_id": collection.tenant_id,
        }
        where = metadata_filter_sql(filters, params)
        sql = text(
            f"SELECT {RESULT_COLUMNS}, 0.0 FROM rag_chunks c"
            " JOIN rag_documents d ON d.id = c.document_id"
            " JOIN rag_collections k ON k.id = c.collection_id"
            " WHERE c.id = ANY(CAST(:ids AS uuid[])) AND c.collection_id = :collection_id"
            f" AND k.tenant_id = :tenant_id{where}"
        )
        async with self._session(session) as active:
            rows = await active.execute(sql, params)
            return {row[0]: ScoredChunk(*row) for row in rows}

    async def search_lexical(
        self,
        collection: CollectionRecord,
        query: str,
        *,
        limit: int,
        filters: Mapping[str, Any],
        session: AsyncSession | None = None,
    ) -> list[ScoredChunk]:
        """Chunks by BM25 (k1 1.2, b 0.75) over the collection's postings (in ``session``'s
        snapshot when given)."""
        params: dict[str, Any] = {"collection_id": collection.id, "query": query, "limit": limit}
        where = metadata_filter_sql(filters, params)
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
        SELECT {RESULT_COLUMNS}, s.score
        FROM scored s JOIN rag_chunks c ON c.id = s.chunk_id
        JOIN rag_documents d ON d.id = c.document_id
        WHERE TRUE{where}
        ORDER BY s.score DESC, c.id LIMIT :limit
        """
        async with self._session(session) as active:
            rows = await active.execute(text(sql), params)
            return [ScoredChunk(*row) for row in rows]

    async def search_hybrid(
        self,
        collection: CollectionRecord,
        query: str,
        vector: npt.NDArray[np.float32],
        *,
        limit: int,
        filters: Mapping[str, Any],
    ) -> tuple[list[ScoredChunk], list[ScoredChunk]]:
        """Lexical and dense candidates, both read from **one snapshot** of the database.

        Read in two transactions, the two sides could straddle the commit of a re-index (the
        lexical side the old chunks, the dense side the new ones) and a fused result would mix
        two versions of a document. Here both run in one ``REPEATABLE READ`` transaction; with
        Qdrant, its hits are read back from that same snapshot, so points of a version the
        snapshot does not hold are dropped.
        """
        store = self.vector_store(collection)
        hits = (
            None
            if store.in_chunk_rows
            else await store.search(collection.vector_scope, vector, limit=limit, filters=filters)
        )
        async with self._db.session() as session, session.begin():
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            lexical = await self.search_lexical(
                collection, query, limit=limit, filters=filters, session=session
            )
            if hits is None:
                assert isinstance(store, PgVectorStore)
                hits = await store.search_in(
                    session, collection.vector_scope, vector, limit=limit, filters=filters
                )
            missing = [hit.chunk_id for hit in hits if hit.chunk is None]
            rows = (
                await self._chunks_by_id(collection, missing, filters, session) if missing else {}
            )
        dense: list[ScoredChunk] = []
        for hit in hits:
            if hit.chunk is not None:
                dense.append(hit.chunk)
            elif hit.chunk_id in rows:
                dense.append(dataclasses.replace(rows[hit.chunk_id], score=hit.score))
        return lexical, dense

    @contextlib.asynccontextmanager
    async def _session(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """``session`` when given (the caller's transaction), else a new one of its own."""
        if session is not None:
            yield session
            return
        async with self._db.session() as own:
            yield own
