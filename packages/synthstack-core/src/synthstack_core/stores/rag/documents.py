"""Documents of a collection: read, listed, written (with their chunks and postings) and deleted."""

# SQL here interpolates only module constants and generated placeholder names; every value travels
# as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from synthstack_core.errors import DependencyUnavailable, NotFound
from synthstack_core.stores.rag.base import TS_CONFIG
from synthstack_core.stores.rag.lexical import apply_stats, impact_sql
from synthstack_core.stores.rag.outbox import WRITE_LEASE_SECONDS, VectorDeletionOutbox
from synthstack_core.stores.rag.records import ChunkToStore, CollectionRecord, DocumentRecord
from synthstack_core.stores.vectors import VectorPoint, VectorScope
from synthstack_core.stores.write_claims import claim_write

__all__ = ["COLLECTION_FOREIGN_KEYS", "DocumentQueries", "collection_deleted"]

#: The foreign keys from a collection's rows to the collection (PostgreSQL's default names,
#: ``<table>_collection_id_fkey``, given by Alembic 0002 and 0009).
COLLECTION_FOREIGN_KEYS = frozenset(
    f"{table}_collection_id_fkey"
    for table in ("rag_documents", "rag_chunks", "rag_collection_stats", "rag_term_stats")
)


def collection_deleted(error: IntegrityError) -> bool:
    """Whether ``error`` is a row referring to a collection that no longer exists: a foreign-key
    violation (SQLSTATE 23503) of one of :data:`COLLECTION_FOREIGN_KEYS`, and nothing else."""
    original = error.orig
    diagnostic = getattr(original, "diag", None)
    return (
        getattr(original, "sqlstate", None) == "23503"
        and getattr(diagnostic, "constraint_name", None) in COLLECTION_FOREIGN_KEYS
    )


class DocumentQueries(VectorDeletionOutbox):
    """Reads and writes of ``rag_documents``, ``rag_chunks`` and ``rag_postings``."""

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
                        " d.chunk_overlap, d.created_at, d.updated_at, d.title"
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
                    " d.chunk_overlap, d.created_at, d.updated_at, d.title"
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
        title: str | None,
        header: str | None,
        metadata: Mapping[str, Any],
        content_sha256: str,
        characters: int,
        chunk_size: int,
        chunk_overlap: int,
        chunks: Sequence[ChunkToStore],
    ) -> uuid.UUID:
        """Write a document and its chunks, replacing any previous version, in one transaction
        (with an external vector store, see :mod:`synthstack_core.stores.rag`)."""
        store = self.vector_store(collection)
        await self.sweep_vector_deletions_soon()
        scope = collection.vector_scope
        chunk_ids = [uuid.uuid4() for _ in chunks]
        new_points: int | None = None
        old_points: int | None = None
        if not store.in_chunk_rows and chunk_ids:
            # Before any point is written: the record that removes them unless they go live.
            async with self._db.session() as session, session.begin():
                new_points = await self._record_deletion(
                    session,
                    store,
                    scope,
                    "points",
                    chunk_ids=chunk_ids,
                    hold_seconds=WRITE_LEASE_SECONDS,
                )
        try:
            async with self._db.session() as session, session.begin():
                if new_points is not None:
                    # Locks the record (sweeps skip it) until the commit removes it with the
                    # points going live, or a rollback leaves it to remove them.
                    await session.execute(
                        text("DELETE FROM rag_vector_deletions WHERE id = :id"),
                        {"id": new_points},
                    )
                document_id = (
                    await session.execute(
                        text(
                            "INSERT INTO rag_documents (id, collection_id, external_id, source,"
                            " source_type, title, metadata, content_sha256, characters,"
                            " chunk_count, chunk_size, chunk_overlap)"
                            " VALUES (:id, :collection_id, :external_id, :source, :source_type,"
                            " :title, CAST(:metadata AS jsonb), :sha, :characters, :count,"
                            " :size, :overlap)"
                            " ON CONFLICT (collection_id, external_id) DO UPDATE SET"
                            " source = EXCLUDED.source, source_type = EXCLUDED.source_type,"
                            " title = EXCLUDED.title,"
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
                            "title": title,
                            "metadata": json.dumps(dict(metadata)),
                            "sha": content_sha256,
                            "characters": characters,
                            "count": len(chunks),
                            "size": chunk_size,
                            "overlap": chunk_overlap,
                        },
                    )
                ).scalar_one()
                # Holding the document's row: a job writing it claims its own row (or finds
                # itself cancelled, and this write rolls back); see stores/write_claims.py.
                await claim_write(session)
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
                    if old_chunk_ids:
                        old_points = await self._record_deletion(
                            session, store, scope, "points", chunk_ids=old_chunk_ids
                        )
                # The previous version's share of the statistics, taken out below.
                removed = await _delete_postings(session, document_id)
                old_chunks, old_length = (
                    await session.execute(
                        text(
                            "WITH gone AS (DELETE FROM rag_chunks WHERE document_id = :document_id"
                            " RETURNING lexeme_count)"
                            " SELECT count(*), coalesce(sum(lexeme_count), 0) FROM gone"
                        ),
                        {"document_id": document_id},
                    )
                ).one()
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
                # A chunk's postings carry its length and their impact (see Alembic 0009).
                added = (
                    await session.execute(
                        text(
                            "WITH t AS MATERIALIZED ("
                            " SELECT c.id AS chunk_id, x.lexeme,"
                            " coalesce(array_length(x.positions, 1), 1) AS tf"
                            f" FROM rag_chunks c, unnest(to_tsvector('{TS_CONFIG}',"
                            " CASE WHEN c.id = ANY(CAST(:headed AS uuid[]))"
                            " THEN CAST(:header AS text) || E'\\n\\n' || c.content"
                            " ELSE c.content END)) x"
                            " WHERE c.document_id = :document_id),"
                            " l AS MATERIALIZED ("
                            " SELECT chunk_id, CAST(sum(tf) AS integer) AS length FROM t"
                            " GROUP BY chunk_id),"
                            " posted AS (INSERT INTO rag_postings (collection_id, lexeme,"
                            " chunk_id, tf, chunk_length, impact)"
                            " SELECT :collection_id, t.lexeme, t.chunk_id, t.tf, l.length,"
                            f" {impact_sql('t.tf', 'l.length')}"
                            " FROM t JOIN l USING (chunk_id)),"
                            " counted AS (UPDATE rag_chunks c SET lexeme_count = l.length"
                            " FROM l WHERE c.id = l.chunk_id)"
                            " SELECT lexeme, count(*), sum(tf) FROM t GROUP BY lexeme"
                        ),
                        {
                            "document_id": document_id,
                            "collection_id": collection.id,
                            "header": header,
                            "headed": [
                                chunk_id
                                for chunk_id, chunk in zip(chunk_ids, chunks, strict=True)
                                if chunk.headed
                            ],
                        },
                    )
                ).all()
                assert isinstance(document_id, uuid.UUID)
                # Last, so that a failure rolls everything back: the store removes what it
                # wrote of a failed write itself (if it can), and raises DependencyUnavailable.
                await store.upsert(
                    scope,
                    [
                        VectorPoint(chunk_id, document_id, chunk.vector, metadata)
                        for chunk_id, chunk in zip(chunk_ids, chunks, strict=True)
                    ],
                )
                frequencies = dict.fromkeys(removed, 0) | {row[0]: int(row[1]) for row in added}
                for lexeme, count in removed.items():
                    frequencies[lexeme] -= count
                await apply_stats(
                    session,
                    collection.id,
                    chunks=len(chunks) - int(old_chunks),
                    length=sum(int(row[2]) for row in added) - int(old_length),
                    document_frequencies=frequencies,
                )
        except BaseException as error:
            # Rolled back: the new points belong to nothing. (Had the commit happened after all,
            # it removed the record, and this finds nothing to do.)
            await self._settle(new_points)
            if isinstance(error, IntegrityError) and collection_deleted(error):
                # Deleted since it was read (a deletion waits for a writer that got there first,
                # then takes the document with it): the deletion wins, nothing is stored.
                raise NotFound(
                    f"No collection {collection.name!r}: it was deleted while the document was "
                    "being indexed into it; nothing was stored."
                ) from error
            raise
        await self._settle(old_points)
        return document_id

    async def delete_document(self, tenant: str, collection: str, external_id: str) -> int | None:
        """Delete a document with its chunks, vectors and postings; chunks deleted, or None."""
        await self.sweep_vector_deletions_soon()
        record: int | None = None
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
            removed = await _delete_postings(session, row[0])
            chunk_count, length = (
                await session.execute(
                    text(
                        "WITH gone AS (DELETE FROM rag_chunks WHERE document_id = :id"
                        " RETURNING lexeme_count)"
                        " SELECT count(*), coalesce(sum(lexeme_count), 0) FROM gone"
                    ),
                    {"id": row[0]},
                )
            ).one()
            await session.execute(text("DELETE FROM rag_documents WHERE id = :id"), {"id": row[0]})
            if not store.in_chunk_rows:
                scope = VectorScope(row[3], row[4], row[5])
                record = await self._record_deletion(
                    session, store, scope, "document", document_id=row[0]
                )
            await apply_stats(
                session,
                row[4],
                chunks=-int(chunk_count),
                length=-int(length),
                document_frequencies={lexeme: -count for lexeme, count in removed.items()},
            )
        await self._settle(record)
        return int(row[1])


async def _delete_postings(session: AsyncSession, document_id: uuid.UUID) -> dict[str, int]:
    """Delete a document's postings; how many chunks held each lexeme."""
    rows = await session.execute(
        text(
            "WITH gone AS (DELETE FROM rag_postings WHERE chunk_id IN"
            " (SELECT id FROM rag_chunks WHERE document_id = :document_id) RETURNING lexeme)"
            " SELECT lexeme, count(*) FROM gone GROUP BY lexeme"
        ),
        {"document_id": document_id},
    )
    return {row[0]: int(row[1]) for row in rows}
