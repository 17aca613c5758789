"""Liveness and readiness.

Readiness really connects: ``SELECT 1`` on PostgreSQL, ``PING`` on Redis, the vector store new
collections use (pgvector's extension, or Qdrant listing its collections), and the default
embedding model is loaded and run once. The checks run concurrently, each timed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

from synthstack_core.features.embeddings import EmbeddingService
from synthstack_core.registry import Module, Stack, operation
from synthstack_core.replies import Reply
from synthstack_core.schemas.health import (
    DependencyCheck,
    HealthResponse,
    ReadinessChecks,
    ReadinessResponse,
)
from synthstack_core.stores.cache import Cache
from synthstack_core.stores.database import Database
from synthstack_core.stores.vectors import VectorStore
from synthstack_core.version import __version__

__all__ = ["MODULE", "HealthService", "check_embedding_model", "liveness", "readiness"]


def liveness(version: str, backend: str) -> HealthResponse:
    """The process is alive."""
    return HealthResponse(status="ok", version=version, backend=backend)


async def check_embedding_model(embeddings: EmbeddingService) -> DependencyCheck:
    """Load the default model (first call) and embed a probe text with it."""
    spec = embeddings.registry.default
    start = time.perf_counter()
    try:
        _, provider, _ = embeddings.registry.resolve(spec.id, None)
        kind = await provider.check(spec)
        if spec.provider == "local":
            await embeddings.embed(["readiness probe"], tenant=None, model=spec.id)
    except Exception as exc:
        return DependencyCheck(
            status="error",
            required=True,
            latency_ms=round((time.perf_counter() - start) * 1000, 3),
            kind=spec.id,
            detail=f"cannot run ({type(exc).__name__})",
        )
    return DependencyCheck(
        status="ok",
        required=True,
        latency_ms=round((time.perf_counter() - start) * 1000, 3),
        kind=kind,
    )


async def readiness(
    database: Database,
    cache: Cache,
    embeddings: EmbeddingService,
    vector_store: VectorStore | None = None,
) -> ReadinessResponse:
    """Every dependency checked concurrently; ready when each required one is ok."""
    results: dict[str, DependencyCheck] = {}

    async with anyio.create_task_group() as group:
        group.start_soon(_store, results, "database", database.check)
        group.start_soon(_store, results, "cache", cache.check)
        if vector_store is not None:
            group.start_soon(_store, results, "vector_store", vector_store.check)
        group.start_soon(
            _store, results, "embedding_model", lambda: check_embedding_model(embeddings)
        )
    checks = ReadinessChecks(**results)
    ready = all(c.status == "ok" for c in results.values() if c.required)
    return ReadinessResponse(status="ready" if ready else "not_ready", checks=checks)


class HealthService:
    """``/health`` and ``/ready``."""

    def __init__(
        self,
        backend: str,
        database: Database,
        cache: Cache,
        embeddings: EmbeddingService,
        vector_store: VectorStore | None,
    ) -> None:
        self.backend = backend
        self.database = database
        self.cache = cache
        self.embeddings = embeddings
        self.vector_store = vector_store

    @operation("health-liveness")
    def liveness(self) -> HealthResponse:
        """``GET /health``."""
        return liveness(__version__, self.backend)

    async def readiness(self) -> ReadinessResponse:
        """Every dependency checked."""
        return await readiness(self.database, self.cache, self.embeddings, self.vector_store)

    @operation("health-readiness", response=ReadinessResponse)
    async def readiness_reply(self) -> Reply:
        """``GET /ready``: 200 when ready, else 503."""
        report = await self.readiness()
        return Reply(report, status=200 if report.status == "ready" else 503)


def build(stack: Stack) -> HealthService:
    """Checks of the parts the stack started, and of the store new collections use."""
    store = next(s for s in stack.vector_stores if s.name == stack.settings.vector_store)
    return HealthService(
        stack.backend, stack.database, stack.cache, stack.service(EmbeddingService), store
    )


MODULE = Module("health", HealthService, build)


async def _store(
    results: dict[str, DependencyCheck],
    name: str,
    check: Callable[[], Awaitable[DependencyCheck]],
) -> None:
    results[name] = await check()
