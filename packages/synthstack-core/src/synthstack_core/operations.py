"""The operation registry: every operation of ``contracts/openapi.yaml``, written once.

Each :class:`Operation` names its contract ``operationId``, method, path, request and response models
and its async handler. Both adapters build their routes from :data:`OPERATIONS`, so a new endpoint
appears in both; a test checks the registry against the contract.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from synthstack_core.schemas.embeddings import (
    BatchEmbeddingRequest,
    BatchEmbeddingResponse,
    EmbeddingModelList,
    EmbeddingRequest,
    EmbeddingResponse,
    SimilarityRequest,
    SimilarityResponse,
)
from synthstack_core.schemas.health import HealthResponse, ReadinessResponse

if TYPE_CHECKING:
    from synthstack_core.security import Principal
    from synthstack_core.service import SynthStack

__all__ = ["OPERATIONS", "Operation", "Reply", "operation"]


@dataclass(frozen=True)
class Reply:
    """A handler's answer when it is not a plain 200: the body and its status."""

    body: BaseModel
    status: int = 200


Handler = Callable[["SynthStack", "Principal", Any], Awaitable[BaseModel | Reply]]


@dataclass(frozen=True)
class Operation:
    """One operation of the contract."""

    operation_id: str
    method: str
    path: str
    response_model: type[BaseModel]
    handler: Handler
    request_model: type[BaseModel] | None = None
    authenticated: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)
    summary: str = ""


async def _liveness(service: SynthStack, _: Principal, __: None) -> BaseModel:
    return service.liveness()


async def _readiness(service: SynthStack, _: Principal, __: None) -> Reply:
    report = await service.readiness()
    return Reply(report, status=200 if report.status == "ready" else 503)


async def _embed_one(service: SynthStack, _: Principal, body: EmbeddingRequest) -> BaseModel:
    return await service.embeddings.generate_request(body)


async def _embed_batch(service: SynthStack, _: Principal, body: BatchEmbeddingRequest) -> BaseModel:
    return await service.embeddings.batch_request(body)


async def _similarity(service: SynthStack, _: Principal, body: SimilarityRequest) -> BaseModel:
    return await service.embeddings.similarity_request(body)


async def _models(service: SynthStack, _: Principal, __: None) -> BaseModel:
    return service.embeddings.models()


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
)  # fmt: skip


def operation(operation_id: str) -> Operation:
    """The operation with this ``operationId``."""
    for op in OPERATIONS:
        if op.operation_id == operation_id:
            return op
    raise KeyError(operation_id)
