"""RAG storage: collections, documents, chunks and BM25 postings in PostgreSQL; vectors in the
collection's :class:`~synthstack_core.stores.vectors.VectorStore` (pgvector or Qdrant).

Every query is scoped by tenant: a collection is found by (tenant, name), and documents and chunks
only through their collection, so a tenant never reads, searches or deletes another's data.

A document is written in one transaction — its row (upserted, which also locks it), the removal of
its previous chunks, its new chunks, and their postings — so a failed ingestion leaves nothing
behind and two concurrent re-indexings of one document never mix: the second waits for the first's
row lock, then replaces its chunks whole. With pgvector the vectors are columns of the chunk rows,
written and deleted by the same statements. With Qdrant the new chunks' points (new ids) are written
before the transaction commits; if that write or the commit fails the transaction rolls back, the
points written are removed and the caller gets a 503. Points whose rows are gone are invisible
until they are removed, because a search only returns chunks whose rows it reads back from
PostgreSQL (committed, in the tenant's collection, matching the filter).

The repository is one class, :class:`RagRepository`, put together from one part per
responsibility: :mod:`.collections`, :mod:`.documents`, :mod:`.search`, and :mod:`.outbox` (the
deletions an external vector store still owes, and why they never leave points behind for good).
"""

from synthstack_core.stores.rag.outbox import VectorSweep
from synthstack_core.stores.rag.records import ChunkToStore, CollectionRecord, DocumentRecord
from synthstack_core.stores.rag.repository import RagRepository
from synthstack_core.stores.vectors import ScoredChunk

__all__ = [
    "ChunkToStore",
    "CollectionRecord",
    "DocumentRecord",
    "RagRepository",
    "ScoredChunk",
    "VectorSweep",
]
