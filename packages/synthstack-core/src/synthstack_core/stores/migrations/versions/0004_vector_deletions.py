"""RAG: an outbox of vector deletions an external store (Qdrant) still owes.

A row is written in the transaction that deletes the chunk rows (or, for the points of a new
version, committed before they are written), and deleted once the store confirms the deletion; a
store that fails leaves the row for a later sweep (``RagRepository.sweep_vector_deletions``).

A row addresses points the way a store does, by scope — ``tenant_id``, ``collection_id``,
``dimensions`` (Qdrant keeps one collection per vector size) — and by ``kind``: ``points`` (the
chunk ids in ``chunk_ids``), ``document`` (every point of ``document_id``) or ``collection`` (every
point of the scope). There are no foreign keys: the rows these ids named are gone, and the ids
(random UUIDs, never reused) keep addressing only those points however late the row is replayed.

``not_before`` holds a row back from sweeps: the points of a document being written are recorded
a few minutes ahead, and the writing transaction deletes the row (locking it) before it writes them.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    uuid = postgresql.UUID(as_uuid=True)
    now = sa.func.now()
    op.create_table(
        "rag_vector_deletions",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("store", sa.String(16), nullable=False),
        sa.Column("tenant_id", uuid, nullable=False),
        sa.Column("collection_id", uuid, nullable=False),
        sa.Column("dimensions", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("document_id", uuid, nullable=True),
        sa.Column("chunk_ids", postgresql.ARRAY(uuid), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(64), nullable=True),
        # Only a store outside the chunk rows owes deletions (pgvector's go with the rows).
        sa.CheckConstraint("store IN ('qdrant')", name="ck_rag_vector_deletions_store"),
        sa.CheckConstraint(
            "kind IN ('points', 'document', 'collection')", name="ck_rag_vector_deletions_kind"
        ),
        sa.CheckConstraint(
            "(kind = 'points') = (chunk_ids IS NOT NULL)"
            " AND (kind = 'document') = (document_id IS NOT NULL)",
            name="ck_rag_vector_deletions_target",
        ),
    )


def downgrade() -> None:
    op.drop_table("rag_vector_deletions")
