"""RAG: each collection records which store holds its vectors; chunk rows may carry none.

``rag_collections.vector_store`` is ``pgvector`` (the vector is the chunk row's ``embedding``) or
``qdrant`` (the vectors are in Qdrant, and ``embedding`` is NULL: pgvector's HNSW indexes skip
NULLs). Existing collections are pgvector's. Neither change rewrites the table.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "rag_collections",
        sa.Column("vector_store", sa.String(16), nullable=False, server_default="pgvector"),
    )
    op.create_check_constraint(
        "ck_rag_collections_vector_store",
        "rag_collections",
        "vector_store IN ('pgvector', 'qdrant')",
    )
    op.alter_column("rag_chunks", "embedding", nullable=True)


def downgrade() -> None:
    op.execute(
        "DELETE FROM rag_collections WHERE vector_store <> 'pgvector'"
    )  # their vectors are elsewhere
    op.alter_column("rag_chunks", "embedding", nullable=False)
    op.drop_constraint("ck_rag_collections_vector_store", "rag_collections")
    op.drop_column("rag_collections", "vector_store")
