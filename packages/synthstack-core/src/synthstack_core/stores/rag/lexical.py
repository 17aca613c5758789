"""BM25's pieces shared by the writes and the searches: the stored statistics and their upkeep.

``rag_collection_stats`` (chunk count, total length) and ``rag_term_stats`` (document frequency per
lexeme) are changed by the transaction that writes or deletes chunks, by deltas, at its end: first
the collection's row, then the lexemes' rows in lexeme order. Every writer locks the collection's
row before any lexeme's, so two writers cannot deadlock, and the lock is held only from there to
the commit. A collection's deletion removes its rows (``ON DELETE CASCADE``).
"""

# SQL here interpolates only module constants; every value travels as a bound parameter.

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "BM25_B",
    "BM25_K1",
    "IMPACT_REFERENCE_LENGTH",
    "apply_stats",
    "impact_sql",
    "term_score_float_sql",
    "term_score_sql",
]

BM25_K1 = 1.2
BM25_B = 0.75
#: The average chunk length (lexemes) a posting's stored ``impact`` assumes; SciFact's chunks
#: average 66.5 (see docs/benchmarks.md). Any value is correct (search bounds the difference).
IMPACT_REFERENCE_LENGTH = 64


def impact_sql(tf: str, length: str) -> str:
    """A posting's impact: tf / (tf + k1 (1 - b + b length / 64)), in double precision (as
    Alembic ``0009`` backfilled it)."""
    return (
        f"{tf}::float8 / ({tf} + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * {length}::float8"
        f" / {IMPACT_REFERENCE_LENGTH}))"
    )


def term_score_sql(n: str, df: str, avgdl: str, tf: str, length: str) -> str:
    """One term's BM25 contribution, in ``numeric`` (exact sums: a chunk's score does not depend on
    the order its terms are added in, so every search path ranks ties alike)."""
    return (
        f"ln(1 + ({n} - {df} + 0.5) / ({df} + 0.5)) * {tf} * {BM25_K1 + 1}"
        f" / ({tf} + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * {length} / {avgdl}))"
    )


def term_score_float_sql(idf: str, tf: str, length: str, avgdl: str) -> str:
    """:func:`term_score_sql` in ``double precision``, from the term's idf (``ln(1 + (n - df +
    0.5) / (df + 0.5))``, computed once per term): a few times cheaper per posting, within ~1e-15
    of the exact value; early termination ranks candidates with it (with a margin far above its
    error) and computes the ``numeric`` score only for the few that can be among the best."""
    return (
        f"{idf} * {tf} * {BM25_K1 + 1} / ({tf} + {BM25_K1} * (1 - {BM25_B} + {BM25_B}"
        f" * {length}::float8 / {avgdl}))"
    )


async def apply_stats(
    session: AsyncSession,
    collection_id: object,
    *,
    chunks: int,
    length: int,
    document_frequencies: Mapping[str, int],
) -> None:
    """Add these deltas to the collection's statistics, in ``session``'s transaction (call it last
    before the commit: it holds the collection's row until then)."""
    deltas = {lexeme: delta for lexeme, delta in document_frequencies.items() if delta}
    if not chunks and not length and not deltas:
        return
    change = {"collection_id": collection_id, "chunks": chunks, "length": length}
    update = text(
        "UPDATE rag_collection_stats SET chunk_count = chunk_count + :chunks,"
        " total_length = total_length + :length WHERE collection_id = :collection_id"
    )
    # (An upsert would check its proposed row, a negative delta, against the CHECKs.)
    if getattr(await session.execute(update, change), "rowcount", 0) == 0:
        # A collection without its row (none is: made with the collection, or by Alembic 0009).
        await session.execute(
            text(
                "INSERT INTO rag_collection_stats (collection_id) VALUES (:collection_id)"
                " ON CONFLICT (collection_id) DO NOTHING"
            ),
            change,
        )
        await session.execute(update, change)
    if not deltas:
        return
    lexemes = list(deltas)
    await session.execute(
        text(
            "INSERT INTO rag_term_stats (collection_id, lexeme, df)"
            " SELECT :collection_id, t.lexeme, t.delta"
            " FROM unnest(CAST(:lexemes AS text[]), CAST(:deltas AS bigint[])) AS t(lexeme, delta)"
            " ORDER BY t.lexeme"
            " ON CONFLICT (collection_id, lexeme) DO UPDATE SET"
            " df = rag_term_stats.df + EXCLUDED.df"
        ),
        {
            "collection_id": collection_id,
            "lexemes": lexemes,
            "deltas": [deltas[lexeme] for lexeme in lexemes],
        },
    )
    gone = [lexeme for lexeme in lexemes if deltas[lexeme] < 0]
    if gone:
        await session.execute(
            text(
                "DELETE FROM rag_term_stats WHERE collection_id = :collection_id"
                " AND lexeme = ANY(CAST(:lexemes AS text[])) AND df = 0"
            ),
            {"collection_id": collection_id, "lexemes": gone},
        )
