"""The tables of jobs (Alembic revision 0007 owns them), for SQLAlchemy Core statements."""

from __future__ import annotations

from typing import Any

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
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql import Select

from synthstack_core.schemas.jobs import Job, JobProgress
from synthstack_core.stores.models import Tenant

__all__ = ["JOB_COLUMNS", "UNFINISHED", "job_from_row", "job_payloads", "jobs", "owned_by"]

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
    # The request that submitted the job (Alembic 0011): its problems carry it.
    Column("request_id", Text, nullable=False, server_default=""),
    # The runs the provider failed (429, 5xx; Alembic 0012): the attempts the job used up.
    Column("provider_failures", Integer, nullable=False, server_default="0"),
    # When a run's write of the job's work (a document) committed (Alembic 0013): a cancel
    # arriving after it is refused.
    Column("stored_at", DateTime(timezone=True)),
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


#: What a job's answer shows.
JOB_COLUMNS = (
    jobs.c.id,
    jobs.c.kind,
    jobs.c.status,
    jobs.c.progress_done,
    jobs.c.progress_total,
    jobs.c.progress_unit,
    jobs.c.attempts,
    jobs.c.created_at,
    jobs.c.started_at,
    jobs.c.finished_at,
    jobs.c.result,
    jobs.c.error,
)
TENANTS = Tenant.__table__


def job_from_row(row: RowMapping) -> Job:
    """The job a row of :data:`JOB_COLUMNS` describes."""
    return Job(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        progress=JobProgress(
            done=row["progress_done"], total=row["progress_total"], unit=row["progress_unit"]
        ),
        attempts=row["attempts"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        result=row["result"],
        error=row["error"],
    )


def owned_by(query: Select[Any], tenant: str) -> Select[Any]:
    """``query`` of jobs, narrowed to ``tenant``'s."""
    return query.join(TENANTS, TENANTS.c.id == jobs.c.tenant_id).where(TENANTS.c.name == tenant)
