"""Rate limits: a tenant's overrides of ``SYNTHSTACK_RATE_LIMITS``, one row per policy.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_overrides",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "tenant_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("rate", sa.String(64), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.UniqueConstraint("tenant_id", "policy", name="uq_rate_limit_overrides_tenant_policy"),
    )
    op.create_index("ix_rate_limit_overrides_tenant_id", "rate_limit_overrides", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_rate_limit_overrides_tenant_id", table_name="rate_limit_overrides")
    op.drop_table("rate_limit_overrides")
