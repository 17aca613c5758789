"""Jobs: an index of the unfinished ones (``queued``, ``running``), a partial index on ``status``.

Two queries read them and nothing else, and would otherwise read every job kept for the retention
(7 days by default): each ``/metrics`` scrape counts them by status (the ``synthstack_jobs`` gauge),
and the stalled-job check of every worker looks for those Procrastinate no longer holds. The index
holds the unfinished jobs only, a few rows however many finished ones are kept.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "jobs_unfinished",
        "jobs",
        ["status"],
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )


def downgrade() -> None:
    op.drop_index("jobs_unfinished", table_name="jobs")
