"""RAG: a document's title (given with it, or read from the file), indexed with its chunks.

A nullable column: existing documents have none, and nothing is rewritten.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rag_documents", sa.Column("title", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("rag_documents", "title")
