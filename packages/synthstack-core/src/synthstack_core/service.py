"""``SynthStack``: the whole service, built from :class:`Settings`, usable with or without HTTP.

::

    async with SynthStack(Settings()) as stack:
        result = await stack.embeddings.batch(["first text", "second text"])

Start-up resolves the database (embedded PostgreSQL when ``DATABASE_URL`` is unset), migrates it,
connects the cache, builds the providers and decides whether authentication is on. Nothing loads a
model or opens a connection before :meth:`start`.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TypeVar

import anyio
from sqlalchemy.exc import DataError, SQLAlchemyError

from synthstack_core import __version__
from synthstack_core.errors import DependencyUnavailable, InvalidRequest
from synthstack_core.features.analysis import AnalysisService
from synthstack_core.features.complexity import DEFAULT_SCALE, ComplexityService
from synthstack_core.features.embeddings import EmbeddingModelRegistry, EmbeddingService
from synthstack_core.features.generation import GenerationService
from synthstack_core.features.health import liveness, readiness
from synthstack_core.features.language import LanguageService
from synthstack_core.features.rag import RagService
from synthstack_core.features.transcription import TranscriptionService
from synthstack_core.http import (
    HttpRequest,
    HttpResponse,
    check_json_body,
    error_response,
    event_stream_response,
    json_response,
    raw_response,
    request_id_of,
)
from synthstack_core.multipart import FormData, parse_form, receive_form
from synthstack_core.operations import EventStream, Operation, RawReply, Reply
from synthstack_core.providers.factory import (
    build_embedding_providers,
    build_llm_registry,
    check_configured_extras,
)
from synthstack_core.providers.llm import LLMRegistry
from synthstack_core.schemas.common import Limits
from synthstack_core.schemas.health import HealthResponse, ReadinessResponse
from synthstack_core.security import ApiKeyAuthenticator
from synthstack_core.settings import Settings
from synthstack_core.stores.api_keys import ApiKeyRecord, ApiKeyRepository, CreatedApiKey
from synthstack_core.stores.cache import Cache, MemoryCache, RedisCache
from synthstack_core.stores.database import Database, migrate
from synthstack_core.stores.embedded import EmbeddedPostgres
from synthstack_core.stores.rag import RagRepository
from synthstack_core.stores.vectors import PgVectorStore, VectorStore
from synthstack_core.validation import parse_json_body, parse_params

__all__ = ["SynthStack"]

T = TypeVar("T")

logger = logging.getLogger("synthstack")
access_logger = logging.getLogger("synthstack.access")


class SynthStack:
    """Every part of the service, wired from settings; start it before use."""

    def __init__(self, settings: Settings | None = None, *, backend: str = "library") -> None:
        self.settings = settings or Settings()
        self.backend = backend
        self.limits = Limits(
            max_text_chars=self.settings.max_text_chars,
            max_batch_size=self.settings.max_batch_size,
        )
        self._embedded: EmbeddedPostgres | None = None
        self._database: Database | None = None
        self._cache: Cache | None = None
        self._embeddings: EmbeddingService | None = None
        self._api_keys: ApiKeyRepository | None = None
        self._auth: ApiKeyAuthenticator | None = None
        self._rag: RagService | None = None
        self._llm: LLMRegistry | None = None
        self._generation: GenerationService | None = None
        self._complexity: ComplexityService | None = None
        self._transcription: TranscriptionService | None = None
        self._language: LanguageService | None = None
        self._vector_stores: list[VectorStore] = []

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
        url = settings.database_url
        if url is None:
            self._embedded = EmbeddedPostgres(settings.data_dir)
            url = await anyio.to_thread.run_sync(self._embedded.start)
        if settings.migrate_on_start:
            await anyio.to_thread.run_sync(migrate, url)
        self._database = Database(url)
        self._cache = (
            RedisCache(settings.redis_url)
            if settings.redis_url
            else MemoryCache(settings.cache_max_entries)
        )
        registry = EmbeddingModelRegistry(
            build_embedding_providers(settings), settings.embedding_model
        )
        self._embeddings = EmbeddingService(
            registry, self._cache, limits=self.limits, ttl_seconds=settings.cache_ttl_seconds
        )
        self._api_keys = ApiKeyRepository(self._database)
        self._llm = build_llm_registry(settings)
        self._generation = GenerationService(
            self._llm, max_output_tokens=settings.max_generation_tokens
        )
        self._vector_stores = _vector_stores(settings, self._database)
        repository = RagRepository(
            self._database, self._vector_stores, default_store=settings.vector_store
        )
        self._rag = RagService(repository, self._embeddings, self._api_keys, self._generation)
        self._complexity = ComplexityService(self._embeddings, DEFAULT_SCALE)
        self._language = LanguageService(
            AnalysisService(self._embeddings, self.limits),
            self._complexity,
            self._generation,
            DEFAULT_SCALE,
            use_llm=settings.analysis_llm == "auto",
        )
        self._transcription = TranscriptionService.from_settings(settings)
        self._auth = ApiKeyAuthenticator(settings, self._api_keys)
        try:
            for tenant in sorted(self._auth.settings_tenants):
                await self._api_keys.ensure_tenant(tenant)
            await self._auth.configure(settings)
            # Vector deletions a store failed before this start (nothing without Qdrant).
            await repository.sweep_vector_deletions_soon()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close connections and clients; stop the embedded PostgreSQL if this process owns it."""
        if self._embeddings is not None:
            for provider in self._embeddings.registry.providers:
                await provider.aclose()
        if self._llm is not None:
            await self._llm.aclose()
        if self._transcription is not None:
            await self._transcription.aclose()
        if self._cache is not None:
            await self._cache.aclose()
        for store in self._vector_stores:
            await store.aclose()
        self._vector_stores = []
        if self._database is not None:
            await self._database.aclose()
        if self._embedded is not None:
            await anyio.to_thread.run_sync(self._embedded.stop)
        self._database = self._cache = self._embeddings = None
        self._api_keys = self._auth = None
        self._rag = None
        self._llm = self._generation = None
        self._complexity = None
        self._language = None
        self._transcription = None
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

    # -- parts -----------------------------------------------------------------------------

    def _require(self, part: T | None) -> T:
        if part is None:
            raise RuntimeError("SynthStack is not started: call `await stack.start()` first")
        return part

    @property
    def database(self) -> Database:
        """PostgreSQL."""
        return self._require(self._database)

    @property
    def cache(self) -> Cache:
        """Redis or the in-process cache."""
        return self._require(self._cache)

    @property
    def embeddings(self) -> EmbeddingService:
        """The embeddings feature."""
        return self._require(self._embeddings)

    @property
    def rag(self) -> RagService:
        """Collections, indexing and search."""
        return self._require(self._rag)

    @property
    def generation(self) -> GenerationService:
        """Text and chat generation with the deployment's chat models."""
        return self._require(self._generation)

    @property
    def language(self) -> LanguageService:
        """Text analysis and complexity estimates (a remote chat model, or offline)."""
        return self._require(self._language)

    @property
    def complexity(self) -> ComplexityService:
        """Task-complexity estimates, change analysis and the scale."""
        return self._require(self._complexity)

    @property
    def transcription(self) -> TranscriptionService:
        """Speech to text: local Whisper, or OpenAI's models when a key is set."""
        return self._require(self._transcription)

    @property
    def api_keys(self) -> ApiKeyRepository:
        """API keys and tenants."""
        return self._require(self._api_keys)

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
        return liveness(__version__, self.backend)

    async def readiness(self) -> ReadinessResponse:
        """``GET /ready``."""
        store = next(s for s in self._vector_stores if s.name == self.settings.vector_store)
        return await readiness(self.database, self.cache, self.embeddings, store)

    # -- HTTP ------------------------------------------------------------------------------

    def body_limit(self, operation: Operation) -> int:
        """The most bytes ``operation`` accepts as its request body."""
        limit: int = getattr(self.settings, operation.body_limit)
        return limit

    async def handle(self, operation: Operation, request: HttpRequest) -> HttpResponse:
        """Serve one request of ``operation`` (see :mod:`synthstack_core.http`)."""
        started = time.perf_counter()
        request_id = request_id_of(request.headers)
        form: FormData | None = None
        try:
            principal = (
                await self.auth.authenticate(request.headers) if operation.authenticated else None
            )
            params = None
            if operation.params_model is not None:
                params = parse_params(operation.params_model, request.path_params, request.query)
            body = None
            if operation.request_model is not None and operation.form:
                form = await receive_form(
                    request.headers,
                    request.stream if request.stream is not None else _chunks(request.body),
                    limit=self.body_limit(operation),
                    tmp_dir=self.settings.upload_dir,
                )
                body = parse_form(operation.request_model, form, self.limits)
            elif operation.request_model is not None:
                check_json_body(request, self.body_limit(operation))
                body = parse_json_body(operation.request_model, request.body, self.limits)
            result = await operation.handler(self, principal, body, params)  # type: ignore[arg-type]
            if isinstance(result, EventStream):
                response = await event_stream_response(
                    result.events, request_id=request_id, path=request.path, translate=_translate
                )
            elif isinstance(result, RawReply):
                response = raw_response(
                    result.body,
                    media_type=result.media_type,
                    status=result.status,
                    request_id=request_id,
                )
            else:
                reply = result if isinstance(result, Reply) else Reply(result, operation.status)
                response = json_response(reply.body, status=reply.status, request_id=request_id)
        except Exception as exc:
            response = error_response(_translate(exc), request_id=request_id, path=request.path)
        finally:
            if form is not None:
                form.close()
        access_logger.info(
            "%s %s %d %.1fms request_id=%s",
            request.method,
            request.path,
            response.status,
            (time.perf_counter() - started) * 1000,
            request_id,
        )
        return response


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    """A body already in memory, as a stream."""
    if body:
        yield body


def _translate(exc: Exception) -> BaseException:
    """What the caller sees of ``exc``: a database failure is the database being unavailable,
    unless the database refused a value of the request (a data exception, SQLSTATE class 22: a
    NUL in text, a string too long, invalid text for a type, an untranslatable character), which
    is the caller's mistake (422), not an outage."""
    if isinstance(exc, SQLAlchemyError):
        sqlstate = _sqlstate(exc)
        if isinstance(exc, DataError) or sqlstate.startswith("22"):
            logger.warning(
                "database refused a value: %s (SQLSTATE %s)", type(exc).__name__, sqlstate
            )
            return InvalidRequest(
                "The request holds a value the database cannot store or compare.",
                code="unstorable_value",
            )
        logger.warning("database error: %s", type(exc).__name__)
        return DependencyUnavailable("The database is unavailable.")
    return exc


def _sqlstate(exc: SQLAlchemyError) -> str:
    """The SQLSTATE PostgreSQL gave (``""`` when the error did not come from the server)."""
    original = getattr(exc, "orig", None)
    return str(getattr(original, "sqlstate", None) or "")


def _vector_stores(settings: Settings, database: Database) -> list[VectorStore]:
    """pgvector, and Qdrant when new collections go there or it is configured (collections made
    while ``SYNTHSTACK_VECTOR_STORE=qdrant`` keep their vectors there)."""
    stores: list[VectorStore] = [PgVectorStore(database)]
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
