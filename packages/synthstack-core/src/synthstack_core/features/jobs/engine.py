"""What SynthStack sets up around Procrastinate, the queue engine: its connection string, the
psycopg connection a job is deferred on (the caller's transaction), and its routine log lines."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from synthstack_core.logs import quiet_info
from synthstack_core.stores.database import Database

__all__ = ["HOUSEKEEPING_TASKS", "conninfo", "driver_connection", "quiet_procrastinate"]

#: The periodic tasks that keep the queue (every few seconds, in every worker).
HOUSEKEEPING_TASKS = frozenset(
    {"synthstack.recover_stalled_jobs", "synthstack.purge_finished_jobs"}
)


def _housekeeping(record: logging.LogRecord) -> bool:
    """Whether a Procrastinate worker's line is about a periodic housekeeping task's run."""
    job = getattr(record, "job", None)
    return isinstance(job, dict) and job.get("task_name") in HOUSEKEEPING_TASKS


def quiet_procrastinate() -> None:
    """Procrastinate's routine INFO lines to DEBUG: the tasks registered at every start, the
    periodic tasks deferred, and the housekeeping tasks' runs (three lines every few seconds
    otherwise). Its warnings and errors, and the lines of the jobs it runs, stay."""
    quiet_info("procrastinate.blueprints")
    quiet_info("procrastinate.periodic")
    # The worker logs on its module's logger and on a child named after the worker ("worker").
    quiet_info("procrastinate.worker", _housekeeping)
    quiet_info("procrastinate.worker.worker", _housekeeping)


def conninfo(database: Database) -> str:
    """The libpq URL of ``database`` (Procrastinate connects with psycopg directly)."""
    return database.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def driver_connection(connection: AsyncConnection) -> Any:
    """The psycopg connection under SQLAlchemy's ``connection`` (in its transaction)."""
    raw = await connection.get_raw_connection()
    return raw.driver_connection
