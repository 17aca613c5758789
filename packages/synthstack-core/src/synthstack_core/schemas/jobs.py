"""Jobs: long work (indexing, transcription) run by workers, and what a client sees of it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synthstack_core.schemas.common import ResponseModel

__all__ = [
    "TERMINAL_STATUSES",
    "Job",
    "JobKind",
    "JobList",
    "JobListParams",
    "JobParams",
    "JobProgress",
    "JobStatus",
    "JobUnit",
]

#: Where a job is: waiting for a worker, being run, or ended (the last three).
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
#: What a job does: the operation that was asked to answer asynchronously.
JobKind = Literal["rag-index", "rag-upload-document", "transcription-transcribe"]
#: What a job's progress counts: chunks embedded (indexing), seconds of audio (transcription).
JobUnit = Literal["chunks", "seconds"]


class JobProgress(ResponseModel):
    """How far a job is: ``done`` of ``total`` (``null`` until known) ``unit``s."""

    done: int = Field(ge=0)
    total: int | None = Field(ge=0)
    unit: JobUnit


class Job(ResponseModel):
    """A job: its state, and what it ended with."""

    id: uuid.UUID
    kind: JobKind
    status: JobStatus
    progress: JobProgress
    attempts: int = Field(ge=0)
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | str | None = Field(
        description="The body the synchronous call would have answered (status succeeded): its "
        "JSON, or the text of a call that answers text (a transcript as text, srt or vtt)."
    )
    error: dict[str, Any] | None = Field(
        description="The problem the synchronous call would have answered (status failed)."
    )


class JobParams(BaseModel):
    """Path parameters of ``/jobs/{job_id}``."""

    model_config = ConfigDict(extra="ignore")

    job_id: uuid.UUID


class JobListParams(BaseModel):
    """Query parameters of ``GET /jobs``."""

    model_config = ConfigDict(extra="ignore")

    status: JobStatus | None = None
    kind: JobKind | None = None
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, min_length=1, max_length=200)


class JobList(ResponseModel):
    """One page of the caller's jobs, newest first."""

    jobs: list[Job]
    next_cursor: str | None = Field(
        description="Where the next page starts; null on the last page."
    )
