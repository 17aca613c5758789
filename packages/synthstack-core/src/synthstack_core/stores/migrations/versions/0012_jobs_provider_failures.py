"""Jobs: the runs of each one that its provider failed (``jobs.provider_failures``).

``SYNTHSTACK_JOB_MAX_ATTEMPTS`` counts these alone: a run the database failed (an outage while the
job ran) is run again without using up one of the job's attempts, so a few short outages do not
fail a job that did nothing wrong. Procrastinate's own count of runs cannot tell the two apart.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("provider_failures", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("jobs", "provider_failures")
