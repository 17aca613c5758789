"""Jobs: long work run by workers on a PostgreSQL queue (Procrastinate), read, listed and cancelled
through ``/api/v1/jobs``. An operation answers with a job when the request says
``Prefer: respond-async`` (see :mod:`synthstack_core.features.jobs.service`)."""

from synthstack_core.features.jobs.service import (
    QUEUE,
    RUN_TASK,
    JobCancelled,
    JobRunner,
    JobService,
    Progress,
)
from synthstack_core.registry import Module, Stack

__all__ = [
    "MODULE",
    "QUEUE",
    "RUN_TASK",
    "JobCancelled",
    "JobRunner",
    "JobService",
    "Progress",
    "build",
]


def build(stack: Stack) -> JobService:
    """Over the stack's database; the features register their kinds of job when they are built."""
    return JobService(stack.database, stack.api_keys, stack.settings)


MODULE = Module("jobs", JobService, build)
