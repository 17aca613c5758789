"""The tables of jobs (Alembic revision 0007 owns them), for SQLAlchemy Core statements."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

__all__ = ["UNFINISHED", "job_payloads", "jobs"]

_metadata = MetaData()

#: What a client sees of a job; ``procrastinate_job_id`` is its row in Procrastinate's queue.
jobs = Table(
    "jobs",
    _metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("progress_done", Integer, nullable=False),
    Column("progress_total", Integer),
    Column("progress_unit", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("result", JSONB(none_as_null=True)),
    Column("error", JSONB(none_as_null=True)),
    Column("procrastinate_job_id", BigInteger),
)

#: What a queued or running job needs: the request (JSON) and an upload's bytes.
job_payloads = Table(
    "job_payloads",
    _metadata,
    Column("job_id", UUID(as_uuid=True), primary_key=True),
    Column("request", JSONB, nullable=False),
    Column("data", LargeBinary),
)

#: The jobs not ended yet (``queued``, ``running``): the predicate of the partial index
#: ``jobs_unfinished`` (Alembic revision 0010), written out rather than bound, so that the planner
#: uses the index in a prepared statement's generic plan too (psycopg prepares a statement run
#: often; with bound values PostgreSQL cannot prove the index's predicate and reads every job).
UNFINISHED = text("jobs.status IN ('queued', 'running')")
