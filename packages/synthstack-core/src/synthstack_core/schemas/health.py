"""Models of ``GET /health`` and ``GET /ready``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from synthstack_core.schemas.common import ResponseModel

__all__ = ["DependencyCheck", "HealthResponse", "ReadinessChecks", "ReadinessResponse"]


class HealthResponse(ResponseModel):
    """Liveness: the process serves HTTP."""

    status: Literal["ok"]
    version: str
    backend: Literal["fastapi", "django"]


class DependencyCheck(ResponseModel):
    """The outcome of really connecting to one dependency."""

    status: Literal["ok", "error"]
    required: bool
    latency_ms: float = Field(ge=0)
    kind: str | None = None
    detail: str | None = None


class ReadinessChecks(ResponseModel):
    """One check per dependency."""

    database: DependencyCheck
    cache: DependencyCheck
    embedding_model: DependencyCheck
    vector_store: DependencyCheck | None = None


class ReadinessResponse(ResponseModel):
    """Readiness: ``ready`` when every required dependency answered."""

    status: Literal["ready", "not_ready"]
    checks: ReadinessChecks
