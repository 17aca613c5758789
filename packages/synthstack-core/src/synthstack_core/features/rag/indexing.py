"""RAG indexing: collections, and documents parsed, chunked, embedded and stored."""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import anyio
import numpy as np

from synthstack_core.cursors import decode_cursor, encode_cursor
from synthstack_core.errors import (
    DependencyUnavailable,
    FieldError,
    InvalidRequest,
    ModelNotAvailable,
    NotFound,
    PayloadTooLarge,
)
from synthstack_core.features.chunking import (
    MIN_CHUNK_SIZE,
    Chunk,
    split_text,
    validate_chunk_params,
)
from synthstack_core.features.embeddings import EmbeddingService
from synthstack_core.features.generation import GenerationService
from synthstack_core.features.jobs import JobService, Progress
from synthstack_core.features.parsing import (
    ParsedDocument,
    SourceType,
    parse_document,
)
from synthstack_core.features.rag.headers import chunk_header, contains_header
from synthstack_core.preferences import NO_PREFERENCES, Preferences
from synthstack_core.providers.embedding import EmbeddingModelSpec, EmbeddingProvider
from synthstack_core.registry import operation
from synthstack_core.replies import Reply
from synthstack_core.schemas.rag import (
    Collection,
    CollectionList,
    CollectionStats,
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
    RagStats,
)
from synthstack_core.settings import DEFAULT_MAX_CHUNKS_PER_DOCUMENT
from synthstack_core.stores.api_keys import ApiKeyRepository
from synthstack_core.stores.rag import (
    ChunkToStore,
    CollectionRecord,
    DocumentRecord,
    RagRepository,
)
from synthstack_core.usage import count as count_usage

__all__ = [
    "DEFAULT_COLLECTION",
    "MAX_DOCUMENT_CHARS",
    "RagIndexing",
]

DEFAULT_COLLECTION = "default"
#: The longest generated answer, in tokens (less when the model's output limit is lower).
#: Low: an answer should stay close to its sources.
#: The most text one document may hold, as JSON ``content`` or extracted from an upload (413).
MAX_DOCUMENT_CHARS = 1_000_000
#: The longest title kept from a file's own properties (a given title is limited by the schema).
MAX_TITLE_CHARS = 512
#: The longest source kept from an upload's file name (a given source is limited by the schema).
MAX_SOURCE_CHARS = 512
#: Candidates each side contributes to a hybrid search (at least; more for larger limits).

#: Chunks a job embeds between two progress reports (and cancellation checks).
PROGRESS_SLICE = 64

_MARKDOWN_TYPES = {"md", "markdown", "mdx", "text/markdown"}
_HTML_TYPES = {"html", "htm", "xhtml", "text/html"}


def _collection(record: CollectionRecord) -> Collection:
    return Collection(
        name=record.name,
        description=record.description,
        embedding_model=record.embedding_model,
        dimensions=record.dimensions,
        created_at=record.created_at,
        documents=record.documents,
        chunks=record.chunks,
    )


def _document(record: DocumentRecord) -> Document:
    return Document(
        document_id=record.external_id,
        collection=record.collection,
        source=record.source,
        source_type=record.source_type,
        title=record.title,
        metadata=record.metadata,
        chunks=record.chunk_count,
        characters=record.characters,
        content_sha256=record.content_sha256,
        status="indexed",
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


class RagIndexing:
    """Collections and documents: creating, indexing, listing, deleting (the base of
    :class:`~synthstack_core.features.rag.answering.RagService`)."""

    def __init__(
        self,
        repository: RagRepository,
        embeddings: EmbeddingService,
        tenants: ApiKeyRepository,
        generation: GenerationService | None = None,
        *,
        max_chunks_per_document: int = DEFAULT_MAX_CHUNKS_PER_DOCUMENT,
        jobs: JobService | None = None,
    ) -> None:
        self._jobs = jobs
        if jobs is not None:
            jobs.register("rag-index", self.run_index_job, unit="chunks")
            jobs.register("rag-upload-document", self.run_upload_job, unit="chunks")
        self._repository = repository
        self._embeddings = embeddings
        self._tenants = tenants
        self._generation = generation
        self._max_chunks = max_chunks_per_document

    @property
    def repository(self) -> RagRepository:
        """Where collections, documents and chunks are stored."""
        return self._repository

    # -- collections -------------------------------------------------------------------------

    @operation("rag-create-collection")
    async def create_collection(self, tenant: str, body: CreateCollectionRequest) -> Collection:
        """``POST /api/v1/rag/collections`` (409 if the name is taken by this tenant)."""
        spec, _, _ = self._embeddings.registry.resolve(body.embedding_model, None)
        tenant_id = await self._tenants.ensure_tenant(tenant)
        record = await self._repository.create_collection(
            tenant_id,
            body.name,
            embedding_model=spec.id,
            dimensions=spec.dimensions,
            description=body.description,
        )
        return _collection(record)

    @operation("rag-list-collections")
    async def list_collections(self, tenant: str) -> CollectionList:
        """``GET /api/v1/rag/collections``."""
        records = await self._repository.list_collections(tenant)
        return CollectionList(collections=[_collection(record) for record in records])

    @operation("rag-delete-collection", params=NamedCollectionParams)
    async def delete_collection(self, tenant: str, name: str) -> DeletedCollection:
        """``DELETE /api/v1/rag/collections/{name}``: everything in it goes too."""
        counts = await self._repository.delete_collection(tenant, name)
        if counts is None:
            raise NotFound(f"No collection {name!r}.")
        return DeletedCollection(name=name, documents_deleted=counts[0], chunks_deleted=counts[1])

    @operation("rag-stats")
    async def stats(self, tenant: str) -> RagStats:
        """``GET /api/v1/rag/stats``."""
        records = await self._repository.list_collections(tenant)
        return RagStats(
            collections=[
                CollectionStats(
                    name=record.name,
                    documents=record.documents,
                    chunks=record.chunks,
                    vectors=await self._repository.vector_count(record),
                    embedding_model=record.embedding_model,
                    dimensions=record.dimensions,
                    store=record.store,
                )
                for record in records
            ]
        )

    async def _existing(self, tenant: str, name: str) -> CollectionRecord:
        record = await self._repository.get_collection(tenant, name)
        if record is None:
            raise NotFound(f"No collection {name!r}.")
        return record

    def _model_of(self, record: CollectionRecord) -> tuple[EmbeddingModelSpec, EmbeddingProvider]:
        """The collection's model and its provider (503 if this deployment no longer serves it)."""
        try:
            spec, provider, _ = self._embeddings.registry.resolve(record.embedding_model, None)
        except ModelNotAvailable:
            raise DependencyUnavailable(
                f"Collection {record.name!r} uses {record.embedding_model!r}, "
                "which this deployment does not serve."
            ) from None
        return spec, provider

    # -- indexing ----------------------------------------------------------------------------

    @operation("rag-index")
    async def index(
        self, tenant: str, body: IndexRequest, prefer: Preferences = NO_PREFERENCES
    ) -> IndexResponse | Reply:
        """``POST /api/v1/rag/index``; with ``Prefer: respond-async``, checked, then a job."""
        arguments: dict[str, Any] = {
            "collection": body.collection or DEFAULT_COLLECTION,
            "document_id": body.document_id or uuid.uuid4().hex,
            "content": body.content,
            "source": body.source,
            "source_type": body.source_type,
            "title": body.title,
            "metadata": dict(body.metadata),
            "chunk_size": body.chunk_size,
            "chunk_overlap": body.chunk_overlap,
        }
        if self._jobs is not None and self._jobs.wanted(prefer):
            # Everything but embedding and storing, so a refused document is refused now.
            prepared = await self._prepare(tenant, **arguments)
            if prepared.unchanged is None and not prepared.chunks:
                raise _empty_document()
            job = await self._jobs.submit(tenant, "rag-index", arguments, path="/api/v1/rag/index")
            count_usage(bytes_ingested=len(body.content.encode()))
            return job
        indexed = await self._index(tenant, **arguments)
        count_usage(bytes_ingested=len(body.content.encode()))
        return indexed

    async def run_index_job(
        self, tenant: str, request: dict[str, Any], data: bytes | None, progress: Progress
    ) -> IndexResponse:
        """A ``rag-index`` job: the synchronous call's indexing, reporting chunks embedded."""
        return await self._index(tenant, **request, progress=progress)

    @operation("rag-index-project-document")
    async def index_project_document(
        self, tenant: str, body: ProjectDocumentRequest
    ) -> IndexResponse:
        """``POST /api/v1/rag/index-project-document`` into ``project_<project_id>``."""
        file_type = body.file_type.strip().lower().lstrip(".")
        source_type = (
            "markdown"
            if file_type in _MARKDOWN_TYPES
            else "html"
            if file_type in _HTML_TYPES
            else "text"
        )
        indexed = await self._index(
            tenant,
            collection=f"project_{body.project_id}",
            document_id=body.document_id,
            content=body.content,
            source=body.filename,
            source_type=source_type,
            title=None,
            metadata={"project_id": body.project_id, "file_type": body.file_type},
            chunk_size=body.chunk_size,
            chunk_overlap=body.chunk_overlap,
        )
        count_usage(bytes_ingested=len(body.content.encode()))
        return indexed

    @operation("rag-upload-document", form=True, body_limit="max_upload_bytes")
    async def upload(
        self, tenant: str, body: DocumentUploadForm, prefer: Preferences = NO_PREFERENCES
    ) -> Document | Reply:
        """``POST /api/v1/rag/documents``: parse an uploaded file (type by content), index it, and
        return the stored document; with ``Prefer: respond-async``, parsed and checked, then a
        job (the file's bytes kept with it in the database)."""
        upload = body.file
        data = await anyio.to_thread.run_sync(upload.read_bytes)
        arguments: dict[str, Any] = {
            "collection": body.collection or DEFAULT_COLLECTION,
            "document_id": body.document_id or uuid.uuid4().hex,
            "source": body.source,
            "filename": upload.filename,
            "source_type": body.source_type,
            "title": body.title,
            "metadata": dict(body.metadata or {}),
            "chunk_size": body.chunk_size,
            "chunk_overlap": body.chunk_overlap,
        }
        if self._jobs is not None and self._jobs.wanted(prefer):
            index = await self._upload_arguments(data, **arguments)
            prepared = await self._prepare(tenant, **index)
            if prepared.unchanged is None and not prepared.chunks:
                raise _empty_document()
            job = await self._jobs.submit(
                tenant, "rag-upload-document", arguments, data=data, path="/api/v1/rag/documents"
            )
            count_usage(bytes_ingested=len(data))  # the file as sent
            return job
        document = await self.run_upload_job(tenant, arguments, data, None)
        count_usage(bytes_ingested=len(data))  # the file as sent
        return document

    async def run_upload_job(
        self, tenant: str, request: dict[str, Any], data: bytes | None, progress: Progress | None
    ) -> Document:
        """An upload (a ``rag-upload-document`` job's, or the synchronous call's): the stored
        document."""
        assert data is not None
        index = await self._upload_arguments(data, **request)
        await self._index(tenant, **index, progress=progress)
        return await self.get_document(tenant, index["collection"], index["document_id"])

    @staticmethod
    async def _upload_arguments(
        data: bytes,
        *,
        collection: str,
        document_id: str,
        source: str | None,
        filename: str,
        source_type: SourceType | None,
        title: str | None,
        metadata: dict[str, Any],
        chunk_size: int,
        chunk_overlap: int,
    ) -> dict[str, Any]:
        """The arguments of :meth:`_index` for an uploaded file: parsed, its type read from its
        bytes (415, 422 and 413 for files that cannot be indexed)."""
        parsed = await anyio.to_thread.run_sync(
            functools.partial(
                parse_document,
                data,
                source_type=source_type,
                filename=filename or None,
                max_chars=MAX_DOCUMENT_CHARS,
            )
        )
        return {
            "collection": collection,
            "document_id": document_id,
            "content": parsed.text,
            "source": source or filename[:MAX_SOURCE_CHARS] or document_id,
            "source_type": parsed.source_type,
            "title": title,  # else the file's own, see _index
            "metadata": metadata,
            "chunk_size": chunk_size,
            "chunk_overlap": chunk_overlap,
            "parsed": parsed,
        }

    async def _index(
        self,
        tenant: str,
        *,
        collection: str,
        document_id: str,
        content: str,
        source: str,
        source_type: str,
        title: str | None,
        metadata: Mapping[str, Any],
        chunk_size: int,
        chunk_overlap: int,
        parsed: ParsedDocument | None = None,
        progress: Progress | None = None,
    ) -> IndexResponse:
        """Index ``content`` (or the already ``parsed`` document: its text and page breaks).

        ``title`` (else the one the content declares: first Markdown heading, HTML title) is
        stored with the document and indexed with each chunk that does not contain it: see
        :func:`chunk_header`. ``progress`` (a job's) is told the chunks embedded as they are.
        """
        prepared = await self._prepare(
            tenant,
            collection=collection,
            document_id=document_id,
            content=content,
            source=source,
            source_type=source_type,
            title=title,
            metadata=metadata,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            parsed=parsed,
        )
        if prepared.unchanged is not None:
            return prepared.unchanged
        record, spec, chunks, header = (
            prepared.record,
            prepared.spec,
            prepared.chunks,
            prepared.header,
        )
        parsed, title, size, overlap = (
            prepared.parsed,
            prepared.title,
            prepared.size,
            prepared.overlap,
        )
        text = parsed.text
        if record is None:
            record = await self._repository.create_collection(
                await self._tenants.ensure_tenant(tenant),
                collection,
                embedding_model=spec.id,
                dimensions=spec.dimensions,
                exist_ok=True,
            )
            if record.embedding_model != spec.id:
                # Created meanwhile with another model: index for that one (the collection exists
                # now, so this happens once).
                return await self._index(
                    tenant,
                    collection=collection,
                    document_id=document_id,
                    content=content,
                    source=source,
                    source_type=source_type,
                    title=title,
                    metadata=metadata,
                    chunk_size=chunk_size,
                    chunk_overlap=chunk_overlap,
                    parsed=parsed,
                    progress=progress,
                )
        if not chunks:
            raise _empty_document()
        headed = [
            header is not None and not contains_header(chunk.text, header) for chunk in chunks
        ]
        texts = [
            f"{header}\n\n{chunk.text}" if with_header else chunk.text
            for chunk, with_header in zip(chunks, headed, strict=True)
        ]
        if progress is None:
            vectors = (await self._embeddings.embed(texts, tenant=tenant, model=spec.id)).vectors
        else:
            # A job embeds in slices, reporting each (and stopping there when cancelled).
            await progress(0, len(texts))
            parts = []
            for start in range(0, len(texts), PROGRESS_SLICE):
                part = texts[start : start + PROGRESS_SLICE]
                # Other jobs' chunks that wait for the model share its run (sorted by length).
                embedded = await self._embeddings.embed(
                    part, tenant=tenant, model=spec.id, gather=True
                )
                parts.append(embedded.vectors)
                await progress(start + len(part), len(texts))
            vectors = np.concatenate(parts)
        await self._repository.replace_document(
            record,
            external_id=document_id,
            source=source,
            source_type=source_type,
            title=title,
            header=header,
            metadata=metadata,
            content_sha256=prepared.digest,
            characters=len(text),
            chunk_size=size,
            chunk_overlap=overlap,
            chunks=[
                ChunkToStore(
                    position=chunk.index,
                    content=chunk.text,
                    start=chunk.start,
                    end=chunk.end,
                    page=chunk.page,
                    token_count=chunk.token_count,
                    vector=vectors[row],
                    headed=headed[row],
                )
                for row, chunk in enumerate(chunks)
            ],
        )
        return IndexResponse(
            document_id=document_id, collection=collection, chunks_created=len(chunks)
        )

    async def _prepare(
        self,
        tenant: str,
        *,
        collection: str,
        document_id: str,
        content: str,
        source: str,
        source_type: str,
        title: str | None,
        metadata: Mapping[str, Any],
        chunk_size: int,
        chunk_overlap: int,
        parsed: ParsedDocument | None = None,
    ) -> _Prepared:
        """What indexing does before it embeds: checks (chunk parameters, the collection's
        model, the chunk limit), parsing and splitting; writes nothing."""
        try:
            validate_chunk_params(chunk_size, chunk_overlap)
        except ValueError as exc:
            raise InvalidRequest(
                str(exc), errors=[FieldError(("chunk_overlap",), str(exc), "chunk_overlap")]
            ) from None
        record = await self._repository.get_collection(tenant, collection)
        # A new collection gets the default model; it is created only once the document is known
        # to be accepted (under the chunk limit), so a refused document writes nothing.
        if record is None:
            spec, provider, _ = self._embeddings.registry.resolve(None, None)
        else:
            spec, provider = self._model_of(record)
        # A chunk must fit the model's window; a larger request is scaled down, overlap with it.
        size = min(chunk_size, spec.max_input_tokens)
        overlap = chunk_overlap * size // chunk_size
        # Parsing HTML and splitting take up to ~1 s of CPU each: keep them off the event loop.
        if parsed is None:
            parsed = await anyio.to_thread.run_sync(_json_document, content, source_type)
        text = parsed.text
        if title is None and parsed.title is not None:
            title = parsed.title[:MAX_TITLE_CHARS].strip() or None
        digest = hashlib.sha256(f"{source_type}\n{text}".encode()).hexdigest()
        existing = await self._repository.get_document(tenant, collection, document_id)
        if (
            existing is not None
            and existing.content_sha256 == digest
            and (existing.chunk_size, existing.chunk_overlap) == (size, overlap)
            and existing.source == source
            and existing.title == title
            and existing.metadata == dict(metadata)
        ):
            return _Prepared(
                record=record,
                spec=spec,
                parsed=parsed,
                title=title,
                digest=digest,
                size=size,
                overlap=overlap,
                header=None,
                chunks=[],
                unchanged=IndexResponse(
                    document_id=document_id,
                    collection=collection,
                    chunks_created=existing.chunk_count,
                ),
            )
        counter = provider.token_counter(spec)
        header = chunk_header(title, counter, size)
        # What is embedded, header and chunk, must fit the chunk size (and so the model's window).
        split_size, split_overlap = size, overlap
        spare = size - counter.count(header) if header is not None else 0
        if spare >= MIN_CHUNK_SIZE:
            split_size, split_overlap = spare, overlap * spare // size
        else:
            header = None
        chunks = await anyio.to_thread.run_sync(
            functools.partial(
                split_text,
                text,
                chunk_size=split_size,
                chunk_overlap=split_overlap,
                counter=counter,
                source_type=source_type,  # type: ignore[arg-type]
                page_breaks=parsed.page_breaks,
            )
        )
        if len(chunks) > self._max_chunks:
            raise PayloadTooLarge(
                f"The document makes {len(chunks)} chunks at chunk_size {size}; the limit is "
                f"{self._max_chunks} chunks per document (SYNTHSTACK_MAX_CHUNKS_PER_DOCUMENT). "
                "Use a larger chunk_size or split the document.",
                code="too_many_chunks",
            )
        return _Prepared(
            record=record,
            spec=spec,
            parsed=parsed,
            title=title,
            digest=digest,
            size=size,
            overlap=overlap,
            header=header,
            chunks=chunks,
        )

    # -- documents ---------------------------------------------------------------------------

    @operation("rag-list-documents")
    async def list_documents(self, tenant: str, params: DocumentListParams) -> DocumentList:
        """``GET /api/v1/rag/documents``: newest first, with an opaque cursor."""
        record = await self._existing(tenant, params.collection)
        after = decode_cursor(params.cursor) if params.cursor else None
        rows = await self._repository.list_documents(record, limit=params.limit + 1, after=after)
        page = rows[: params.limit]
        next_cursor = (
            encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > params.limit else None
        )
        return DocumentList(documents=[_document(row) for row in page], next_cursor=next_cursor)

    @operation("rag-get-document", params=DocumentParams)
    async def get_document(self, tenant: str, collection: str, document_id: str) -> Document:
        """``GET /api/v1/rag/documents/{document_id}``."""
        record = await self._repository.get_document(tenant, collection, document_id)
        if record is None:
            raise NotFound(f"No document {document_id!r} in collection {collection!r}.")
        return _document(record)

    @operation("rag-delete-document", params=DocumentParams)
    async def delete_document(
        self, tenant: str, collection: str, document_id: str
    ) -> DeletedDocument:
        """``DELETE /api/v1/rag/documents/{document_id}``: chunks and vectors go too."""
        deleted = await self._repository.delete_document(tenant, collection, document_id)
        if deleted is None:
            raise NotFound(f"No document {document_id!r} in collection {collection!r}.")
        return DeletedDocument(
            document_id=document_id, collection=collection, chunks_deleted=deleted
        )


@dataclass(frozen=True)
class _Prepared:
    """A document checked, parsed and split (:meth:`RagIndexing._prepare`), not yet embedded."""

    record: CollectionRecord | None
    spec: EmbeddingModelSpec
    parsed: ParsedDocument
    title: str | None
    digest: str
    size: int
    overlap: int
    header: str | None
    chunks: list[Chunk]
    #: The answer when the stored document is this one already (nothing to embed).
    unchanged: IndexResponse | None = None


def _empty_document() -> InvalidRequest:
    return InvalidRequest(
        "The document has no text to index.",
        errors=[FieldError(("content",), "No text to index", "empty_document")],
        code="empty_document",
    )


def _json_document(content: str, source_type: str) -> ParsedDocument:
    """The text to chunk and the title it declares: plain text as given (newlines normalised),
    HTML and Markdown as text, as an upload of them is."""
    normalised = content.replace("\r\n", "\n").replace("\r", "\n")
    if source_type in ("html", "markdown"):
        return parse_document(
            normalised.encode(),
            source_type=cast("SourceType", source_type),
            filename=None,
            max_chars=MAX_DOCUMENT_CHARS,
        )
    return ParsedDocument(text=normalised, source_type=cast("SourceType", source_type))
