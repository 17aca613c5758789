"""Liveness and readiness.

Readiness really connects: ``SELECT 1`` on PostgreSQL, ``PING`` on Redis, the vector store new
collections use (pgvector's extension, or Qdrant listing its collections), and the default
embedding model is loaded and run once. Each store's ``ping()`` is only its probe (it raises when
the store cannot serve); :func:`dependency_check` times it and turns its outcome into the
response's entry, for every dependency alike. The checks run concurrently.

Who sees the details (each check's latency, whether it is required, the implementation and version
that answered, what failed): a caller sending a valid API key, and, in development, a loopback
caller (the rule of ``/metrics``: :func:`~synthstack_core.features.observability.loopback_address`
of the peer address, no forwarding header trusted). Anyone else gets
:meth:`~synthstack_core.schemas.health.ReadinessResponse.summary`: the statuses only.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

from synthstack_core.features.embeddings import EmbeddingService
from synthstack_core.features.observability import Caller, loopback_address
from synthstack_core.registry import Module, Stack, operation
from synthstack_core.replies import Reply
from synthstack_core.schemas.health import (
    DependencyCheck,
    HealthResponse,
    ReadinessChecks,
    ReadinessResponse,
)
from synthstack_core.security import ApiKeyAuthenticator
from synthstack_core.stores.cache import Cache
from synthstack_core.stores.database import Database
from synthstack_core.stores.vectors import VectorStore
from synthstack_core.version import __version__

__all__ = [
    "CACHE_DOWN_NOTE",
    "MODULE",
    "READINESS_TIMEOUT_SECONDS",
    "HealthService",
    "check_embedding_model",
    "dependency_check",
    "liveness",
    "readiness",
]

#: How long a store has to answer readiness before it counts as unreachable.
READINESS_TIMEOUT_SECONDS = 2.0
#: What an unreachable Redis means for the service (the ``cache`` entry's detail ends with it).
CACHE_DOWN_NOTE = "; serving uncached, rate limits counted in each process"


def liveness(version: str, backend: str) -> HealthResponse:
    """The process is alive."""
    return HealthResponse(status="ok", version=version, backend=backend)


async def dependency_check(
    probe: Callable[[], Awaitable[str]],
    *,
    kind: str,
    required: bool,
    failure: str = "unreachable",
    note: str = "",
    time_limit: float | None = READINESS_TIMEOUT_SECONDS,
) -> DependencyCheck:
    """Run ``probe`` (a store's ``ping``) and time it.

    Its answer, a description of what answered, is the entry's ``kind``. An exception, or no
    answer within ``time_limit`` seconds (``None``: no limit), is an ``error`` entry of ``kind``
    whose detail is ``failure``, the exception's class (never its text) and ``note``.
    """
    start = time.perf_counter()
    try:
        with anyio.fail_after(time_limit):
            described = await probe()
    except Exception as exc:
        return DependencyCheck(
            status="error",
            required=required,
            latency_ms=_elapsed_ms(start),
            kind=kind,
            detail=f"{failure} ({type(exc).__name__}){note}",
        )
    return DependencyCheck(
        status="ok", required=required, latency_ms=_elapsed_ms(start), kind=described
    )


async def check_embedding_model(embeddings: EmbeddingService) -> DependencyCheck:
    """Load the default model (first call) and embed a probe text with it."""
    spec = embeddings.registry.default

    async def run() -> str:
        _, provider = embeddings.registry.lookup(spec.id)
        described = await provider.check(spec)
        if spec.provider == "local":
            await embeddings.embed(["readiness probe"], tenant=None, model=spec.id)
        return described

    # No time limit: the first check loads the model.
    return await dependency_check(
        run, kind=spec.id, required=True, failure="cannot run", time_limit=None
    )


async def readiness(
    database: Database,
    cache: Cache,
    embeddings: EmbeddingService,
    vector_store: VectorStore | None = None,
) -> ReadinessResponse:
    """Every dependency checked concurrently; ready when each required one is ok."""
    checks: dict[str, Callable[[], Awaitable[DependencyCheck]]] = {
        "database": lambda: dependency_check(database.ping, kind=database.kind, required=True),
        # Without its cache the service still serves (uncached): not required. The rate limiter
        # counts in the same Redis; without it, each process counts on its own (ratelimits.py).
        "cache": lambda: dependency_check(
            cache.ping, kind=cache.kind, required=False, note=CACHE_DOWN_NOTE
        ),
        "embedding_model": lambda: check_embedding_model(embeddings),
    }
    if vector_store is not None:
        store = vector_store
        # pgvector is an extension of a database that may well answer: "unavailable".
        failure = "unavailable" if store.name == "pgvector" else "unreachable"
        checks["vector_store"] = lambda: dependency_check(
            store.ping, kind=store.kind, required=True, failure=failure
        )
    results: dict[str, DependencyCheck] = {}

    async def run(name: str, check: Callable[[], Awaitable[DependencyCheck]]) -> None:
        results[name] = await check()

    async with anyio.create_task_group() as group:
        for name, check in checks.items():
            group.start_soon(run, name, check)
    ready = all(c.status == "ok" for c in results.values() if c.required)
    return ReadinessResponse(
        status="ready" if ready else "not_ready", checks=ReadinessChecks(**results)
    )


class HealthService:
    """``/health`` and ``/ready``."""

    def __init__(
        self,
        backend: str,
        database: Database,
        cache: Cache,
        embeddings: EmbeddingService,
        vector_store: VectorStore | None,
        *,
        auth: ApiKeyAuthenticator,
        development: bool,
    ) -> None:
        self.backend = backend
        self.auth = auth
        self.development = development
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

    async def may_see_details(self, request: Caller) -> bool:
        """Whether the caller of ``request`` gets the checks' details (see the module's doc).

        A key that cannot be looked up in time (the database is down: readiness says so) counts as
        no key; the lookup never fails the request."""
        if self.development and loopback_address(request.client):
            return True
        try:
            with anyio.fail_after(READINESS_TIMEOUT_SECONDS):
                return await self.auth.identifies(request.headers)
        except Exception:
            return False

    @operation("health-readiness", response=ReadinessResponse)
    async def readiness_reply(self, request: Caller) -> Reply:
        """``GET /ready``: 200 when ready, else 503; the details only to whom may see them."""
        details = False
        report: ReadinessResponse | None = None

        async def decide() -> None:
            nonlocal details
            details = await self.may_see_details(request)

        async def check() -> None:
            nonlocal report
            report = await self.readiness()

        async with anyio.create_task_group() as group:
            group.start_soon(decide)
            group.start_soon(check)
        assert report is not None
        status = 200 if report.status == "ready" else 503
        return Reply(report if details else report.summary(), status=status)


def build(stack: Stack) -> HealthService:
    """Checks of the parts the stack started, and of the store new collections use."""
    store = next(s for s in stack.vector_stores if s.name == stack.settings.vector_store)
    return HealthService(
        stack.backend,
        stack.database,
        stack.cache,
        stack.service(EmbeddingService),
        store,
        auth=stack.auth,
        development=stack.settings.development,
    )


MODULE = Module("health", HealthService, build)


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
