"""Search within a collection: dense (its vector store), lexical (BM25 over the postings), and
both from one snapshot (hybrid)."""

# SQL here interpolates only module constants and generated placeholder names; every value travels
# as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import dataclasses
import math
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from synthstack_core import tracing
from synthstack_core.stores.rag.base import TS_CONFIG, RepositoryBase
from synthstack_core.stores.rag.lexical import (
    BM25_K1,
    IMPACT_REFERENCE_LENGTH,
    term_score_float_sql,
    term_score_sql,
)
from synthstack_core.stores.rag.records import CollectionRecord
from synthstack_core.stores.vectors import (
    RESULT_COLUMNS,
    ScoredChunk,
    VectorStore,
    metadata_filter_sql,
)

__all__ = ["DEEPEN", "EXACT_BELOW", "FIRST_DEPTH", "ROUND_COST", "LexicalTrace", "SearchQueries"]

#: Up to this many postings (the query terms' document frequencies summed), the exact query reads
#: them all in one statement: cheaper than rounds (it scores ~1 µs a posting; a round has ~10 ms of
#: fixed cost, planning included).
EXACT_BELOW = 20_000
#: What a posting read by a round costs, in postings read by the exact statement (measured at 100k
#: chunks, docs/benchmarks.md: a round also completes and ranks its candidates): once the next
#: round would read more than ``postings / ROUND_COST``, the exact statement answers instead.
ROUND_COST = 32
#: Postings read per term in the first round (at least twice the limit).
FIRST_DEPTH = 100
#: How much deeper an essential list is read in the next round.
DEEPEN = 4
#: Relative slack on bounds and thresholds (floats: rounding is ~1e-16).
_MARGIN = 1e-9


@dataclasses.dataclass
class LexicalTrace:
    """How a lexical search went: the postings of its terms, whether the exact query answered,
    the rounds of early termination and the postings their last round read (at most)."""

    postings: int
    exact: bool
    rounds: int = 0
    read: int = 0


def vector_search_span(store: VectorStore, k: int) -> contextlib.AbstractContextManager[object]:
    """The span of one nearest-neighbour search: the store's name (``pgvector``, ``qdrant``) and
    the ``k`` nearest asked for (a no-op while tracing is off)."""
    return tracing.span(
        "vector search", {"synthstack.vector_store": store.name, "synthstack.vector_search.k": k}
    )


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
        store = self.vector_store(collection)
        with vector_search_span(store, limit):
            hits = await store.search(collection.vector_scope, vector, limit=limit, filters=filters)
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
        statistics (in ``session``'s snapshot when given); ties by chunk id. Exact: see
        :meth:`search_lexical_traced`."""
        found, _ = await self.search_lexical_traced(
            collection, query, limit=limit, filters=filters, session=session
        )
        return found

    async def search_lexical_traced(
        self,
        collection: CollectionRecord,
        query: str,
        *,
        limit: int,
        filters: Mapping[str, Any],
        session: AsyncSession | None = None,
        exact_below: int = EXACT_BELOW,
        first_depth: int | None = None,
        round_cost: float = ROUND_COST,
    ) -> tuple[list[ScoredChunk], LexicalTrace]:
        """:meth:`search_lexical`, and how it went.

        When the query's terms have more than ``exact_below`` postings together, the best chunks
        are found without reading them all (a threshold algorithm with MaxScore's choice of lists,
        the idea of Fagin et al. and Turtle & Flood): each round reads, per term, its postings of
        highest ``impact`` (a bound of the term's contribution, see Alembic ``0009``), completes
        the scores of the chunks that can still be among the best, and stops when the ``limit``-th
        best complete score beats what a chunk not read yet could reach (the sum of the terms'
        bounds at the depth read); else the lists that matter are read deeper. The result is the
        exact query's: same chunks, scores and order (``tests/test_rag_lexical.py`` compares
        them). A filter is applied to the candidates before they count; if a round would read more
        than ``postings / round_cost`` (the rounds would cost more than the exact query), the exact
        query runs instead. All statements read one
        snapshot (``REPEATABLE READ``, or ``session``'s). ``exact_below``, ``first_depth``
        (postings per term in the first round; default ``max(FIRST_DEPTH, 2 * limit)``) and
        ``round_cost`` (:data:`ROUND_COST`; 0 never falls back) are there for tests and
        measurements.
        """
        params: dict[str, Any] = {"collection_id": collection.id, "query": query, "limit": limit}
        where = metadata_filter_sql(filters, params)
        async with self._snapshot(session) as active:
            terms = (
                await active.execute(
                    text(
                        "SELECT s.chunk_count, s.total_length, t.lexeme, t.df"
                        " FROM (SELECT DISTINCT lexeme"
                        f" FROM unnest(to_tsvector('{TS_CONFIG}', :query))) q"
                        " JOIN rag_term_stats t"
                        " ON t.collection_id = :collection_id AND t.lexeme = q.lexeme"
                        " JOIN rag_collection_stats s ON s.collection_id = :collection_id"
                        " WHERE t.df > 0"
                    ),
                    params,
                )
            ).all()
            if not terms:
                return [], LexicalTrace(postings=0, exact=True)
            n, total = int(terms[0][0]), int(terms[0][1])
            dfs = {str(row[2]): int(row[3]) for row in terms}
            postings = sum(dfs.values())
            avgdl = max(total / n, 1.0) if n else 1.0
            lexemes = sorted(dfs)
            idfs = {lexeme: math.log(1 + (n - df + 0.5) / (df + 0.5)) for lexeme, df in dfs.items()}
            # The terms and statistics, bound once: both statements score in floats from them
            # and compute the exact (numeric) score only for chunks that can be among the best.
            params.update(
                {
                    "n": n,
                    "total": total,
                    "avgdl": avgdl,
                    "lexemes": lexemes,
                    "dfs": [dfs[lexeme] for lexeme in lexemes],
                    "idfs": [idfs[lexeme] for lexeme in lexemes],
                }
            )
            first = first_depth or max(FIRST_DEPTH, 2 * limit)
            depths = {lexeme: min(df, first) for lexeme, df in dfs.items()}
            if postings <= exact_below or round_cost * sum(depths.values()) >= postings:
                exact = await active.execute(text(_exact_sql(where)), params)
                return [ScoredChunk(*row) for row in exact], LexicalTrace(postings, exact=True)
            # Bounds are computed in floats, so they carry a margin far above float rounding.
            scales = {lexeme: idf * (BM25_K1 + 1) * (1 + _MARGIN) for lexeme, idf in idfs.items()}
            trace = LexicalTrace(postings, exact=False)
            sql = text(_round_sql(where))
            while True:
                trace.rounds += 1
                trace.read = sum(depths.values())
                rows = (
                    await active.execute(
                        sql,
                        {
                            **params,
                            "depths": [depths[lexeme] for lexeme in lexemes],
                            "scales": [scales[lexeme] for lexeme in lexemes],
                            "stretch": max(1.0, avgdl / IMPACT_REFERENCE_LENGTH) * (1 + _MARGIN),
                        },
                    )
                ).all()
                bounds = dict(zip(rows[0][-2], (float(b) for b in rows[0][-1]), strict=True))
                found = [ScoredChunk(*row[:-2]) for row in rows if row[0] is not None]
                unread = sum(bounds.values())  # what a chunk not read yet can score, at most
                kth = float(found[-1].score) if len(found) == limit else 0.0
                if unread == 0 or kth > unread * (1 + _MARGIN):
                    return found, trace
                # MaxScore: lists whose bounds together stay under the k-th score cannot bring a
                # chunk in alone; the others are read deeper.
                essential: list[str] = []
                below = 0.0
                for lexeme in sorted(lexemes, key=lambda item: bounds[item]):
                    if not essential and below + bounds[lexeme] < kth / (1 + _MARGIN):
                        below += bounds[lexeme]
                    elif bounds[lexeme] > 0:
                        essential.append(lexeme)
                if not essential:  # (rounding at the threshold) the largest bound's list
                    essential.append(max(lexemes, key=lambda item: bounds[item]))
                for lexeme in essential:
                    depths[lexeme] = min(dfs[lexeme], depths[lexeme] * DEEPEN)
                if round_cost * sum(depths.values()) >= postings:
                    trace.exact = True
                    exact = await active.execute(text(_exact_sql(where)), params)
                    return [ScoredChunk(*row) for row in exact], trace

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
        hits = None
        if not store.in_chunk_rows:
            with vector_search_span(store, limit):
                hits = await store.search(
                    collection.vector_scope, vector, limit=limit, filters=filters
                )
        async with self._db.session() as session, session.begin():
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            lexical = await self.search_lexical(
                collection, query, limit=limit, filters=filters, session=session
            )
            if hits is None:
                with vector_search_span(store, limit):
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
    async def _snapshot(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """``session`` when given (the caller's transaction), else a ``REPEATABLE READ``
        transaction of its own: one snapshot for several statements."""
        if session is not None:
            yield session
            return
        async with self._db.session() as own, own.begin():
            await own.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield own

    @contextlib.asynccontextmanager
    async def _session(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """``session`` when given (the caller's transaction), else a new one of its own."""
        if session is not None:
            yield session
            return
        async with self._db.session() as own:
            yield own


#: The query's terms and the collection's statistics, as bound by ``search_lexical_traced``.
_TERMS_CTES = """
        st AS MATERIALIZED (
            SELECT CAST(:n AS bigint) AS n,
                greatest(CAST(:total AS numeric) / nullif(CAST(:n AS bigint), 0), 1) AS avgdl
        )"""


def _best_sql(candidates: str) -> str:
    """The ``best`` CTE: of ``candidates`` (``chunk_id``, ``fscore``: complete scores in floats),
    those whose float score can reach the ``limit``-th best (a margin far above float error), then
    their exact ``numeric`` scores by point lookups of their postings: the ``limit`` best, ties by
    chunk id."""
    exact_score = term_score_sql("st.n", "q.df", "st.avgdl", "p.tf", "p.chunk_length")
    return f"""
        fkth AS (
            SELECT fscore FROM {candidates} ORDER BY fscore DESC LIMIT 1 OFFSET :limit - 1
        ),
        near AS MATERIALIZED (
            SELECT array_agg(chunk_id) AS ids FROM {candidates}
            WHERE fscore >= coalesce((SELECT fscore FROM fkth), 0) * (1 - {_MARGIN})
        ),
        -- By primary key, one index scan per term for all the ids (never a list read whole).
        best AS (
            SELECT p.chunk_id, sum({exact_score}) AS score
            FROM q CROSS JOIN st CROSS JOIN near n CROSS JOIN LATERAL (
                SELECT p.chunk_id, p.tf, p.chunk_length FROM rag_postings p
                WHERE p.collection_id = :collection_id AND p.lexeme = q.lexeme
                    AND p.chunk_id = ANY(n.ids)
                OFFSET 0
            ) p
            GROUP BY p.chunk_id
            ORDER BY score DESC, p.chunk_id LIMIT :limit
        )"""


def _exact_sql(where: str) -> str:
    """BM25 over every posting of the query's terms, with the collection's stored statistics
    (``stores/rag/lexical.py``): every chunk scored in floats (the chunk's length is in the
    posting, so no chunk row is read), filtered (with a filter) through its rows, and the exact
    ``numeric`` score computed for those that can be among the ``limit`` best (``_best_sql``)."""
    score = term_score_float_sql("q.idf", "p.tf", "p.chunk_length", "CAST(:avgdl AS float8)")
    matching = (
        f""",
        matching AS MATERIALIZED (
            SELECT s.chunk_id, s.fscore FROM scored s
            JOIN rag_chunks c ON c.id = s.chunk_id JOIN rag_documents d ON d.id = c.document_id
            WHERE TRUE{where}
        )"""
        if where
        else ""
    )
    return f"""
        WITH q AS MATERIALIZED (
            SELECT * FROM unnest(CAST(:lexemes AS text[]), CAST(:dfs AS bigint[]),
                CAST(:idfs AS float8[])) AS q(lexeme, df, idf)
        ),{_TERMS_CTES},
        -- Each term's postings through its index (index-only), summed per chunk in floats.
        scored AS MATERIALIZED (
            SELECT p.chunk_id, sum({score}) AS fscore
            FROM q CROSS JOIN LATERAL (
                SELECT p.chunk_id, p.tf, p.chunk_length FROM rag_postings p
                WHERE p.collection_id = :collection_id AND p.lexeme = q.lexeme
                OFFSET 0
            ) p
            GROUP BY p.chunk_id
        ){matching},{_best_sql("matching" if where else "scored")}
        SELECT {RESULT_COLUMNS}, s.score
        FROM best s JOIN rag_chunks c ON c.id = s.chunk_id
        JOIN rag_documents d ON d.id = c.document_id
        ORDER BY s.score DESC, c.id
        """


def _round_sql(where: str) -> str:
    """One round of early termination.

    ``head``: per term, its ``depth`` postings of highest impact (index-only, through
    ``ix_rag_postings_impact``), each with its contribution (in floats). ``ends``: per term, the
    bound of a posting not read (its scale times the last impact read, stretched for the real
    average length; 0 once the list is read whole). ``part``: per candidate, the contributions
    known, the terms it was read for and their bounds; a candidate whose known score plus the
    other terms' bounds stays under the ``limit``-th best known score cannot be among the best.
    The others are completed (``completed``) by point lookups of only the terms they were not read
    for, and the best of them get their exact score (``_best_sql``). Returns the best ``limit``
    complete rows, each with the terms and their bounds (one row with NULLs when there is none)."""
    head_score = term_score_float_sql("q.idf", "h.tf", "h.chunk_length", "CAST(:avgdl AS float8)")
    rest_score = term_score_float_sql("q.idf", "p.tf", "p.chunk_length", "CAST(:avgdl AS float8)")
    matching = (
        f" JOIN rag_chunks c ON c.id = pp.chunk_id JOIN rag_documents d ON d.id = c.document_id"
        f" WHERE TRUE{where}"
        if where
        else ""
    )
    return f"""
        WITH q AS MATERIALIZED (
            SELECT * FROM unnest(CAST(:lexemes AS text[]), CAST(:dfs AS bigint[]),
                CAST(:idfs AS float8[]), CAST(:depths AS integer[]), CAST(:scales AS float8[]))
                AS q(lexeme, df, idf, depth, scale)
        ),{_TERMS_CTES},
        head AS MATERIALIZED (
            SELECT q.lexeme, h.chunk_id, h.impact, {head_score} AS score
            FROM q CROSS JOIN LATERAL (
                SELECT p.chunk_id, p.impact, p.tf, p.chunk_length FROM rag_postings p
                WHERE p.collection_id = :collection_id AND p.lexeme = q.lexeme
                ORDER BY p.impact DESC LIMIT q.depth
            ) h
        ),
        ends AS MATERIALIZED (
            SELECT q.lexeme, CASE WHEN count(h.chunk_id) < q.depth OR q.depth >= q.df THEN 0
                ELSE q.scale * least(1, min(h.impact) * CAST(:stretch AS float8)) END AS bound
            FROM q LEFT JOIN head h ON h.lexeme = q.lexeme
            GROUP BY q.lexeme, q.depth, q.df, q.scale
        ),
        part AS MATERIALIZED (
            SELECT pp.chunk_id, pp.known, pp.known_bound, pp.seen FROM (
                SELECT h.chunk_id, sum(h.score) AS known, sum(e.bound) AS known_bound,
                    array_agg(h.lexeme) AS seen
                FROM head h JOIN ends e ON e.lexeme = h.lexeme GROUP BY h.chunk_id
            ) pp{matching}
        ),
        kth AS (SELECT known FROM part ORDER BY known DESC LIMIT 1 OFFSET :limit - 1),
        todo AS MATERIALIZED (
            SELECT chunk_id, known, seen FROM part
            WHERE known + (SELECT sum(bound) FROM ends) - known_bound
                >= coalesce((SELECT known FROM kth), 0) * (1 - {_MARGIN})
        ),
        -- Per term, the candidates not read in its list, looked up together by primary key.
        need AS MATERIALIZED (
            SELECT q.lexeme, q.idf, array_agg(t.chunk_id) AS ids
            FROM todo t JOIN q ON q.lexeme <> ALL(t.seen) GROUP BY q.lexeme, q.idf
        ),
        completed AS MATERIALIZED (
            SELECT x.chunk_id, sum(x.score) AS fscore FROM (
                SELECT chunk_id, known AS score FROM todo
                UNION ALL
                SELECT p.chunk_id, {rest_score}
                FROM need q CROSS JOIN LATERAL (
                    SELECT p.chunk_id, p.tf, p.chunk_length FROM rag_postings p
                    WHERE p.collection_id = :collection_id AND p.lexeme = q.lexeme
                        AND p.chunk_id = ANY(q.ids)
                    OFFSET 0
                ) p
            ) x
            GROUP BY x.chunk_id
        ),{_best_sql("completed")}
        SELECT {RESULT_COLUMNS}, s.score, e.lexemes, e.bounds
        FROM (
            SELECT array_agg(lexeme ORDER BY lexeme) AS lexemes,
                array_agg(bound ORDER BY lexeme) AS bounds
            FROM ends
        ) e
        LEFT JOIN (
            best s JOIN rag_chunks c ON c.id = s.chunk_id
            JOIN rag_documents d ON d.id = c.document_id
        ) ON TRUE
        ORDER BY s.score DESC, c.id
        """
