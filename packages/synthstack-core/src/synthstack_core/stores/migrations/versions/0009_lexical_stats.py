"""RAG: stored BM25 statistics, and postings that carry what scoring them needs (issue 15).

- ``rag_collection_stats``: per collection, its chunk count and total length (lexemes, as
  ``rag_chunks.lexeme_count`` sums them).
- ``rag_term_stats``: per (collection, lexeme), the document frequency (chunks holding it; a row
  whose df falls to 0 is deleted).
- ``rag_postings.chunk_length``: the chunk's ``lexeme_count``, so scoring needs no join to
  ``rag_chunks``; ``rag_postings.impact``: tf / (tf + k1 (1 - b + b chunk_length / 64)), the
  term's BM25 saturation at a reference average length of 64 lexemes (BM25's contribution is idf
  (k1 + 1) times the same with the real average), and an index reading a term's postings by
  impact, highest first, for early termination (``stores/rag/search.py``). The constants must stay
  those of ``synthstack_core.stores.rag.search`` (``IMPACT_SQL``); a test checks they agree.

The core keeps the statistics in the same transaction as every write of chunks. Backfilled here
from the existing rows (every posting is rewritten once).

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_IMPACT = "tf::float8 / (tf + 1.2 * (1 - 0.75 + 0.75 * chunk_length::float8 / 64))"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE rag_collection_stats (
            collection_id uuid PRIMARY KEY REFERENCES rag_collections(id) ON DELETE CASCADE,
            chunk_count bigint NOT NULL DEFAULT 0 CHECK (chunk_count >= 0),
            total_length bigint NOT NULL DEFAULT 0 CHECK (total_length >= 0)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE rag_term_stats (
            collection_id uuid NOT NULL REFERENCES rag_collections(id) ON DELETE CASCADE,
            lexeme text NOT NULL,
            df bigint NOT NULL,
            CONSTRAINT pk_rag_term_stats PRIMARY KEY (collection_id, lexeme)
        )
        """
    )
    op.execute(
        "ALTER TABLE rag_postings ADD COLUMN chunk_length integer,"
        " ADD COLUMN impact double precision"
    )
    op.execute(
        "UPDATE rag_postings p SET chunk_length = c.lexeme_count FROM rag_chunks c"
        " WHERE c.id = p.chunk_id"
    )
    op.execute(f"UPDATE rag_postings SET impact = {_IMPACT}")  # noqa: S608 - a constant
    op.execute(
        "ALTER TABLE rag_postings ALTER COLUMN chunk_length SET NOT NULL,"
        " ALTER COLUMN impact SET NOT NULL"
    )
    op.execute(
        "CREATE INDEX ix_rag_postings_impact ON rag_postings"
        " (collection_id, lexeme, impact DESC) INCLUDE (chunk_id, tf, chunk_length)"
    )
    op.execute(
        "INSERT INTO rag_collection_stats (collection_id, chunk_count, total_length)"
        " SELECT k.id, count(c.id), coalesce(sum(c.lexeme_count), 0)"
        " FROM rag_collections k LEFT JOIN rag_chunks c ON c.collection_id = k.id GROUP BY k.id"
    )
    op.execute(
        "INSERT INTO rag_term_stats (collection_id, lexeme, df)"
        " SELECT collection_id, lexeme, count(*) FROM rag_postings GROUP BY collection_id, lexeme"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_rag_postings_impact")
    op.execute("ALTER TABLE rag_postings DROP COLUMN impact, DROP COLUMN chunk_length")
    op.execute("DROP TABLE rag_term_stats")
    op.execute("DROP TABLE rag_collection_stats")
