"""Jobs: Procrastinate's queue, and SynthStack's own job records and queued uploads.

Procrastinate's tables and functions are its pinned version's own ``schema.sql``, read from the
installed package (``procrastinate==3.10.*`` in the core's dependencies), so the schema is the one
of the code that runs it. Upgrading Procrastinate is a new revision that runs the ``migrations``
SQL files it ships, in order.

``jobs`` is what a client sees of a job (``GET /api/v1/jobs/{id}``): its tenant, kind, status,
progress, attempts, times, and the result or problem it ended with; ``procrastinate_job_id`` links
it to the queue's row. ``job_payloads`` holds what the job needs to run (an uploaded file's bytes,
the request): it is deleted when the job ends.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


def upgrade() -> None:
    # Several statements and PL/pgSQL bodies: sent as they are on psycopg's connection, in this
    # migration's transaction (no parameters, so no placeholder parsing and one simple query).
    psycopg_connection = op.get_bind().connection.driver_connection
    assert psycopg_connection is not None
    psycopg_connection.execute(SchemaManager.get_schema())
    op.create_table(
        "jobs",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "tenant_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("progress_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("progress_unit", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", postgresql.JSONB(), nullable=True),
        sa.Column("error", postgresql.JSONB(), nullable=True),
        sa.Column("procrastinate_job_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in JOB_STATUSES) + ")",
            name="jobs_status_known",
        ),
    )
    # The listing: a tenant's jobs, newest first (filtered by status or kind).
    op.create_index("jobs_tenant_created", "jobs", ["tenant_id", "created_at", "id"])
    # The retention purge: finished jobs by age.
    op.create_index(
        "jobs_finished",
        "jobs",
        ["finished_at"],
        postgresql_where=sa.text("finished_at IS NOT NULL"),
    )
    op.create_table(
        "job_payloads",
        sa.Column(
            "job_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("request", postgresql.JSONB(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("job_payloads")
    op.drop_table("jobs")
    for table in ("events", "periodic_defers", "jobs", "workers"):
        op.execute(f"DROP TABLE IF EXISTS procrastinate_{table} CASCADE")
    # Procrastinate's functions (their triggers went with the tables), then its types.
    op.execute(
        """
        DO $$
        DECLARE f regprocedure;
        BEGIN
            FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname LIKE 'procrastinate\\_%'
            LOOP
                EXECUTE 'DROP FUNCTION ' || f || ' CASCADE';
            END LOOP;
        END $$
        """
    )
    for kind in ("job_to_defer_v1", "job_event_type", "job_status"):
        op.execute(f"DROP TYPE IF EXISTS procrastinate_{kind} CASCADE")
