"""``SynthStack``: the whole service, built from :class:`Settings`, usable with or without HTTP.

::

    async with SynthStack(Settings()) as stack:
        result = await stack.embeddings.batch(["first text", "second text"])

Start-up resolves the database (embedded PostgreSQL when ``DATABASE_URL`` is unset), migrates it,
connects the cache, builds the providers and decides whether authentication is on. Nothing loads a
model or opens a connection before :meth:`start`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeVar

import anyio
from pydantic_settings import BaseSettings

from synthstack_core import tracing
from synthstack_core.features.analysis import AnalysisService
from synthstack_core.features.complexity import ComplexityService
from synthstack_core.features.embeddings import EmbeddingService
from synthstack_core.features.generation import GenerationService
from synthstack_core.features.health import HealthService
from synthstack_core.features.jobs import JobService
from synthstack_core.features.rag import RagService
from synthstack_core.features.transcription import TranscriptionService
from synthstack_core.features.usage import UsageService
from synthstack_core.http import HttpRequest, HttpResponse
from synthstack_core.modules import installed_modules
from synthstack_core.modules import migrate as migrate_modules
from synthstack_core.operations import operations_for
from synthstack_core.pipeline import Pipeline
from synthstack_core.providers.factory import check_configured_extras
from synthstack_core.providers.openai_client import OpenAIClient
from synthstack_core.ratelimits import DEFAULT_POLICY, NEVER_LIMITED, RateLimiter
from synthstack_core.registry import Module, Operation, bind
from synthstack_core.schemas.common import Limits
from synthstack_core.schemas.health import HealthResponse, ReadinessResponse
from synthstack_core.security import ApiKeyAuthenticator, ConfigurationError, key_from_headers
from synthstack_core.settings import Settings
from synthstack_core.stores.api_keys import ApiKeyRecord, ApiKeyRepository, CreatedApiKey
from synthstack_core.stores.cache import Cache, MemoryCache, RedisCache
from synthstack_core.stores.database import Database, with_timeouts
from synthstack_core.stores.embedded import EmbeddedPostgres
from synthstack_core.stores.rate_limits import RateLimitRepository
from synthstack_core.stores.vectors import PgVectorStore, VectorStore

__all__ = ["SynthStack"]

T = TypeVar("T")
C = TypeVar("C", bound=BaseSettings)


class SynthStack:
    """Every part of the service, wired from settings; start it before use.

    It serves the built-in modules and the installed plugins that ``settings.plugins`` selects
    (see :mod:`synthstack_core.plugins`), or exactly ``modules`` when given.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        backend: str = "library",
        modules: tuple[Module[Any], ...] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.backend = backend
        #: The modules this stack builds and serves, in order (a broken plugin raises here).
        self.modules: tuple[Module[Any], ...] = (
            installed_modules(self.settings) if modules is None else modules
        )
        self.limits = Limits(
            max_text_chars=self.settings.max_text_chars,
            max_batch_size=self.settings.max_batch_size,
        )
        self._embedded: EmbeddedPostgres | None = None
        self._database: Database | None = None
        self._cache: Cache | None = None
        self._api_keys: ApiKeyRepository | None = None
        self._auth: ApiKeyAuthenticator | None = None
        self._rate_limiter: RateLimiter | None = None
        self._vector_stores: list[VectorStore] = []
        self._openai_client: OpenAIClient | None = None
        #: The started services, by their module's service class.
        self._services: dict[type[Any], object] = {}
        #: The modules' own settings, by their class.
        self._module_settings: dict[type[Any], BaseSettings] = {}
        self._pipeline: Pipeline | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect everything; raises on a configuration that cannot work."""
        if self._database is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        settings = self.settings
        check_configured_extras(
            settings
        )  # a default whose extra is missing: before anything starts
        # Traces, when the OTEL_* variables ask for them (their extra missing: an error now); before
        # the database engine is made, so that its queries are traced. The start is a trace of its
        # own (the embedded server, the migrations, the tenants' rows).
        tracing.configure_tracing()
        with tracing.span("start", {"synthstack.backend": self.backend}):
            await self._start(settings)

    async def _start(self, settings: Settings) -> None:
        """:meth:`start` once the extras are checked."""
        self._check_rate_limits()
        # The modules' own settings: an invalid value fails before anything starts.
        self._module_settings = {
            module.settings: module.settings() for module in self.modules if module.settings
        }
        url = settings.database_url
        if url is None:
            self._embedded = EmbeddedPostgres(settings.data_dir)
            url = await anyio.to_thread.run_sync(self._embedded.start)
        url = with_timeouts(url, settings.database_connect_timeout)
        if settings.migrate_on_start:
            await anyio.to_thread.run_sync(migrate_modules, url, "heads", self.modules)
        self._database = Database(url, pool_size=settings.database_pool_size)
        self._cache = (
            RedisCache(settings.redis_url)
            if settings.redis_url
            else MemoryCache(settings.cache_max_entries)
        )
        self._api_keys = ApiKeyRepository(self._database)
        self._vector_stores = _vector_stores(settings, self._database)
        try:
            if settings.openai_configured:
                self._openai_client = OpenAIClient.from_settings(settings)
            # Before the modules: a module may ask who holds a key (``/ready``'s details).
            self._auth = ApiKeyAuthenticator(settings, self._api_keys)
            by_name: dict[str, object] = {}
            for module in self.modules:
                service = module.build(self)
                self._services[module.service] = by_name[module.name] = service
            self._rate_limiter = self._build_rate_limiter(self._database)
            usage = self._services.get(UsageService)
            self._pipeline = Pipeline(
                settings,
                self.limits,
                self._auth,
                bind(self.operations, by_name),
                rate_limiter=self._rate_limiter,
                usage=usage.recorder if isinstance(usage, UsageService) else None,
            )
            jobs = self._services.get(JobService)
            if isinstance(jobs, JobService) and isinstance(usage, UsageService):
                jobs.usage = usage.recorder  # a job's usage is its tenant's, like a request's
            for tenant in sorted(self._auth.settings_tenants):
                await self._api_keys.ensure_tenant(tenant)
            await self._auth.configure(settings)
            # Vector deletions a store failed before this start (nothing without Qdrant).
            await self.rag.repository.sweep_vector_deletions_soon()
            # Background work of the services (the embedded jobs worker), once all are built.
            for service in self._services.values():
                start = getattr(service, "astart", None)
                if start is not None:
                    await start()
        except BaseException:
            await self.aclose()
            raise

    def _check_rate_limits(self) -> None:
        """``SYNTHSTACK_RATE_LIMITS`` names only groups served here (and ``default``)."""
        rules = self.settings.parsed_rate_limits()
        groups = {op.tags[0] for op in self.operations if op.tags} - NEVER_LIMITED
        unknown = sorted(set(rules) - groups - {DEFAULT_POLICY})
        if unknown:
            raise ConfigurationError(
                f"SYNTHSTACK_RATE_LIMITS names {', '.join(map(repr, unknown))}, which is no group "
                f"of operations here; the groups are {', '.join(sorted(groups))} and `default`."
            )

    def _build_rate_limiter(self, database: Database) -> RateLimiter:
        """The limiter of ``SYNTHSTACK_RATE_LIMITS`` and the tenants' overrides."""
        return RateLimiter(
            self.settings.parsed_rate_limits(),
            redis_url=self.settings.redis_url,
            overrides=RateLimitRepository(database).for_tenant,
            key_of=key_from_headers,
            token_budget=self.settings.parsed_token_budget(),
            override_cache_seconds=self.settings.rate_limit_cache_seconds,
        )

    async def aclose(self) -> None:
        """Close connections and clients; stop the embedded PostgreSQL if this process owns it."""
        # Background work first (it may use any service), then the services themselves.
        for service in reversed(list(self._services.values())):
            stop = getattr(service, "astop", None)
            if stop is not None:
                await stop()
        for service in reversed(list(self._services.values())):
            close = getattr(service, "aclose", None)
            if close is not None:
                await close()
        self._services = {}
        self._pipeline = None
        if self._rate_limiter is not None:
            await self._rate_limiter.aclose()
            self._rate_limiter = None
        if self._openai_client is not None:
            await self._openai_client.aclose()
            self._openai_client = None
        if self._cache is not None:
            await self._cache.aclose()
        for store in self._vector_stores:
            await store.aclose()
        self._vector_stores = []
        if self._database is not None:
            await self._database.aclose()
        if self._embedded is not None:
            await anyio.to_thread.run_sync(self._embedded.stop)
        self._database = self._cache = None
        self._api_keys = self._auth = None
        self._embedded = None

    async def __aenter__(self) -> SynthStack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def operations(self) -> tuple[Operation, ...]:
        """The operations of :attr:`modules` (what :meth:`handle` serves)."""
        return operations_for(self.modules)

    # -- parts -----------------------------------------------------------------------------

    def _require(self, part: T | None) -> T:
        if part is None:
            raise RuntimeError("SynthStack is not started: call `await stack.start()` first")
        return part

    def service(self, kind: type[T]) -> T:
        """The started service of the module whose service class is ``kind``."""
        found = self._services.get(kind)
        if not isinstance(found, kind):
            raise RuntimeError(f"SynthStack has no started {kind.__name__}: start it first")
        return found

    def module_settings(self, kind: type[C]) -> C:
        """The settings of the module whose ``settings`` class is ``kind`` (read at start)."""
        found = self._module_settings.get(kind)
        if not isinstance(found, kind):
            raise RuntimeError(f"SynthStack has no {kind.__name__}: no module of it is started")
        return found

    @property
    def database(self) -> Database:
        """PostgreSQL."""
        return self._require(self._database)

    @property
    def cache(self) -> Cache:
        """Redis or the in-process cache."""
        return self._require(self._cache)

    @property
    def vector_stores(self) -> Sequence[VectorStore]:
        """pgvector, and Qdrant when configured."""
        return tuple(self._require(self._vector_stores or None))

    @property
    def openai_client(self) -> OpenAIClient | None:
        """The one client to OpenAI (or a compatible server) the OpenAI providers share; ``None``
        when OpenAI is not configured (or the stack is not started)."""
        return self._openai_client

    @property
    def embeddings(self) -> EmbeddingService:
        """The embeddings feature."""
        return self.service(EmbeddingService)

    @property
    def rag(self) -> RagService:
        """Collections, indexing and search."""
        return self.service(RagService)

    @property
    def jobs(self) -> JobService:
        """Jobs: submitted by the features, run by workers."""
        return self.service(JobService)

    @property
    def generation(self) -> GenerationService:
        """Text and chat generation with the deployment's chat models."""
        return self.service(GenerationService)

    @property
    def analysis(self) -> AnalysisService:
        """Text analysis (a remote chat model, or offline)."""
        return self.service(AnalysisService)

    @property
    def complexity(self) -> ComplexityService:
        """Task-complexity estimates, change analysis and the scale."""
        return self.service(ComplexityService)

    @property
    def transcription(self) -> TranscriptionService:
        """Speech to text: local Whisper, or OpenAI's models when a key is set."""
        return self.service(TranscriptionService)

    @property
    def usage(self) -> UsageService:
        """Usage per tenant and hour: the recorder and the report."""
        return self.service(UsageService)

    @property
    def api_keys(self) -> ApiKeyRepository:
        """API keys and tenants."""
        return self._require(self._api_keys)

    @property
    def rate_limiter(self) -> RateLimiter:
        """Counts requests against ``SYNTHSTACK_RATE_LIMITS`` and the tenants' overrides."""
        return self._require(self._rate_limiter)

    @property
    def rate_limits(self) -> RateLimitRepository:
        """The tenants' rate-limit overrides."""
        return RateLimitRepository(self.database)

    @property
    def auth(self) -> ApiKeyAuthenticator:
        """The authenticator both adapters go through."""
        return self._require(self._auth)

    # -- API keys --------------------------------------------------------------------------

    async def create_api_key(self, tenant: str, name: str = "") -> CreatedApiKey:
        """A new database key for ``tenant``; its secret is in the result, and nowhere else."""
        created = await self.api_keys.create(tenant, name)
        self.auth.key_created()
        return created

    async def revoke_api_key(self, key_id: uuid.UUID | str) -> ApiKeyRecord:
        """Revoke a key by id or prefix; this process refuses it at once, others within
        ``SYNTHSTACK_KEY_CACHE_SECONDS``."""
        record = await self.api_keys.revoke(key_id)
        self.auth.key_revoked()
        return record

    # -- features --------------------------------------------------------------------------

    def liveness(self) -> HealthResponse:
        """``GET /health``."""
        return self.service(HealthService).liveness()

    async def readiness(self) -> ReadinessResponse:
        """``GET /ready``."""
        return await self.service(HealthService).readiness()

    # -- HTTP ------------------------------------------------------------------------------

    def body_limit(self, operation: Operation) -> int:
        """The most bytes ``operation`` accepts as its request body."""
        limit: int = getattr(self.settings, operation.body_limit)
        return limit

    async def handle(self, operation: Operation, request: HttpRequest) -> HttpResponse:
        """Serve one request of ``operation`` (see :mod:`synthstack_core.pipeline`)."""
        return await self._require(self._pipeline).handle(operation, request)


def _vector_stores(settings: Settings, database: Database) -> list[VectorStore]:
    """pgvector, and Qdrant when new collections go there or it is configured (collections made
    while ``SYNTHSTACK_VECTOR_STORE=qdrant`` keep their vectors there)."""
    stores: list[VectorStore] = [PgVectorStore(database, ef_search=settings.hnsw_ef_search)]
    if settings.vector_store == "qdrant" or settings.qdrant_url or settings.qdrant_path:
        from synthstack_core.stores.qdrant import QdrantStore

        stores.append(
            QdrantStore(
                url=settings.qdrant_url,
                path=settings.qdrant_path or settings.data_dir / "qdrant",
                timeout_seconds=settings.provider_timeout_seconds,
            )
        )
    return stores
