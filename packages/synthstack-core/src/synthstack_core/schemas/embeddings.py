"""Models of ``/api/v1/embeddings/*``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from synthstack_core.schemas.common import (
    AS_INTEGER,
    ModelName,
    RequestModel,
    ResponseModel,
    Text,
    TextBatch,
    Usage,
)

__all__ = [
    "BatchEmbeddingRequest",
    "BatchEmbeddingResponse",
    "EmbeddingModel",
    "EmbeddingModelList",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "SimilarityRequest",
    "SimilarityResponse",
]


EMBEDDING_MODEL_FIELD = (
    "An embedding model from `GET /api/v1/embeddings/models`; default, the deployment's default "
    "model."
)


class EmbeddingRequest(RequestModel):
    """Embed one text."""

    text: Text
    model: ModelName | None = Field(None, description=EMBEDDING_MODEL_FIELD)
    dimensions: Annotated[int, Field(ge=1, le=3072), AS_INTEGER] | None = Field(
        None,
        description="Output size, for models that support shortening (OpenAI `text-embedding-3-*`).",
    )


class EmbeddingResponse(ResponseModel):
    """The embedding of one text."""

    embedding: list[float]
    model: str
    dimensions: int = Field(ge=1)
    usage: Usage


class BatchEmbeddingRequest(RequestModel):
    """Embed several texts; the answer keeps their order."""

    texts: TextBatch
    model: ModelName | None = Field(None, description=EMBEDDING_MODEL_FIELD)
    dimensions: Annotated[int, Field(ge=1, le=3072), AS_INTEGER] | None = None


class BatchEmbeddingResponse(ResponseModel):
    """One embedding per text, in the order of the request."""

    embeddings: list[list[float]]
    model: str
    dimensions: int = Field(ge=1)
    count: int = Field(ge=1)
    usage: Usage


class SimilarityRequest(RequestModel):
    """Compare two texts."""

    text1: Text
    text2: Text
    model: ModelName | None = Field(None, description=EMBEDDING_MODEL_FIELD)


class SimilarityResponse(ResponseModel):
    """Cosine similarity of the two texts' embeddings."""

    similarity: float = Field(ge=-1, le=1)
    model: str


class EmbeddingModel(ResponseModel):
    """A model this deployment can serve."""

    id: str
    provider: Literal["local", "openai"]
    dimensions: int = Field(ge=1, description="The native output size.")
    max_input_tokens: int = Field(
        ge=1, description="Longer inputs are truncated to this many tokens."
    )
    supports_dimensions: bool = Field(
        description="Whether `dimensions` may ask for a shorter vector."
    )
    default: bool


class EmbeddingModelList(ResponseModel):
    """The servable embedding models and the default one."""

    data: list[EmbeddingModel]
    default_model: str
