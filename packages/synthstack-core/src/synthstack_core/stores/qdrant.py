"""Chunk vectors in Qdrant: a server (``QDRANT_URL``) or qdrant-client's local mode.

**One Qdrant collection per vector size, tenants and RAG collections told apart by payload.**
Points live in ``synthstack_chunks_<size>`` (cosine distance; a point's id is its chunk's UUID) with
the payload ``tenant_id``, ``collection_id``, ``document_id`` and ``meta`` (the document's
metadata). Every search filters on ``tenant_id`` *and* ``collection_id``. On a server,
``tenant_id`` has a keyword index with ``is_tenant`` (Qdrant keeps a tenant's points together on
disk) and ``collection_id`` a keyword index; the HNSW graph is built per indexed payload value
(``payload_m`` 16, ``m`` 0: no global graph, since no search ever spans collections).

Why not a Qdrant collection per (tenant, collection): RAG collections are cheap and unbounded here
(``project_<id>`` is created on first use, per project), while each Qdrant collection carries its
own segments, WAL, optimiser threads and HNSW configuration — Qdrant's documentation advises a
single collection with payload-based partitioning for many tenants, and limits collection counts.
One collection per *size* is forced anyway: a Qdrant collection has one vector size, and a
deployment serves a handful of models. Creating and dropping a RAG collection then never changes
Qdrant's schema (no collection-creation races between workers, no orphan collections); dropping one
is a filtered delete. The price, a filter on every search, is what the tenant index is for.

Metadata filters have jsonb containment's semantics (as lexical search applies them in SQL): each
metadata pair is stored as one keyword ``key=<canonical JSON value>`` in ``meta``, so equality is
an exact keyword match (``1`` = ``1.0``, ``true`` ≠ ``1``, ``"1"`` ≠ ``1``, ``null`` only matches
``null``), membership a match of any, and dotted keys are not mistaken for nested paths. The rows
Qdrant returns are read back from PostgreSQL with the same filter, tenant and collection.

Local mode (tests, a single-process deployment) is qdrant-client's in-process engine: exact
brute-force search, in the event loop, and one process per folder (it locks it). For several
workers or large collections, run a Qdrant server.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import anyio
import numpy as np
import numpy.typing as npt
from qdrant_client import AsyncQdrantClient, models
from sqlalchemy.ext.asyncio import AsyncSession

from synthstack_core.errors import DependencyUnavailable
from synthstack_core.stores.vectors import (
    StoreName,
    VectorHit,
    VectorPoint,
    VectorScope,
    VectorStore,
)

__all__ = ["COLLECTION_PREFIX", "QdrantStore", "metadata_keyword"]

logger = logging.getLogger("synthstack.qdrant")

COLLECTION_PREFIX = "synthstack_chunks"
#: Points per upsert request (a request stays well under Qdrant's 32 MB default body limit).
UPSERT_BATCH = 256
#: Payload-aware HNSW links per node, built per indexed value (tenant, collection).
PAYLOAD_M = 16
#: JSON numbers beyond this are not integers a float can hold exactly.
_EXACT_INTEGER = 2**53


def metadata_keyword(key: str, value: Any) -> str:
    """One metadata pair as the keyword stored in ``meta`` and matched by a filter."""
    if value is None:
        canonical = "null"
    elif isinstance(value, bool):
        canonical = "true" if value else "false"
    elif isinstance(value, int):
        canonical = str(value)
    elif isinstance(value, float):
        exact = math.isfinite(value) and value.is_integer() and abs(value) < _EXACT_INTEGER
        canonical = str(int(value)) if exact else repr(value)
    else:
        import json

        canonical = json.dumps(str(value), ensure_ascii=False)
    return f"{key}={canonical}"


def _scope_conditions(scope: VectorScope) -> list[models.Condition]:
    return [
        models.FieldCondition(key="tenant_id", match=models.MatchValue(value=str(scope.tenant_id))),
        models.FieldCondition(
            key="collection_id", match=models.MatchValue(value=str(scope.collection_id))
        ),
    ]


def _metadata_conditions(filters: Mapping[str, Any]) -> list[models.Condition]:
    conditions: list[models.Condition] = []
    for key, condition in sorted(filters.items()):
        values = condition if isinstance(condition, list) else [condition]
        keywords = sorted({metadata_keyword(key, value) for value in values})
        match: models.MatchValue | models.MatchAny = (
            models.MatchValue(value=keywords[0])
            if len(keywords) == 1
            else models.MatchAny(any=keywords)
        )
        conditions.append(models.FieldCondition(key="meta", match=match))
    return conditions


class QdrantStore(VectorStore):
    """Chunk vectors in Qdrant, one collection per vector size (see the module's docstring)."""

    name: ClassVar[StoreName] = "qdrant"

    def __init__(
        self,
        *,
        url: str | None = None,
        path: str | Path | None = None,
        api_key: str | None = None,
        timeout_seconds: float = 10.0,
        prefix: str = COLLECTION_PREFIX,
    ) -> None:
        """A server at ``url``, else local mode in ``path`` (a folder, or ``":memory:"``)."""
        if url is not None:
            self.client = AsyncQdrantClient(
                url=url, api_key=api_key, timeout=max(1, math.ceil(timeout_seconds))
            )
            self.kind = "qdrant"
        elif path is None or str(path) == ":memory:":
            self.client = AsyncQdrantClient(location=":memory:")
            self.kind = "qdrant-local :memory:"
        else:
            Path(path).mkdir(parents=True, exist_ok=True)
            self.client = AsyncQdrantClient(path=str(path))
            self.kind = "qdrant-local"
        self.local = url is None
        self.prefix = prefix
        self._sizes: set[int] = set()
        self._creating = anyio.Lock()

    def collection_name(self, dimensions: int) -> str:
        """The Qdrant collection of vectors of this size."""
        return f"{self.prefix}_{int(dimensions)}"

    @asynccontextmanager
    async def _calling(self, action: str) -> AsyncIterator[None]:
        # Any failure of the client (connection refused, timeout, an error response, a closed
        # local instance, a collection of the wrong size) is the vector store being unavailable.
        try:
            yield
        except DependencyUnavailable:
            raise
        except Exception as exc:
            logger.warning("qdrant %s failed: %s: %s", action, type(exc).__name__, exc)
            raise DependencyUnavailable("The vector store (Qdrant) is unavailable.") from exc

    async def _collection(self, dimensions: int) -> str:
        """The collection of this size, created with its indexes on first use."""
        name = self.collection_name(dimensions)
        if dimensions in self._sizes:
            return name
        async with self._creating, self._calling("collection creation"):
            if dimensions in self._sizes:
                return name
            if not await self.client.collection_exists(name):
                try:
                    await self.client.create_collection(
                        name,
                        vectors_config=models.VectorParams(
                            size=int(dimensions), distance=models.Distance.COSINE
                        ),
                        hnsw_config=models.HnswConfigDiff(payload_m=PAYLOAD_M, m=0),
                    )
                except Exception:
                    # Another process may have created it first.
                    if not await self.client.collection_exists(name):
                        raise
            if not self.local:  # local mode has no payload indexes (and warns about them)
                await self._create_indexes(name)
            self._sizes.add(dimensions)
        return name

    async def _create_indexes(self, name: str) -> None:
        keyword = models.KeywordIndexType.KEYWORD
        indexes: dict[str, models.KeywordIndexParams] = {
            "tenant_id": models.KeywordIndexParams(type=keyword, is_tenant=True),
            "collection_id": models.KeywordIndexParams(type=keyword),
            "document_id": models.KeywordIndexParams(type=keyword),
            "meta": models.KeywordIndexParams(type=keyword),
        }
        for field, params in indexes.items():
            await self.client.create_payload_index(name, field, field_schema=params)

    async def upsert(self, scope: VectorScope, points: Sequence[VectorPoint]) -> None:
        """Write the points in batches; if any batch fails, the batches written are removed."""
        if not points:
            return
        name = await self._collection(scope.dimensions)
        written: list[uuid.UUID] = []
        try:
            async with self._calling("upsert"):
                for first in range(0, len(points), UPSERT_BATCH):
                    batch = points[first : first + UPSERT_BATCH]
                    written.extend(point.chunk_id for point in batch)
                    await self.client.upsert(
                        name,
                        points=[
                            models.PointStruct(
                                id=str(point.chunk_id),
                                vector=np.asarray(point.vector, dtype=np.float32).tolist(),
                                payload={
                                    "tenant_id": str(scope.tenant_id),
                                    "collection_id": str(scope.collection_id),
                                    "document_id": str(point.document_id),
                                    "meta": sorted(
                                        metadata_keyword(key, value)
                                        for key, value in point.metadata.items()
                                    ),
                                },
                            )
                            for point in batch
                        ],
                        wait=True,
                    )
        except DependencyUnavailable:
            await self.discard(scope, written)
            raise

    async def discard(self, scope: VectorScope, chunk_ids: Sequence[uuid.UUID]) -> None:
        """Remove points on a failure path: best effort, never raises (a point whose chunk row
        does not exist is never returned by a search, it only takes room)."""
        if not chunk_ids:
            return
        try:
            await self.delete_points(scope, chunk_ids)
        except DependencyUnavailable:
            logger.warning(
                "qdrant: %d points of a failed write could not be removed", len(chunk_ids)
            )

    async def delete_points(self, scope: VectorScope, chunk_ids: Sequence[uuid.UUID]) -> None:
        """Remove these chunks' points."""
        if not chunk_ids:
            return
        name = await self._collection(scope.dimensions)
        async with self._calling("delete"):
            await self.client.delete(
                name,
                points_selector=models.PointIdsList(points=[str(i) for i in chunk_ids]),
                wait=True,
            )

    async def delete_document(self, scope: VectorScope, document_id: uuid.UUID) -> None:
        """Remove every point of a document (of this tenant's collection)."""
        await self._delete_matching(
            scope,
            [
                *_scope_conditions(scope),
                models.FieldCondition(
                    key="document_id", match=models.MatchValue(value=str(document_id))
                ),
            ],
        )

    async def delete_collection(self, scope: VectorScope) -> None:
        """Remove every point of a collection."""
        await self._delete_matching(scope, _scope_conditions(scope))

    async def _delete_matching(self, scope: VectorScope, must: list[models.Condition]) -> None:
        name = await self._collection(scope.dimensions)
        async with self._calling("delete"):
            await self.client.delete(
                name,
                points_selector=models.FilterSelector(filter=models.Filter(must=must)),
                wait=True,
            )

    async def search(
        self,
        scope: VectorScope,
        vector: npt.NDArray[np.float32],
        *,
        limit: int,
        filters: Mapping[str, Any],
    ) -> list[VectorHit]:
        """Ids and cosine similarities of the nearest points (the rows are read by the caller)."""
        name = await self._collection(scope.dimensions)
        async with self._calling("search"):
            response = await self.client.query_points(
                name,
                query=np.asarray(vector, dtype=np.float32).tolist(),
                query_filter=models.Filter(
                    must=[*_scope_conditions(scope), *_metadata_conditions(filters)]
                ),
                limit=limit,
                with_payload=False,
                with_vectors=False,
            )
        return [
            VectorHit(uuid.UUID(str(point.id)), float(point.score)) for point in response.points
        ]

    async def search_in(
        self,
        session: AsyncSession,
        scope: VectorScope,
        vector: npt.NDArray[np.float32],
        *,
        limit: int,
        filters: Mapping[str, Any],
    ) -> list[VectorHit]:
        """:meth:`search`: Qdrant reads no chunk rows, so there is nothing to read in
        ``session``; the caller reads the hits' rows in its snapshot."""
        return await self.search(scope, vector, limit=limit, filters=filters)

    async def ensure_index(self, dimensions: int) -> None:
        """Nothing yet: the Qdrant collection of a size, and its indexes, are created on the
        first use of that size."""

    async def count(self, scope: VectorScope) -> int:
        """Points of the collection (exact count)."""
        name = await self._collection(scope.dimensions)
        async with self._calling("count"):
            result = await self.client.count(
                name, count_filter=models.Filter(must=_scope_conditions(scope)), exact=True
            )
        return int(result.count)

    async def ping(self) -> str:
        """List the collections: the server answers (or the local engine is open)."""
        await self.client.get_collections()
        return self.kind

    async def aclose(self) -> None:
        """Close the client (and release a local folder's lock)."""
        await self.client.close()
