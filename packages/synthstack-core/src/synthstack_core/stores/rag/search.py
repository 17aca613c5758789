"""Search within a collection: dense (its vector store), lexical (BM25 over the postings), and
both from one snapshot (hybrid)."""

# SQL here interpolates only module constants and generated placeholder names; every value travels
# as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from synthstack_core.stores.rag.base import TS_CONFIG, RepositoryBase
from synthstack_core.stores.rag.lexical import term_score_sql
from synthstack_core.stores.rag.records import CollectionRecord
from synthstack_core.stores.vectors import RESULT_COLUMNS, ScoredChunk, metadata_filter_sql

__all__ = ["SearchQueries"]


class SearchQueries(RepositoryBase):
    """Searches of one tenant's collection."""

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
        """Chunks by BM25 (k1 1.2, b 0.75) over the collection's postings and its stored
        statistics (in ``session``'s snapshot when given); ties by chunk id."""
        params: dict[str, Any] = {"collection_id": collection.id, "query": query, "limit": limit}
        where = metadata_filter_sql(filters, params)
        async with self._session(session) as active:
            rows = await active.execute(text(_exact_sql(where)), params)
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
        # A store outside the database is asked before the transaction starts: no connection is
        # held while it answers. Its hits carry no rows; they are read in the snapshot below.
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


def _exact_sql(where: str) -> str:
    """BM25 over every posting of the query's terms, with the collection's stored statistics
    (``stores/rag/lexical.py``). Without a filter, the ``limit`` best are kept before their rows are
    read; with one, every scored chunk's document is read for it."""
    score = term_score_sql("st.n", "df.df", "st.avgdl", "p.tf", "p.chunk_length")
    scored = f"""
        WITH q AS MATERIALIZED (
            SELECT DISTINCT lexeme FROM unnest(to_tsvector('{TS_CONFIG}', :query))
        ),
        st AS MATERIALIZED (
            SELECT chunk_count AS n,
                greatest(CAST(total_length AS numeric) / nullif(chunk_count, 0), 1) AS avgdl
            FROM rag_collection_stats WHERE collection_id = :collection_id
        ),
        df AS MATERIALIZED (
            SELECT q.lexeme, t.df FROM q JOIN rag_term_stats t
            ON t.collection_id = :collection_id AND t.lexeme = q.lexeme
        ),
        -- Each term's postings through the (collection_id, lexeme) index; the chunk's length is
        -- in the posting, so no chunk row is read before the best are known.
        scored AS (
            SELECT p.chunk_id, sum({score}) AS score
            FROM df CROSS JOIN st
            CROSS JOIN LATERAL (
                SELECT p.chunk_id, p.tf, p.chunk_length FROM rag_postings p
                WHERE p.collection_id = :collection_id AND p.lexeme = df.lexeme
                OFFSET 0
            ) p
            GROUP BY p.chunk_id
        )"""
    if where:
        return f"""{scored}
        SELECT {RESULT_COLUMNS}, s.score
        FROM scored s JOIN rag_chunks c ON c.id = s.chunk_id
        JOIN rag_documents d ON d.id = c.document_id
        WHERE TRUE{where}
        ORDER BY s.score DESC, c.id LIMIT :limit
        """
    return f"""{scored},
        best AS (SELECT chunk_id, score FROM scored ORDER BY score DESC, chunk_id LIMIT :limit)
        SELECT {RESULT_COLUMNS}, s.score
        FROM best s JOIN rag_chunks c ON c.id = s.chunk_id
        JOIN rag_documents d ON d.id = c.document_id
        ORDER BY s.score DESC, c.id
        """
