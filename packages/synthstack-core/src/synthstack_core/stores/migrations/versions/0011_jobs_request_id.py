"""Jobs: the id of the request that submitted each one (``jobs.request_id``).

A job's failure is a problem object whose ``request_id`` names the request that submitted it, so an
operator finds that request's access-log line (and its trace); the payload that held it is deleted
when the job ends, and a job failed by the stalled-job check may have none left, so the job's own
row keeps it. Rows written before this revision get an empty id.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("request_id", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("jobs", "request_id")
