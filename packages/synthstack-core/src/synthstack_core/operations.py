"""The operation registry: every operation of ``contracts/openapi.yaml``, written once.

Each :class:`Operation` names its contract ``operationId``, method, path, request and response models
and its async handler. Both adapters build their routes from :data:`OPERATIONS`, so a new endpoint
appears in both; a test checks the registry against the contract.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from synthstack_core.schemas.analysis import (
    ClassifyRequest,
    ClassifyResponse,
    KeywordsRequest,
    KeywordsResponse,
    SentimentRequest,
    SentimentResponse,
    SummarizeRequest,
    SummarizeResponse,
    TextAnalysisRequest,
    TextAnalysisResponse,
)
from synthstack_core.schemas.complexity import (
    ComplexityAdjustmentRequest,
    ComplexityAdjustmentResponse,
    ComplexityAnalysisRequest,
    ComplexityAnalysisResponse,
    ComplexityEstimateRequest,
    ComplexityEstimateResponse,
    ComplexityScaleResponse,
)
from synthstack_core.schemas.embeddings import (
    BatchEmbeddingRequest,
    BatchEmbeddingResponse,
    EmbeddingModelList,
    EmbeddingRequest,
    EmbeddingResponse,
    SimilarityRequest,
    SimilarityResponse,
)
from synthstack_core.schemas.generation import (
    AnalysisGenerateRequest,
    AnalysisGenerateResponse,
    ChatGenerationRequest,
    ChatGenerationResponse,
    GenerationModelList,
    TextGenerationRequest,
    TextGenerationResponse,
)
from synthstack_core.schemas.health import HealthResponse, ReadinessResponse
from synthstack_core.schemas.rag import (
    Collection,
    CollectionList,
    CreateCollectionRequest,
    DeletedCollection,
    DeletedDocument,
    Document,
    DocumentList,
    DocumentListParams,
    DocumentParams,
    DocumentUploadForm,
    IndexRequest,
    IndexResponse,
    NamedCollectionParams,
    ProjectDocumentRequest,
    QueryRequest,
    QueryResponse,
    RagStats,
    SearchRequest,
    SearchResponse,
)
from synthstack_core.schemas.transcription import (
    AudioFormatList,
    CostEstimateRequest,
    CostEstimateResponse,
    TranscriptionForm,
    TranscriptionLanguageList,
    TranscriptionOutput,
)

if TYPE_CHECKING:
    from synthstack_core.security import Principal
    from synthstack_core.service import SynthStack

__all__ = [
    "OPERATIONS",
    "EventStream",
    "Operation",
    "RawReply",
    "Reply",
    "allowed_methods",
    "operation",
    "routes",
]


@dataclass(frozen=True)
class Reply:
    """A handler's answer when it is not a plain 200: the body and its status."""

    body: BaseModel
    status: int = 200


@dataclass(frozen=True)
class RawReply:
    """A handler's answer that is not JSON (plain text, subtitles): bytes and their media type."""

    body: bytes
    media_type: str
    status: int = 200


@dataclass(frozen=True)
class EventStream:
    """A handler's answer as server-sent events: ``(event name, payload)`` pairs, produced as the
    work goes on. The pipeline closes ``events`` when the client goes away."""

    events: AsyncGenerator[tuple[str, BaseModel], None]


Handler = Callable[
    ["SynthStack", "Principal", Any, Any], Awaitable[BaseModel | Reply | RawReply | EventStream]
]


@dataclass(frozen=True)
class Operation:
    """One operation of the contract."""

    operation_id: str
    method: str
    path: str
    response_model: type[BaseModel]
    handler: Handler
    request_model: type[BaseModel] | None = None
    #: Path and query parameters, validated together (``None``: the operation takes none).
    params_model: type[BaseModel] | None = None
    #: The status of a successful answer.
    status: int = 200
    authenticated: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)
    summary: str = ""
    #: The request body is ``multipart/form-data`` (``request_model`` is its form model), read by
    #: the core as it streams in, up to the setting named by ``body_limit``.
    form: bool = False
    #: The :class:`~synthstack_core.settings.Settings` attribute holding this operation's body limit.
    body_limit: str = "max_body_bytes"


async def _liveness(service: SynthStack, _: Principal, __: None, ___: None) -> BaseModel:
    return service.liveness()


async def _readiness(service: SynthStack, _: Principal, __: None, ___: None) -> Reply:
    report = await service.readiness()
    return Reply(report, status=200 if report.status == "ready" else 503)


async def _embed_one(
    service: SynthStack, _: Principal, body: EmbeddingRequest, __: None
) -> BaseModel:
    return await service.embeddings.generate_request(body)


async def _embed_batch(
    service: SynthStack, _: Principal, body: BatchEmbeddingRequest, __: None
) -> BaseModel:
    return await service.embeddings.batch_request(body)


async def _similarity(
    service: SynthStack, _: Principal, body: SimilarityRequest, __: None
) -> BaseModel:
    return await service.embeddings.similarity_request(body)


async def _models(service: SynthStack, _: Principal, __: None, ___: None) -> BaseModel:
    return service.embeddings.models()


async def _list_collections(service: SynthStack, caller: Principal, _: None, __: None) -> BaseModel:
    return await service.rag.list_collections(caller.tenant)


async def _create_collection(
    service: SynthStack, caller: Principal, body: CreateCollectionRequest, _: None
) -> BaseModel:
    return await service.rag.create_collection(caller.tenant, body)


async def _delete_collection(
    service: SynthStack, caller: Principal, _: None, params: NamedCollectionParams
) -> BaseModel:
    return await service.rag.delete_collection(caller.tenant, params.name)


async def _rag_stats(service: SynthStack, caller: Principal, _: None, __: None) -> BaseModel:
    return await service.rag.stats(caller.tenant)


async def _index(service: SynthStack, caller: Principal, body: IndexRequest, _: None) -> BaseModel:
    return await service.rag.index(caller.tenant, body)


async def _index_project_document(
    service: SynthStack, caller: Principal, body: ProjectDocumentRequest, _: None
) -> BaseModel:
    return await service.rag.index_project_document(caller.tenant, body)


async def _get_document(
    service: SynthStack, caller: Principal, _: None, params: DocumentParams
) -> BaseModel:
    return await service.rag.get_document(caller.tenant, params.collection, params.document_id)


async def _delete_document(
    service: SynthStack, caller: Principal, _: None, params: DocumentParams
) -> BaseModel:
    return await service.rag.delete_document(caller.tenant, params.collection, params.document_id)


async def _search(
    service: SynthStack, caller: Principal, body: SearchRequest, _: None
) -> BaseModel:
    return await service.rag.search(caller.tenant, body)


async def _upload_document(
    service: SynthStack, caller: Principal, form: DocumentUploadForm, _: None
) -> BaseModel:
    return await service.rag.upload(caller.tenant, form)


async def _generate_text(
    service: SynthStack, _: Principal, body: TextGenerationRequest, __: None
) -> BaseModel | EventStream:
    return await service.generation.text(body)


async def _generate_chat(
    service: SynthStack, _: Principal, body: ChatGenerationRequest, __: None
) -> BaseModel | EventStream:
    return await service.generation.chat(body)


async def _generation_models(service: SynthStack, _: Principal, __: None, ___: None) -> BaseModel:
    return service.generation.models()


async def _analyze_text(
    service: SynthStack, _: Principal, body: TextAnalysisRequest, __: None
) -> BaseModel:
    return await service.language.text(body)


async def _sentiment(
    service: SynthStack, _: Principal, body: SentimentRequest, __: None
) -> BaseModel:
    return await service.language.sentiment(body)


async def _summarize(
    service: SynthStack, _: Principal, body: SummarizeRequest, __: None
) -> BaseModel:
    return await service.language.summarize(body)


async def _keywords(
    service: SynthStack, _: Principal, body: KeywordsRequest, __: None
) -> BaseModel:
    return await service.language.keywords(body)


async def _classify(
    service: SynthStack, _: Principal, body: ClassifyRequest, __: None
) -> BaseModel:
    return await service.language.classify(body)


async def _analysis_generate(
    service: SynthStack, _: Principal, body: AnalysisGenerateRequest, __: None
) -> BaseModel:
    return await service.language.generate(body)


async def _estimate(
    service: SynthStack, _: Principal, body: ComplexityEstimateRequest, __: None
) -> BaseModel:
    return await service.language.estimate(body)


async def _analyze_change(
    service: SynthStack, _: Principal, body: ComplexityAnalysisRequest, __: None
) -> BaseModel:
    return await service.complexity.analyze(body)


async def _scale(service: SynthStack, _: Principal, __: None, ___: None) -> BaseModel:
    return await service.complexity.scale()


async def _adjustment(
    service: SynthStack, _: Principal, body: ComplexityAdjustmentRequest, __: None
) -> BaseModel:
    return await service.complexity.adjustment(body)


async def _transcribe(
    service: SynthStack, _: Principal, form: TranscriptionForm, __: None
) -> BaseModel | RawReply:
    result = await service.transcription.transcribe_form(form)
    rendered = result.render()
    if isinstance(rendered, BaseModel):
        return rendered
    return RawReply(result.body(), result.media_type)


async def _audio_formats(service: SynthStack, _: Principal, __: None, ___: None) -> BaseModel:
    return service.transcription.formats()


async def _transcription_languages(
    service: SynthStack, _: Principal, __: None, ___: None
) -> BaseModel:
    return service.transcription.languages()


async def _estimate_cost(
    service: SynthStack, _: Principal, body: CostEstimateRequest, __: None
) -> BaseModel:
    return service.transcription.estimate_cost(body)


async def _query(
    service: SynthStack, caller: Principal, body: QueryRequest, _: None
) -> BaseModel | EventStream:
    return await service.rag.query(caller.tenant, body)


async def _list_documents(
    service: SynthStack, caller: Principal, _: None, params: DocumentListParams
) -> BaseModel:
    return await service.rag.list_documents(caller.tenant, params)


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "health-liveness", "GET", "/health", HealthResponse, _liveness,
        authenticated=False, tags=("health",), summary="Liveness",
    ),
    Operation(
        "health-readiness", "GET", "/ready", ReadinessResponse, _readiness,
        authenticated=False, tags=("health",), summary="Readiness",
    ),
    Operation(
        "embeddings-generate", "POST", "/api/v1/embeddings/generate", EmbeddingResponse,
        _embed_one, request_model=EmbeddingRequest, tags=("embeddings",), summary="Embed one text",
    ),
    Operation(
        "embeddings-batch", "POST", "/api/v1/embeddings/batch", BatchEmbeddingResponse,
        _embed_batch, request_model=BatchEmbeddingRequest, tags=("embeddings",),
        summary="Embed a batch of texts",
    ),
    Operation(
        "embeddings-similarity", "POST", "/api/v1/embeddings/similarity", SimilarityResponse,
        _similarity, request_model=SimilarityRequest, tags=("embeddings",),
        summary="Cosine similarity of two texts",
    ),
    Operation(
        "embeddings-models", "GET", "/api/v1/embeddings/models", EmbeddingModelList, _models,
        tags=("embeddings",), summary="Embedding models this deployment can serve",
    ),
    Operation(
        "rag-list-collections", "GET", "/api/v1/rag/collections", CollectionList,
        _list_collections, tags=("rag",), summary="List the caller's collections",
    ),
    Operation(
        "rag-create-collection", "POST", "/api/v1/rag/collections", Collection,
        _create_collection, request_model=CreateCollectionRequest, status=201, tags=("rag",),
        summary="Create a collection",
    ),
    Operation(
        "rag-delete-collection", "DELETE", "/api/v1/rag/collections/{name}", DeletedCollection,
        _delete_collection, params_model=NamedCollectionParams, tags=("rag",),
        summary="Delete a collection and everything in it",
    ),
    Operation(
        "rag-stats", "GET", "/api/v1/rag/stats", RagStats, _rag_stats, tags=("rag",),
        summary="Per-collection counts",
    ),
    Operation(
        "rag-index", "POST", "/api/v1/rag/index", IndexResponse, _index,
        request_model=IndexRequest, tags=("rag",), summary="Index a text document",
    ),
    Operation(
        "rag-index-project-document", "POST", "/api/v1/rag/index-project-document",
        IndexResponse, _index_project_document, request_model=ProjectDocumentRequest,
        tags=("rag",), summary="Index a project's document (the gateway's call)",
    ),
    Operation(
        "rag-list-documents", "GET", "/api/v1/rag/documents", DocumentList, _list_documents,
        params_model=DocumentListParams, tags=("rag",), summary="List a collection's documents",
    ),
    Operation(
        "rag-upload-document", "POST", "/api/v1/rag/documents", Document, _upload_document,
        request_model=DocumentUploadForm, form=True, body_limit="max_upload_bytes", status=201,
        tags=("rag",), summary="Upload a file (text, Markdown, HTML, PDF, DOCX) and index it",
    ),
    Operation(
        "rag-get-document", "GET", "/api/v1/rag/documents/{document_id}", Document,
        _get_document, params_model=DocumentParams, tags=("rag",),
        summary="A document, with its chunk count and status",
    ),
    Operation(
        "rag-delete-document", "DELETE", "/api/v1/rag/documents/{document_id}", DeletedDocument,
        _delete_document, params_model=DocumentParams, tags=("rag",),
        summary="Delete a document, its chunks and vectors",
    ),
    Operation(
        "rag-search", "POST", "/api/v1/rag/search", SearchResponse, _search,
        request_model=SearchRequest, tags=("rag",), summary="Search a collection",
    ),
    Operation(
        "rag-query", "POST", "/api/v1/rag/query", QueryResponse, _query,
        request_model=QueryRequest, tags=("rag",),
        summary="Answer a question from a collection, with citations",
    ),
    Operation(
        "generation-text", "POST", "/api/v1/generation/text", TextGenerationResponse,
        _generate_text, request_model=TextGenerationRequest, tags=("generation",),
        summary="Generate text from a prompt (optionally streamed)",
    ),
    Operation(
        "generation-chat", "POST", "/api/v1/generation/chat", ChatGenerationResponse,
        _generate_chat, request_model=ChatGenerationRequest, tags=("generation",),
        summary="Continue a conversation (optionally streamed)",
    ),
    Operation(
        "generation-models", "GET", "/api/v1/generation/models", GenerationModelList,
        _generation_models, tags=("generation",), summary="The chat models this deployment serves",
    ),
    Operation(
        "analysis-text", "POST", "/api/v1/analysis/text", TextAnalysisResponse, _analyze_text,
        request_model=TextAnalysisRequest, tags=("analysis",),
        summary="Counts and several analyses of a text at once",
    ),
    Operation(
        "analysis-sentiment", "POST", "/api/v1/analysis/sentiment", SentimentResponse, _sentiment,
        request_model=SentimentRequest, tags=("analysis",), summary="Sentiment of a text",
    ),
    Operation(
        "analysis-summarize", "POST", "/api/v1/analysis/summarize", SummarizeResponse, _summarize,
        request_model=SummarizeRequest, tags=("analysis",), summary="Summary and key points",
    ),
    Operation(
        "analysis-keywords", "POST", "/api/v1/analysis/keywords", KeywordsResponse, _keywords,
        request_model=KeywordsRequest, tags=("analysis",), summary="Keywords of a text",
    ),
    Operation(
        "analysis-classify", "POST", "/api/v1/analysis/classify", ClassifyResponse, _classify,
        request_model=ClassifyRequest, tags=("analysis",),
        summary="Classify a text into given categories (zero-shot)",
    ),
    Operation(
        "analysis-generate", "POST", "/api/v1/analysis/generate", AnalysisGenerateResponse,
        _analysis_generate, request_model=AnalysisGenerateRequest, tags=("analysis",),
        summary="Generate text from a prompt and optional context",
    ),
    Operation(
        "complexity-estimate", "POST", "/api/v1/complexity/estimate", ComplexityEstimateResponse,
        _estimate, request_model=ComplexityEstimateRequest, tags=("complexity",),
        summary="Estimate a task's complexity, hours and points",
    ),
    Operation(
        "complexity-analyze", "POST", "/api/v1/complexity/analyze", ComplexityAnalysisResponse,
        _analyze_change, request_model=ComplexityAnalysisRequest, tags=("complexity",),
        summary="The complexity a merged change turned out to have",
    ),
    Operation(
        "complexity-scale", "GET", "/api/v1/complexity/scale", ComplexityScaleResponse, _scale,
        tags=("complexity",), summary="The five complexity levels",
    ),
    Operation(
        "complexity-adjustment", "POST", "/api/v1/complexity/adjustment",
        ComplexityAdjustmentResponse, _adjustment, request_model=ComplexityAdjustmentRequest,
        tags=("complexity",), summary="Point adjustment between an estimate and the actual level",
    ),
    Operation(
        "transcription-transcribe", "POST", "/api/v1/transcription/transcribe",
        TranscriptionOutput, _transcribe, request_model=TranscriptionForm, form=True,
        body_limit="max_audio_bytes", tags=("transcription",),
        summary="Transcribe an uploaded audio file (json, verbose_json, text, srt, vtt)",
    ),
    Operation(
        "transcription-formats", "GET", "/api/v1/transcription/formats", AudioFormatList,
        _audio_formats, tags=("transcription",), summary="The audio this deployment decodes",
    ),
    Operation(
        "transcription-languages", "GET", "/api/v1/transcription/languages",
        TranscriptionLanguageList, _transcription_languages, tags=("transcription",),
        summary="The transcription models and their languages",
    ),
    Operation(
        "transcription-estimate-cost", "POST", "/api/v1/transcription/estimate-cost",
        CostEstimateResponse, _estimate_cost, request_model=CostEstimateRequest,
        tags=("transcription",), summary="Processing time and price of transcribing audio",
    ),
)  # fmt: skip


def routes() -> dict[str, dict[str, Operation]]:
    """The operations grouped by path template, then by method (what a router needs)."""
    grouped: dict[str, dict[str, Operation]] = {}
    for op in OPERATIONS:
        grouped.setdefault(op.path, {})[op.method] = op
    return grouped


def allowed_methods(path: str) -> list[str]:
    """The methods the contract allows at a concrete ``path`` (empty for an unknown path)."""
    for template, by_method in routes().items():
        pattern = re.sub(r"\\{[A-Za-z_][A-Za-z0-9_]*\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return sorted(by_method)
    return []


def operation(operation_id: str) -> Operation:
    """The operation with this ``operationId``."""
    for op in OPERATIONS:
        if op.operation_id == operation_id:
            return op
    raise KeyError(operation_id)
