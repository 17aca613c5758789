"""Retrieval-augmented generation: collections, indexing and hybrid search.

Indexing splits a document with the collection's model's own tokenizer (a chunk never exceeds the
model's input window), embeds the chunks through the embeddings feature (batched and cached), and
writes document, chunks, vectors and BM25 postings in one transaction. Search ranks by BM25
(``lexical``), by cosine similarity (``dense``), or fuses both by their min-max normalised scores,
weighted equally (``hybrid``, :func:`min_max_fusion`). A document's title is indexed with each
chunk that lacks it (:func:`chunk_header`). On SciFact through the API (docs/benchmarks.md):
nDCG@10 lexical 0.683, dense 0.667, hybrid 0.731 (0.711 with reciprocal-rank fusion).
"""

from synthstack_core.features.rag.answering import MODULE, RagService
from synthstack_core.features.rag.headers import chunk_header
from synthstack_core.features.rag.indexing import DEFAULT_COLLECTION, MAX_DOCUMENT_CHARS
from synthstack_core.features.rag.retrieval import min_max_fusion, reciprocal_rank_fusion

__all__ = [
    "DEFAULT_COLLECTION",
    "MAX_DOCUMENT_CHARS",
    "MODULE",
    "RagService",
    "chunk_header",
    "min_max_fusion",
    "reciprocal_rank_fusion",
]
