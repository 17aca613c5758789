"""The rows the RAG repository reads and writes, as values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from synthstack_core.stores.vectors import StoreName, VectorScope

__all__ = ["ChunkToStore", "CollectionRecord", "DocumentRecord"]


@dataclass(frozen=True)
class CollectionRecord:
    """A collection row."""

    id: uuid.UUID
    name: str
    description: str
    embedding_model: str
    dimensions: int
    created_at: datetime
    store: StoreName
    tenant_id: uuid.UUID
    documents: int = 0
    chunks: int = 0

    @property
    def vector_scope(self) -> VectorScope:
        """Where its vectors are, in its vector store."""
        return VectorScope(self.tenant_id, self.id, self.dimensions)


@dataclass(frozen=True)
class DocumentRecord:
    """A document row."""

    id: uuid.UUID
    external_id: str
    collection: str
    source: str
    source_type: str
    metadata: dict[str, Any]
    content_sha256: str
    characters: int
    chunk_count: int
    chunk_size: int
    chunk_overlap: int
    created_at: datetime
    updated_at: datetime
    title: str | None


@dataclass(frozen=True)
class ChunkToStore:
    """A chunk ready to be written: its text, place and vector (``headed``: its vector, and its
    lexical postings, are of the document's title and its text, see :mod:`synthstack_core.features.rag`)."""

    position: int
    content: str
    start: int
    end: int
    page: int | None
    token_count: int
    vector: npt.NDArray[np.float32]
    headed: bool = False
