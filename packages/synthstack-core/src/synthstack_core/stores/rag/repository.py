"""The RAG repository: its parts (collections, documents, search, the outbox) put together."""

from __future__ import annotations

from collections.abc import Sequence

from synthstack_core.stores.database import Database
from synthstack_core.stores.rag.collections import CollectionQueries
from synthstack_core.stores.rag.documents import DocumentQueries
from synthstack_core.stores.rag.outbox import SWEEP_INTERVAL_SECONDS
from synthstack_core.stores.rag.search import SearchQueries
from synthstack_core.stores.vectors import PgVectorStore, StoreName, VectorStore

__all__ = ["RagRepository"]


class RagRepository(CollectionQueries, DocumentQueries, SearchQueries):
    """Tenant-scoped reads and writes of the RAG tables and of the collections' vector stores."""

    def __init__(
        self,
        database: Database,
        stores: Sequence[VectorStore] = (),
        *,
        default_store: StoreName = "pgvector",
        sweep_interval_seconds: float = SWEEP_INTERVAL_SECONDS,
    ) -> None:
        """``stores`` are the vector stores this deployment reaches (pgvector always); new
        collections keep their vectors in ``default_store``. Pending vector deletions are swept
        at most every ``sweep_interval_seconds`` before a write."""
        self._db = database
        self._sweep_interval = float(sweep_interval_seconds)
        self._next_sweep = 0.0
        self._stores = {"pgvector": PgVectorStore(database)}
        self._stores.update({store.name: store for store in stores})
        if default_store not in self._stores:
            raise ValueError(f"vector store {default_store!r} is not configured")
        self.default_store = default_store
