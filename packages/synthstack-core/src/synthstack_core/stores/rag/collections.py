"""The tenant's collections: read, created, deleted (with everything in them)."""

# SQL here interpolates only module constants and generated placeholder names; every value travels
# as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from synthstack_core.errors import Conflict
from synthstack_core.stores.rag.outbox import VectorDeletionOutbox
from synthstack_core.stores.rag.records import CollectionRecord

__all__ = ["CollectionQueries"]


class CollectionQueries(VectorDeletionOutbox):
    """Reads and writes of ``rag_collections``, scoped by tenant."""

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
        await self._stores[self.default_store].ensure_index(dimensions)
        async with self._db.session() as session:
            collection_id = uuid.uuid4()
            try:
                await session.execute(
                    text(
                        "INSERT INTO rag_collections (id, tenant_id, name, description,"
                        " embedding_model, dimensions, vector_store)"
                        " VALUES (:id, :tenant_id, :name, :description, :model, :dimensions,"
                        " :store)"
                    ),
                    {
                        "id": collection_id,
                        "tenant_id": tenant_id,
                        "name": name,
                        "description": description,
                        "model": embedding_model,
                        "dimensions": dimensions,
                        "store": self.default_store,
                    },
                )
                # Its BM25 statistics (stores/rag/lexical.py), empty.
                await session.execute(
                    text("INSERT INTO rag_collection_stats (collection_id) VALUES (:id)"),
                    {"id": collection_id},
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

    async def delete_collection(self, tenant: str, name: str) -> tuple[int, int] | None:
        """Delete a collection with everything in it; (documents, chunks) deleted, or None."""
        await self.sweep_vector_deletions_soon()
        record: int | None = None
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
            # Its BM25 statistics go with it (ON DELETE CASCADE).
            await session.execute(
                text("DELETE FROM rag_collections WHERE id = :id"), {"id": row[0]}
            )
            if not store.in_chunk_rows:
                record = await self._record_deletion(
                    session, store, collection.vector_scope, "collection"
                )
        await self._settle(record)
        return int(counts[0]), int(counts[1])
