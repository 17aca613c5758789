"""Deletions an external vector store (Qdrant) still owes, recorded in the database.

**Deletions Qdrant owes go through an outbox**, ``rag_vector_deletions`` (migration ``0004``), so
a failing store never leaves points behind for good:

- deleting a document or a collection, and re-indexing one (its previous chunks' points), records
  the deletion in the transaction that deletes the rows; after the commit the repository asks the
  store, and deletes the record once the store confirms. A failure keeps the record (``attempts``,
  the error's class name) and is only logged: the caller's deletion did happen.
- the points of a version being written are recorded *before* they are written, in a transaction
  of their own (held back from sweeps for :data:`WRITE_LEASE_SECONDS`); the document's transaction
  deletes that record first thing (which locks it), so its commit removes the record with the
  points becoming live, and a rollback — or a crash — leaves it to remove the points.
- :meth:`VectorDeletionOutbox.sweep_vector_deletions` retries recorded deletions (least tried, then
  oldest first), each record locked ``FOR UPDATE SKIP LOCKED`` so two workers never carry out the
  same one. It runs at start-up and at the start of a write (at most every
  :data:`SWEEP_INTERVAL_SECONDS` per process; not at all when every configured store keeps its
  vectors in the chunk rows).

Replaying a record late is always safe: chunk, document and collection ids are random UUIDs that
are never reused, so a record can only address the points it was written for.
"""

# SQL here interpolates only module constants and generated placeholder names; every value travels
# as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from synthstack_core.errors import DependencyUnavailable
from synthstack_core.stores.rag.base import RepositoryBase
from synthstack_core.stores.vectors import VectorScope, VectorStore

__all__ = [
    "OPPORTUNISTIC_SWEEP_BATCH",
    "SWEEP_BATCH",
    "SWEEP_INTERVAL_SECONDS",
    "WRITE_LEASE_SECONDS",
    "DeletionKind",
    "VectorDeletionOutbox",
    "VectorSweep",
]

logger = logging.getLogger("synthstack.rag")

#: Recorded vector deletions a sweep carries out at most (oldest first).
SWEEP_BATCH = 100
#: ... and one that runs at the start of a write, whose caller waits for it.
OPPORTUNISTIC_SWEEP_BATCH = 20
#: Seconds between two opportunistic sweeps of one repository (at start-up and before writes).
SWEEP_INTERVAL_SECONDS = 30.0
#: How long the record of the points of a document being written is held back from sweeps. The
#: writing transaction locks the record within a round trip of its commit; until then (and after a
#: crash, until this passes) a sweep must not take it.
WRITE_LEASE_SECONDS = 300

DeletionKind = Literal["points", "document", "collection"]


@dataclass(frozen=True)
class VectorSweep:
    """What carrying out recorded vector deletions did: the records whose deletion the store
    confirmed (and that are gone), and those it failed (kept, for a later sweep)."""

    done: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()


class VectorDeletionOutbox(RepositoryBase):
    """Records the deletions external stores owe (``rag_vector_deletions``) and carries them out."""

    _sweep_interval: float
    _next_sweep: float

    def _external_stores(self) -> list[str]:
        """The configured stores whose deletions are recorded (those outside the chunk rows)."""
        return sorted(name for name, store in self._stores.items() if not store.in_chunk_rows)

    @staticmethod
    async def _record_deletion(
        session: AsyncSession,
        store: VectorStore,
        scope: VectorScope,
        kind: DeletionKind,
        *,
        document_id: uuid.UUID | None = None,
        chunk_ids: Sequence[uuid.UUID] | None = None,
        hold_seconds: int = 0,
    ) -> int:
        """Record a deletion ``store`` owes, in ``session``'s transaction; its id."""
        found = await session.scalar(
            text(
                "INSERT INTO rag_vector_deletions (store, tenant_id, collection_id, dimensions,"
                " kind, document_id, chunk_ids, not_before)"
                " VALUES (:store, :tenant_id, :collection_id, :dimensions, :kind, :document_id,"
                " CAST(:chunk_ids AS uuid[]), now() + make_interval(secs => :hold))"
                " RETURNING id"
            ),
            {
                "store": store.name,
                "tenant_id": scope.tenant_id,
                "collection_id": scope.collection_id,
                "dimensions": scope.dimensions,
                "kind": kind,
                "document_id": document_id,
                "chunk_ids": list(chunk_ids) if chunk_ids is not None else None,
                "hold": hold_seconds,
            },
        )
        assert isinstance(found, int)
        return found

    async def _carry_out(self, *, ids: Sequence[int] | None, limit: int) -> VectorSweep:
        """Carry out recorded deletions: these ``ids``, or the due ones, least tried then oldest
        first (at most ``limit``; a record that keeps failing cannot hold the others back). Each
        record is locked (``FOR UPDATE SKIP LOCKED``: one a writer or another
        worker holds is skipped) until the store has answered; a confirmed deletion removes its
        record, a failure counts an attempt, and the store is not asked again in this call."""
        stores = self._external_stores()
        if not stores:
            return VectorSweep()
        params: dict[str, Any] = {"stores": stores, "limit": limit}
        if ids is None:
            where = "not_before <= now()"
        else:
            where = "id = ANY(CAST(:ids AS bigint[]))"
            params["ids"] = list(ids)
        done: list[int] = []
        failed: list[int] = []
        async with self._db.session() as session, session.begin():
            rows = (
                await session.execute(
                    text(
                        "SELECT id, store, tenant_id, collection_id, dimensions, kind,"
                        " document_id, chunk_ids, attempts FROM rag_vector_deletions"
                        f" WHERE {where} AND store = ANY(CAST(:stores AS text[]))"
                        " ORDER BY attempts, id LIMIT :limit FOR UPDATE SKIP LOCKED"
                    ),
                    params,
                )
            ).all()
            failing: set[str] = set()
            for row in rows:
                record_id, name, tenant_id, collection_id, dimensions, kind = row[:6]
                document_id, chunk_ids, attempts = row[6:]
                if name in failing:
                    continue
                store = self._stores[name]
                scope = VectorScope(tenant_id, collection_id, dimensions)
                try:
                    if kind == "points":
                        await store.delete_points(scope, chunk_ids)
                    elif kind == "document":
                        await store.delete_document(scope, document_id)
                    else:
                        await store.delete_collection(scope)
                except DependencyUnavailable as exc:
                    failing.add(name)
                    failed.append(record_id)
                    # The class of the cause, never its text (a provider's may carry a URL or key).
                    error = type(exc.__cause__ or exc).__name__[:64]
                    await session.execute(
                        text(
                            "UPDATE rag_vector_deletions SET attempts = attempts + 1,"
                            " last_attempt_at = now(), last_error = :error, not_before = now()"
                            " WHERE id = :id"
                        ),
                        {"id": record_id, "error": error},
                    )
                    logger.warning(
                        "vector store %s: a %s deletion stays pending (attempt %d failed: %s)",
                        name,
                        kind,
                        attempts + 1,
                        error,
                    )
                else:
                    done.append(record_id)
            if done:
                await session.execute(
                    text("DELETE FROM rag_vector_deletions WHERE id = ANY(CAST(:ids AS bigint[]))"),
                    {"ids": done},
                )
        return VectorSweep(tuple(done), tuple(failed))

    async def _settle(self, record_id: int | None) -> None:
        """Carry out one recorded deletion now (after its transaction ended). Never raises: a
        deletion that fails here stays recorded for a sweep."""
        if record_id is None:
            return
        try:
            with anyio.CancelScope(shield=True):
                await self._carry_out(ids=[record_id], limit=1)
        except SQLAlchemyError as exc:
            logger.warning(
                "vector store: a recorded deletion was not carried out (%s); a sweep will retry",
                type(exc).__name__,
            )

    async def sweep_vector_deletions(self, *, limit: int = SWEEP_BATCH) -> VectorSweep:
        """Retry pending vector deletions, least tried then oldest first (at most ``limit``): for
        each, ask its store again and remove the record once the store confirms. Safe to run in
        several workers at once (a record another holds is skipped); stops asking a store at its
        first failure."""
        return await self._carry_out(ids=None, limit=limit)

    async def sweep_vector_deletions_soon(self) -> None:
        """The opportunistic sweep (at start-up and at the start of each write): at most once per
        interval in this repository, a small batch, nothing at all when every configured store
        keeps its vectors in the chunk rows, and never an error of the caller's."""
        if not self._external_stores():
            return
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_interval
        try:
            await self._carry_out(ids=None, limit=OPPORTUNISTIC_SWEEP_BATCH)
        except SQLAlchemyError as exc:
            logger.warning("vector store: pending deletions not swept (%s)", type(exc).__name__)

    async def pending_vector_deletions(self) -> int:
        """How many vector deletions stores still owe: recorded and not confirmed (the records
        of documents being written, held back from sweeps, are not counted)."""
        async with self._db.session() as session:
            found = await session.scalar(
                text("SELECT count(*) FROM rag_vector_deletions WHERE not_before <= now()")
            )
        return int(found or 0)
