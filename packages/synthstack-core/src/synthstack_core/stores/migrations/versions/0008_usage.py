"""Usage per tenant and hour: requests by operation and status, and the feature quantities.

Two tables, both keyed by the tenant and the hour (the UTC hour a request or quantity was counted
in, truncated): ``usage_requests`` adds the operation and the HTTP status to the key and counts
requests; ``usage_quantities`` holds one row of counters per tenant and hour (texts embedded,
chat-model prompt and completion tokens, seconds of audio transcribed, bytes of documents
ingested). Rows are only ever added to (``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n``).

Revision ID: 0008
Revises: 0007
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _tenant_id() -> sa.Column[Any]:
    return sa.Column(
        "tenant_id",
        postgresql.UUID(as_uuid=True),
        sa.ForeignKey("tenants.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "usage_requests",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        _tenant_id(),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operation_id", sa.String(128), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "tenant_id", "hour", "operation_id", "status", name="uq_usage_requests_key"
        ),
    )
    op.create_table(
        "usage_quantities",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        _tenant_id(),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("texts_embedded", sa.BigInteger, server_default="0", nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, server_default="0", nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, server_default="0", nullable=False),
        sa.Column("audio_seconds", sa.Double(), server_default="0", nullable=False),
        sa.Column("bytes_ingested", sa.BigInteger, server_default="0", nullable=False),
        sa.UniqueConstraint("tenant_id", "hour", name="uq_usage_quantities_key"),
    )
    # The admin lists every tenant's rows, newest first.
    op.create_index("ix_usage_requests_hour", "usage_requests", ["hour"])
    op.create_index("ix_usage_quantities_hour", "usage_quantities", ["hour"])


def downgrade() -> None:
    op.drop_index("ix_usage_quantities_hour", table_name="usage_quantities")
    op.drop_index("ix_usage_requests_hour", table_name="usage_requests")
    op.drop_table("usage_quantities")
    op.drop_table("usage_requests")
