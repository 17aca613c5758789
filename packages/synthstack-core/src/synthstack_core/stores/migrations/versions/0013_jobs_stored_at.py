"""Jobs: when a run's write of the job's work committed (``jobs.stored_at``).

The write of a job's document claims the job's row in its own transaction (marking it stored, or
finding the job cancelled and rolling back); a cancel reads the mark under the same row lock and
answers 409 ``job_ended`` once the work is stored, instead of showing ``cancelled`` over a document
that was written.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "stored_at")
