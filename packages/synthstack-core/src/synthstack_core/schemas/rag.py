"""Models of ``/api/v1/rag/*``: collections, indexing, documents and search."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Json, TypeAdapter, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from synthstack_core.multipart import UploadedFile
from synthstack_core.schemas.common import (
    AS_INTEGER,
    FormModel,
    ModelName,
    RequestModel,
    ResponseModel,
    Text,
)

__all__ = [
    "AnswerUsage",
    "Citation",
    "Collection",
    "CollectionList",
    "CollectionName",
    "CollectionStats",
    "CreateCollectionRequest",
    "DeletedCollection",
    "DeletedDocument",
    "Document",
    "DocumentId",
    "DocumentList",
    "DocumentListParams",
    "DocumentParams",
    "DocumentUploadForm",
    "InFilter",
    "IndexRequest",
    "IndexResponse",
    "Metadata",
    "NamedCollectionParams",
    "ProjectDocumentRequest",
    "QueryDone",
    "QueryRequest",
    "QueryResponse",
    "QuerySource",
    "QuerySources",
    "RagStats",
    "SearchRequest",
    "SearchResponse",
    "SearchResult",
    "Span",
]

CollectionName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Letters, digits, `.`, `_` and `-`, starting with a letter or digit.",
    ),
]
DocumentId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="The caller's id of a document (generated when omitted at indexing).",
    ),
]
MetadataKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
MetadataValue = (
    Annotated[str, Field(max_length=1000, pattern=r"^[^\x00]*$")] | int | float | bool | None
)
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(
        max_length=64,
        description="Flat key/value metadata (strings, numbers, booleans, null), "
        "searchable with `filter`.",
        json_schema_extra={"additionalProperties": False},
    ),
]


class CreateCollectionRequest(RequestModel):
    """A new collection."""

    name: CollectionName
    embedding_model: ModelName | None = Field(
        None,
        description="The collection's embedding model, from `GET /api/v1/embeddings/models`, fixed "
        "at creation; default, the deployment's default model.",
    )
    description: str = Field("", max_length=1000, pattern=r"^[^\x00]*$")


class Collection(ResponseModel):
    """A collection and its size."""

    name: str
    description: str
    embedding_model: str
    dimensions: int = Field(ge=1)
    created_at: datetime
    documents: int = Field(ge=0)
    chunks: int = Field(ge=0)


class CollectionList(ResponseModel):
    """The caller's collections."""

    collections: list[Collection]


class NamedCollectionParams(BaseModel):
    """Path parameters of ``/collections/{name}``."""

    model_config = ConfigDict(extra="ignore")

    name: CollectionName


class DeletedCollection(ResponseModel):
    """What deleting a collection removed."""

    name: str
    documents_deleted: int = Field(ge=0)
    chunks_deleted: int = Field(ge=0)


class CollectionStats(ResponseModel):
    """Counts of one collection."""

    name: str
    documents: int = Field(ge=0)
    chunks: int = Field(ge=0)
    vectors: int = Field(ge=0)
    embedding_model: str
    dimensions: int = Field(ge=1)
    store: Literal["pgvector", "qdrant"] = Field(
        description="Where the collection's vectors are; `vectors` is that store's own count."
    )


class RagStats(ResponseModel):
    """Counts of every collection of the caller."""

    collections: list[CollectionStats]


#: A document's title, as given or as read from the file.
DocumentTitle = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\x00]*$")]


class IndexRequest(RequestModel):
    """A text document to index."""

    content: Annotated[str, Field(min_length=1, max_length=1_000_000, pattern=r"^[^\x00]*$")]
    source: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\x00]*$")]
    source_type: Literal["text", "markdown", "html"] = "text"
    title: DocumentTitle | None = Field(
        None,
        description=(
            "The document's title, indexed with each chunk that does not contain it; default, the"
            " Markdown front matter's title or first heading, or the HTML title."
        ),
    )
    metadata: Metadata = Field(default_factory=dict)
    collection: CollectionName | None = None
    document_id: DocumentId | None = None
    chunk_size: Annotated[int, Field(ge=16, le=4096), AS_INTEGER] = Field(
        256, description="Tokens per chunk, at most the model's input window."
    )
    chunk_overlap: Annotated[int, Field(ge=0, le=2047), AS_INTEGER] = Field(
        32,
        description="Tokens repeated between neighbouring chunks; less than half of `chunk_size`.",
    )


class DocumentUploadForm(FormModel):
    """``POST /api/v1/rag/documents``: a file to parse and index (``multipart/form-data``).

    A form has no null: an optional field is simply left out (``SkipJsonSchema`` keeps ``null`` out
    of the schema).
    """

    file: UploadedFile = Field(
        description="Plain text, Markdown, HTML, PDF or DOCX; its type is read from its content.",
        json_schema_extra={"minLength": 1},
    )
    collection: CollectionName | SkipJsonSchema[None] = None
    document_id: DocumentId | SkipJsonSchema[None] = None
    source: (
        Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\x00]*$")]
        | SkipJsonSchema[None]
    ) = Field(None, description="Where the document comes from; default: the file's name.")
    source_type: Literal["text", "markdown", "html", "pdf", "docx"] | SkipJsonSchema[None] = Field(
        None, description="Checked against the content when given; default: detected."
    )
    title: DocumentTitle | SkipJsonSchema[None] = Field(
        None,
        description=(
            "The document's title, indexed with each chunk that does not contain it; default, the"
            " file's own (PDF or DOCX properties, HTML title, Markdown front matter title or first"
            " heading)."
        ),
    )
    # The part's text is JSON: the schema is the object's, as OpenAPI describes an object part.
    metadata: (
        Annotated[Json[Metadata], WithJsonSchema(TypeAdapter(Metadata).json_schema())]
        | SkipJsonSchema[None]
    ) = Field(
        None,
        description="A JSON object of flat key/value metadata, sent as the part's text "
        "(`application/json`).",
    )
    chunk_size: Annotated[int, Field(ge=16, le=4096), AS_INTEGER] = Field(
        256, description="Tokens per chunk, at most the model's input window."
    )
    chunk_overlap: Annotated[int, Field(ge=0, le=2047), AS_INTEGER] = Field(
        32,
        description="Tokens repeated between neighbouring chunks; less than half of `chunk_size`.",
    )


class ProjectDocumentRequest(RequestModel):
    """The gateway's call: a project's document, indexed into ``project_<project_id>``."""

    document_id: DocumentId
    project_id: Annotated[str, Field(min_length=1, max_length=56, pattern=r"^[A-Za-z0-9._-]+$")]
    filename: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\x00]*$")]
    content: Annotated[str, Field(min_length=1, max_length=1_000_000, pattern=r"^[^\x00]*$")]
    file_type: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[^\x00]*$",
        description="A file type or extension (`md`, `markdown`, `html`, `txt`, ...); "
        "others are indexed as text.",
    )
    chunk_size: Annotated[int, Field(ge=16, le=4096), AS_INTEGER] = 1000
    chunk_overlap: Annotated[int, Field(ge=0, le=2047), AS_INTEGER] = 200


class IndexResponse(ResponseModel):
    """The indexed document."""

    document_id: str
    collection: str
    chunks_created: int = Field(ge=1)


class DocumentParams(BaseModel):
    """Path and query parameters of ``/documents/{document_id}``."""

    model_config = ConfigDict(extra="ignore")

    document_id: DocumentId
    collection: CollectionName = "default"


class Document(ResponseModel):
    """A stored document."""

    document_id: str
    collection: str
    source: str
    source_type: str
    title: str | None
    metadata: Metadata
    chunks: int = Field(ge=0)
    characters: int = Field(ge=0)
    content_sha256: str
    status: Literal["indexed"]
    created_at: datetime
    updated_at: datetime


class DeletedDocument(ResponseModel):
    """What deleting a document removed."""

    document_id: str
    collection: str
    chunks_deleted: int = Field(ge=0)


class InFilter(RequestModel):
    """Membership: the metadata value is one of these."""

    in_: list[MetadataValue] = Field(alias="in", min_length=1, max_length=100)


FilterCondition = MetadataValue | InFilter


class SearchRequest(RequestModel):
    """A search in one collection."""

    query: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]
    collection: CollectionName | None = None
    limit: Annotated[int, Field(ge=1, le=100), AS_INTEGER] = 5
    min_score: float | None = None
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    filter: Annotated[
        dict[MetadataKey, FilterCondition],
        Field(max_length=16, json_schema_extra={"additionalProperties": False}),
    ] = Field(default_factory=dict)


class Span(ResponseModel):
    """Character offsets of a chunk in its document."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)


class SearchResult(ResponseModel):
    """One chunk found."""

    chunk_id: str
    document_id: str
    content: str
    source: str
    title: str | None = Field(description="The document's title.")
    score: float
    metadata: Metadata
    span: Span
    page: int | None = None


class SearchResponse(ResponseModel):
    """The best chunks, best first."""

    results: list[SearchResult]
    query: str
    total_found: int = Field(
        ge=0,
        description="The number of results returned: the length of `results`, at most the "
        "request's `limit`. It is not the number of chunks that matched (the name is kept for the "
        "gateway).",
    )


class QueryRequest(RequestModel):
    """A question to answer from a collection."""

    query: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]
    collection: CollectionName | None = None
    context_limit: Annotated[int, Field(ge=1, le=20), AS_INTEGER] = Field(
        5, description="How many retrieved chunks the answer may draw on."
    )
    filter: Annotated[
        dict[MetadataKey, FilterCondition],
        Field(max_length=16, json_schema_extra={"additionalProperties": False}),
    ] = Field(default_factory=dict)
    model: ModelName | None = Field(
        None,
        description="A chat model to write the answer (`GET /api/v1/generation/models`); "
        "default: the deployment's default when a remote provider is configured, else extractive.",
    )
    system_prompt: Text | None = Field(
        None, description="Instructions for the chat model, instead of the built-in ones."
    )
    stream: bool = Field(
        False, description="Answer as server-sent events: `sources`, `delta`..., `done`."
    )
    answer_mode: Literal["auto", "extractive", "generative"] = Field(
        "auto",
        description="`auto`: generative when `model` is given or a remote provider is "
        "configured, else extractive; `extractive`: always quote (no chat model is called); "
        "`generative`: always a chat model (the local one offline).",
    )


class Citation(ResponseModel):
    """A cited sentence: where it is, and which source ``[n]`` it belongs to."""

    index: int = Field(
        ge=1, description="The `[n]` in the answer, and the `index` of the cited source."
    )
    chunk_id: str
    document_id: str
    source: str
    span: Span
    quote: str = Field(description="The cited sentence, exactly as in the document at `span`.")


class QuerySource(ResponseModel):
    """A retrieved chunk the answer may cite, numbered from 1."""

    index: int = Field(ge=1)
    chunk_id: str
    document_id: str
    content: str
    source: str
    title: str | None = Field(description="The document's title.")
    score: float
    metadata: Metadata
    span: Span
    page: int | None = None


class AnswerUsage(ResponseModel):
    """Tokens of a generated or extracted answer."""

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class QueryResponse(ResponseModel):
    """An answer grounded in numbered sources."""

    answer: str
    citations: list[Citation]
    sources: list[QuerySource]
    model: str = Field(
        description="What produced the answer (the embedding model, for an extractive answer)."
    )
    answer_mode: Literal["extractive", "generative"]
    usage: AnswerUsage


class QuerySources(ResponseModel):
    """The streamed ``sources`` event: what the answer may cite."""

    sources: list[QuerySource]


class QueryDone(ResponseModel):
    """The streamed ``done`` event: the checked answer (invalid markers removed), its citations,
    and usage."""

    answer: str
    citations: list[Citation]
    model: str
    answer_mode: Literal["extractive", "generative"]
    usage: AnswerUsage


class DocumentListParams(BaseModel):
    """Query parameters of ``GET /documents``."""

    model_config = ConfigDict(extra="ignore")

    collection: CollectionName = "default"
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, min_length=1, max_length=200)


class DocumentList(ResponseModel):
    """One page of a collection's documents, newest first."""

    documents: list[Document]
    next_cursor: str | None = Field(
        description="Where the next page starts; null on the last page."
    )
