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


def _absent(value: object) -> bool:
    return value is None


class DependencyCheck(ResponseModel):
    """The outcome of really connecting to one dependency.

    Everything but ``status`` is a detail (:meth:`ReadinessResponse.summary` leaves it out): a
    field that is ``None`` is not rendered.
    """

    status: Literal["ok", "error"]
    required: bool | None = Field(default=None, exclude_if=_absent)
    latency_ms: float | None = Field(default=None, ge=0, exclude_if=_absent)
    kind: str | None = Field(default=None, exclude_if=_absent)
    detail: str | None = Field(default=None, exclude_if=_absent)


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

    def summary(self) -> ReadinessResponse:
        """The same report without the checks' details (versions, latencies, errors): the
        overall status and each check's status."""

        def bare(check: DependencyCheck | None) -> DependencyCheck | None:
            return None if check is None else DependencyCheck(status=check.status)

        checks = self.checks
        return ReadinessResponse(
            status=self.status,
            checks=ReadinessChecks(
                database=DependencyCheck(status=checks.database.status),
                cache=DependencyCheck(status=checks.cache.status),
                embedding_model=DependencyCheck(status=checks.embedding_model.status),
                vector_store=bare(checks.vector_store),
            ),
        )
