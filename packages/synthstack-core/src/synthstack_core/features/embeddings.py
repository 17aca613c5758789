"""Embeddings: generate, batch, similarity and the list of servable models.

Vectors are cached by (tenant, model, dimensions, SHA-256 of the text), so a repeated text is never
embedded twice — within a request (duplicates are embedded once) and across a tenant's requests.
Each tenant has its own entries: a tenant cannot tell, by how fast its request is answered, that
another tenant embedded a text (``SYNTHSTACK_CACHE_SHARED_ACROSS_TENANTS`` shares them, off by
default). Texts that are not a tenant's (``tenant=None``: the service's own, such as the labelled
examples of complexity estimates) have entries of their own. Misses go to the provider in batches
of its size; the answer keeps the order of the texts.

Jobs' texts (``gather=True``, with ``SYNTHSTACK_JOB_EMBED_BATCHING``) share provider runs: misses that
arrive while the model runs another job's texts wait, and then run together in one call, sorted by
length (so that short texts are padded only to short ones). Each caller looks up and fills its own
tenant's cache entries and counts its own texts; only the model run is shared.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import numpy as np
import numpy.typing as npt

from synthstack_core import tracing
from synthstack_core.errors import FieldError, ModelNotAvailable
from synthstack_core.metrics import EMBEDDING_RUN_CALLERS, model_inference
from synthstack_core.providers.embedding import (
    EmbeddingBatch,
    EmbeddingModelSpec,
    EmbeddingProvider,
)
from synthstack_core.providers.factory import build_embedding_providers
from synthstack_core.providers.model_registry import ModelRegistry
from synthstack_core.registry import Module, Stack, operation
from synthstack_core.schemas.common import Limits, Usage
from synthstack_core.schemas.embeddings import (
    BatchEmbeddingRequest,
    BatchEmbeddingResponse,
    EmbeddingModel,
    EmbeddingModelList,
    EmbeddingRequest,
    EmbeddingResponse,
    SimilarityRequest,
    SimilarityResponse,
)
from synthstack_core.settings import DEFAULT_TENANT
from synthstack_core.stores.cache import Cache
from synthstack_core.usage import count as count_usage
from synthstack_core.validation import validate_data

__all__ = ["MODULE", "EmbeddingModelRegistry", "EmbeddingService", "Embeddings"]

_CACHE_PREFIX = "synthstack:emb:v2:"


@dataclass(frozen=True)
class Embeddings:
    """Vectors (float32, unit length, one row per text) with the model and tokens used."""

    vectors: npt.NDArray[np.float32]
    model: EmbeddingModelSpec
    dimensions: int
    token_counts: list[int]

    @property
    def total_tokens(self) -> int:
        """Tokens of every text together."""
        return sum(self.token_counts)


@dataclass(frozen=True)
class _Embedded:
    """What :meth:`EmbeddingService.embed` made, and how many of its texts were cached."""

    embeddings: Embeddings
    cached: int


@dataclass(eq=False)
class _Waiting:
    """One caller's texts in a :class:`_Gatherer`, and what became of them."""

    texts: list[str]
    result: EmbeddingBatch | None = None
    error: BaseException | None = None


class _Gatherer:
    """Provider runs shared by concurrent callers of one model and size (the job path).

    A caller whose model is idle runs at once, taking every text queued meanwhile; callers that
    arrive while it runs queue, and the first of them to get the model next runs for all of them.
    Nothing waits on purpose, so a lone caller runs as soon as it would without this.
    """

    def __init__(self) -> None:
        self._lock = anyio.Lock()
        self._queue: list[_Waiting] = []

    async def embed(
        self,
        provider: EmbeddingProvider,
        spec: EmbeddingModelSpec,
        dimensions: int | None,
        texts: Sequence[str],
    ) -> EmbeddingBatch:
        waiting = _Waiting(list(texts))
        self._queue.append(waiting)
        try:
            async with self._lock:
                if waiting.result is None and waiting.error is None:
                    group, self._queue = self._queue, []
                    # Finish the run for everyone in it even if this caller is cancelled.
                    with anyio.CancelScope(shield=True):
                        await _run_group(provider, spec, dimensions, group)
        except BaseException:
            if waiting in self._queue:  # cancelled before anyone ran it
                self._queue.remove(waiting)
            raise
        if waiting.error is not None:
            raise waiting.error
        assert waiting.result is not None
        return waiting.result


async def _run_group(
    provider: EmbeddingProvider,
    spec: EmbeddingModelSpec,
    dimensions: int | None,
    group: list[_Waiting],
) -> None:
    """Embed every text of ``group`` sorted by length (in calls of the provider's batch size) and
    give each caller its rows, or the error to every caller."""
    EMBEDDING_RUN_CALLERS.labels(spec.id).observe(len(group))
    owners = [(member, row) for member in group for row in range(len(member.texts))]
    owners.sort(key=lambda owner: len(owner[0].texts[owner[1]]))
    width = spec.dimensions if dimensions is None else dimensions
    vectors = {id(member): np.empty((len(member.texts), width), np.float32) for member in group}
    counts = {id(member): [0] * len(member.texts) for member in group}
    try:
        for part in _calls(provider, [member.texts[row] for member, row in owners], owners):
            with model_inference("embedding", spec.id):
                result = await provider.embed_batch(
                    [member.texts[row] for member, row in part], model=spec, dimensions=dimensions
                )
            for index, (member, row) in enumerate(part):
                vectors[id(member)][row] = result.vectors[index]
                counts[id(member)][row] = result.token_counts[index]
    except Exception as error:
        for member in group:
            member.error = error
        return
    for member in group:
        member.result = EmbeddingBatch(vectors=vectors[id(member)], token_counts=counts[id(member)])


async def _embed_alone(
    provider: EmbeddingProvider,
    spec: EmbeddingModelSpec,
    dimensions: int | None,
    texts: list[str],
) -> EmbeddingBatch:
    """``texts`` embedded for one caller, in calls of the provider's batch size (the provider
    sorts a call's texts by length itself)."""
    width = spec.dimensions if dimensions is None else dimensions
    vectors = np.empty((len(texts), width), np.float32)
    counts: list[int] = []
    for start in range(0, len(texts), provider.batch_size):
        with model_inference("embedding", spec.id):
            result = await provider.embed_batch(
                texts[start : start + provider.batch_size], model=spec, dimensions=dimensions
            )
        vectors[start : start + len(result.token_counts)] = result.vectors
        counts.extend(result.token_counts)
    return EmbeddingBatch(vectors=vectors, token_counts=counts)


def _calls(
    provider: EmbeddingProvider, texts: list[str], owners: list[tuple[_Waiting, int]]
) -> list[list[tuple[_Waiting, int]]]:
    """``owners`` (of ``texts``, sorted by length) cut into the provider's calls: at most its
    batch size, and at most its padded characters when it has such a bound."""
    budget = provider.padded_chars
    window = provider.truncated_chars or max(map(len, texts), default=1)
    calls: list[list[tuple[_Waiting, int]]] = []
    current: list[tuple[_Waiting, int]] = []
    for owner, text in zip(owners, texts, strict=True):
        padded = (len(current) + 1) * max(1, min(len(text), window))
        if current and (
            len(current) == provider.batch_size or (budget is not None and padded > budget)
        ):
            calls.append(current)
            current = []
        current.append(owner)
    if current:
        calls.append(current)
    return calls


class EmbeddingModelRegistry(ModelRegistry[EmbeddingModelSpec, EmbeddingProvider]):
    """Which embedding models this deployment serves, through which provider, and the default;
    :meth:`resolve` also checks the output size a request asks for."""

    def __init__(self, providers: Sequence[EmbeddingProvider], default_model: str) -> None:
        super().__init__(
            providers,
            default_model,
            setting="EMBEDDING_MODEL",
            listing="/api/v1/embeddings/models",
            hint="; OpenAI models need OPENAI_API_KEY or OPENAI_BASE_URL.",
        )
        self._default_spec, _ = self.lookup(None)

    @property
    def default(self) -> EmbeddingModelSpec:
        """The model used when a request names none."""
        return self._default_spec

    def resolve(
        self, model: str | None, dimensions: int | None
    ) -> tuple[EmbeddingModelSpec, EmbeddingProvider, int]:
        """The model, its provider and the output size a request asks for.

        Raises :class:`ModelNotAvailable` for an unknown model and for dimensions it cannot give.
        """
        spec, provider = self.lookup(model or None)
        if dimensions is None or dimensions == spec.dimensions:
            return spec, provider, spec.dimensions
        if not spec.supports_dimensions:
            raise ModelNotAvailable(
                f"Model {spec.id!r} always returns {spec.dimensions} dimensions.",
                errors=[
                    FieldError(
                        ("dimensions",),
                        f"Model {spec.id} does not support `dimensions`",
                        "dimensions_not_supported",
                    )
                ],
                code="dimensions_not_supported",
            )
        if dimensions > spec.dimensions:
            raise ModelNotAvailable(
                f"Model {spec.id!r} returns at most {spec.dimensions} dimensions.",
                errors=[
                    FieldError(
                        ("dimensions",),
                        f"Input should be less than or equal to {spec.dimensions}",
                        "dimensions_not_supported",
                    )
                ],
                code="dimensions_not_supported",
            )
        return spec, provider, dimensions


class EmbeddingService:
    """The embeddings feature; reachable as ``SynthStack.embeddings``."""

    def __init__(
        self,
        registry: EmbeddingModelRegistry,
        cache: Cache,
        *,
        limits: Limits,
        ttl_seconds: int,
        shared_across_tenants: bool = False,
        gather_jobs: bool = True,
    ) -> None:
        self.registry = registry
        self._gather_jobs = gather_jobs
        self._gatherers: dict[tuple[str, int], _Gatherer] = {}
        self._cache = cache
        self._limits = limits
        self._ttl = ttl_seconds
        self._shared = shared_across_tenants

    async def embed(
        self,
        texts: Sequence[str],
        *,
        tenant: str | None,
        model: str | None = None,
        dimensions: int | None = None,
        gather: bool = False,
    ) -> Embeddings:
        """Embed ``texts`` (already validated) with caching and batching; order is kept.

        ``tenant`` is whose texts they are: the cache entries are that tenant's alone. ``None`` is
        for the service's own texts, never for a request's. ``gather`` (a job's texts): share
        model runs with other callers that asked for it (``SYNTHSTACK_JOB_EMBED_BATCHING``).
        """
        spec, provider, size = self.registry.resolve(model, dimensions)
        attributes = {
            "synthstack.embedding.model": spec.id,
            "synthstack.embedding.texts": len(texts),
        }
        with tracing.span("embedding", attributes) as span:
            gatherer = None
            if gather and self._gather_jobs:
                gatherer = self._gatherers.setdefault((spec.id, size), _Gatherer())
            embedded = await self._embed(texts, spec, provider, size, tenant, gatherer)
            if span is not None:
                span.set_attribute("synthstack.embedding.cached", embedded.cached)
        return embedded.embeddings

    async def _embed(
        self,
        texts: Sequence[str],
        spec: EmbeddingModelSpec,
        provider: EmbeddingProvider,
        size: int,
        tenant: str | None,
        gatherer: _Gatherer | None = None,
    ) -> _Embedded:
        """:meth:`embed`'s work (inside its span)."""
        scope = _cache_scope(tenant, shared=self._shared)
        keys = [_cache_key(scope, spec.id, size, text) for text in texts]
        vectors = np.empty((len(texts), size), dtype=np.float32)
        counts = [0] * len(texts)
        missing: dict[str, list[int]] = {}
        for index, (key, cached) in enumerate(
            zip(keys, await self._cache.get_many(keys), strict=True)
        ):
            decoded = _decode(cached, size) if cached is not None else None
            if decoded is None:
                missing.setdefault(key, []).append(index)
            else:
                vectors[index], counts[index] = decoded
        if missing:
            unique = list(missing)
            dims = None if size == spec.dimensions else size
            misses = [texts[missing[key][0]] for key in unique]
            if gatherer is not None:
                result = await gatherer.embed(provider, spec, dims, misses)
            else:
                result = await _embed_alone(provider, spec, dims, misses)
            fresh: dict[str, bytes] = {}
            for row, key in enumerate(unique):
                for index in missing[key]:
                    vectors[index] = result.vectors[row]
                    counts[index] = result.token_counts[row]
                fresh[key] = _encode(result.vectors[row], result.token_counts[row])
            await self._cache.set_many(fresh, self._ttl)
        if tenant is not None:  # a request's texts (cached or not), not the service's own
            count_usage(texts_embedded=len(texts))
        return _Embedded(
            Embeddings(vectors=vectors, model=spec, dimensions=size, token_counts=counts),
            cached=len(texts) - sum(len(indexes) for indexes in missing.values()),
        )

    async def generate(
        self,
        text: str,
        *,
        model: str | None = None,
        dimensions: int | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> EmbeddingResponse:
        """Embed one text (validated as the HTTP API would) for ``tenant``."""
        request = validate_data(
            EmbeddingRequest, {"text": text, "model": model, "dimensions": dimensions}, self._limits
        )
        return await self.generate_request(tenant, request)

    async def batch(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> BatchEmbeddingResponse:
        """Embed several texts (validated as the HTTP API would), in order, for ``tenant``."""
        request = validate_data(
            BatchEmbeddingRequest,
            {"texts": list(texts), "model": model, "dimensions": dimensions},
            self._limits,
        )
        return await self.batch_request(tenant, request)

    async def similarity(
        self, text1: str, text2: str, *, model: str | None = None, tenant: str = DEFAULT_TENANT
    ) -> SimilarityResponse:
        """Cosine similarity of two texts, for ``tenant``."""
        request = validate_data(
            SimilarityRequest, {"text1": text1, "text2": text2, "model": model}, self._limits
        )
        return await self.similarity_request(tenant, request)

    @operation("embeddings-generate")
    async def generate_request(self, tenant: str, body: EmbeddingRequest) -> EmbeddingResponse:
        """``POST /api/v1/embeddings/generate``."""
        result = await self.embed(
            [body.text], tenant=tenant, model=body.model, dimensions=body.dimensions
        )
        return EmbeddingResponse(
            embedding=result.vectors[0].tolist(),
            model=result.model.id,
            dimensions=result.dimensions,
            usage=_usage(result.total_tokens),
        )

    @operation("embeddings-batch")
    async def batch_request(
        self, tenant: str, body: BatchEmbeddingRequest
    ) -> BatchEmbeddingResponse:
        """``POST /api/v1/embeddings/batch``."""
        result = await self.embed(
            body.texts, tenant=tenant, model=body.model, dimensions=body.dimensions
        )
        return BatchEmbeddingResponse(
            embeddings=result.vectors.tolist(),
            model=result.model.id,
            dimensions=result.dimensions,
            count=len(body.texts),
            usage=_usage(result.total_tokens),
        )

    @operation("embeddings-similarity")
    async def similarity_request(self, tenant: str, body: SimilarityRequest) -> SimilarityResponse:
        """``POST /api/v1/embeddings/similarity``."""
        result = await self.embed([body.text1, body.text2], tenant=tenant, model=body.model)
        cosine = float(np.dot(result.vectors[0], result.vectors[1]))
        return SimilarityResponse(similarity=min(1.0, max(-1.0, cosine)), model=result.model.id)

    @operation("embeddings-models")
    def models(self) -> EmbeddingModelList:
        """``GET /api/v1/embeddings/models``."""
        default = self.registry.default.id
        return EmbeddingModelList(
            data=[
                EmbeddingModel(
                    id=spec.id,
                    provider=spec.provider,
                    dimensions=spec.dimensions,
                    max_input_tokens=spec.max_input_tokens,
                    supports_dimensions=spec.supports_dimensions,
                    default=spec.id == default,
                )
                for spec in self.registry.specs(default_first=True)
            ],
            default_model=default,
        )

    async def aclose(self) -> None:
        """Close the providers."""
        await self.registry.aclose()


def build(stack: Stack) -> EmbeddingService:
    """The local ONNX model (with the ``local-embeddings`` extra), and OpenAI's models when a key
    (or a base URL) is configured."""
    settings = stack.settings
    providers = build_embedding_providers(settings, stack.openai_client)
    registry = EmbeddingModelRegistry(providers, settings.embedding_model)
    return EmbeddingService(
        registry,
        stack.cache,
        limits=stack.limits,
        ttl_seconds=settings.cache_ttl_seconds,
        shared_across_tenants=settings.cache_shared_across_tenants,
        gather_jobs=settings.job_embed_batching,
    )


MODULE = Module("embeddings", EmbeddingService, build)


def _usage(tokens: int) -> Usage:
    return Usage(prompt_tokens=tokens, total_tokens=tokens)


def _cache_scope(tenant: str | None, *, shared: bool) -> str:
    """Whose entries: ``tenant:<name>`` (a tenant name has no ``:``), ``shared`` for every tenant
    when sharing is configured, ``internal`` for the service's own texts."""
    if tenant is None:
        return "internal"
    return "shared" if shared else f"tenant:{tenant}"


def _cache_key(scope: str, model: str, dimensions: int, text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{_CACHE_PREFIX}{scope}:{model}:{dimensions}:{digest}"


def _encode(vector: npt.NDArray[np.float32], tokens: int) -> bytes:
    return struct.pack("<I", tokens) + np.asarray(vector, dtype="<f4").tobytes()


def _decode(value: bytes, dimensions: int) -> tuple[npt.NDArray[np.float32], int] | None:
    if len(value) != 4 + 4 * dimensions:
        return None  # a foreign or corrupt entry is a miss, not an error
    (tokens,) = struct.unpack_from("<I", value)
    return np.frombuffer(value, dtype="<f4", offset=4).astype(np.float32), tokens
