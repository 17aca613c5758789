"""RAG with its vectors in Qdrant (qdrant-client's local mode) and its rows in real PostgreSQL:
search, re-indexing without mixtures, deletions, tenant isolation, a vector write that fails, and
the outbox of deletions Qdrant owes after an outage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, models
from sqlalchemy import text

from synthstack_core import NotFound, Settings, SynthStack
from synthstack_core.errors import DependencyUnavailable
from synthstack_core.schemas.rag import DocumentListParams, IndexRequest, SearchRequest
from synthstack_core.stores.qdrant import UPSERT_BATCH, QdrantStore
from synthstack_core.stores.rag import RagRepository, VectorSweep
from synthstack_core.stores.vectors import VectorScope

KEY = "rag-qdrant-key-0001"
CATS = "Cats are small carnivorous felines. A cat purrs when it is content and sleeps a lot."
MARKETS = "Stock markets fell sharply on Monday as investors worried about interest rates."
DOGS = "Dogs are loyal companions; a dog barks at strangers and loves long walks."
VERSIONS = {
    "a": " ".join(f"Alpha version paragraph {i} about cats." for i in range(60)),
    "b": " ".join(f"Bravo edition section {i} about cats." for i in range(45)),
}


def _settings(database_url: str, qdrant_path: str) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
        SYNTHSTACK_API_KEYS=f"alpha:{KEY}",
        SYNTHSTACK_MIGRATE_ON_START=False,
        SYNTHSTACK_CACHE_MAX_ENTRIES=0,
        SYNTHSTACK_VECTOR_STORE="qdrant",
        SYNTHSTACK_QDRANT_PATH=qdrant_path,
    )


@pytest.fixture(scope="module")
async def stack(module_database_url: str) -> AsyncIterator[SynthStack]:
    async with SynthStack(_settings(module_database_url, ":memory:")) as started:
        yield started


def _qdrant(stack: SynthStack) -> QdrantStore:
    stores = [store for store in stack._vector_stores if isinstance(store, QdrantStore)]
    assert len(stores) == 1
    return stores[0]


def _index(content: str, collection: str, document_id: str, **extra: Any) -> IndexRequest:
    return IndexRequest.model_validate(
        {
            "content": content,
            "source": f"{document_id}.txt",
            "collection": collection,
            "document_id": document_id,
            **extra,
        }
    )


def _search(query: str, collection: str, **extra: Any) -> SearchRequest:
    return SearchRequest.model_validate({"query": query, "collection": collection, **extra})


async def _scope(stack: SynthStack, tenant: str, collection: str) -> VectorScope:
    async with stack.database.session() as session:
        row = (
            await session.execute(
                text(
                    "SELECT c.tenant_id, c.id, c.dimensions FROM rag_collections c"
                    " JOIN tenants t ON t.id = c.tenant_id"
                    " WHERE t.name = :tenant AND c.name = :name"
                ),
                {"tenant": tenant, "name": collection},
            )
        ).one()
    return VectorScope(row[0], row[1], row[2])


async def _chunk_ids(stack: SynthStack, collection_scope: VectorScope, document: str) -> set[str]:
    async with stack.database.session() as session:
        rows = await session.execute(
            text(
                "SELECT c.id FROM rag_chunks c JOIN rag_documents d ON d.id = c.document_id"
                " WHERE d.collection_id = :collection_id AND d.external_id = :document"
            ),
            {"collection_id": collection_scope.collection_id, "document": document},
        )
        return {str(chunk_id) for chunk_id in rows.scalars()}


async def _point_ids(store: QdrantStore, scope: VectorScope) -> set[str]:
    """Every point Qdrant holds for the collection (scrolled, not searched)."""
    found: set[str] = set()
    offset: Any = None
    while True:
        points, offset = await store.client.scroll(
            store.collection_name(scope.dimensions),
            scroll_filter=models.Filter(
                must=[
                    models.FieldCondition(
                        key="collection_id",
                        match=models.MatchValue(value=str(scope.collection_id)),
                    )
                ]
            ),
            limit=256,
            offset=offset,
        )
        found.update(str(point.id) for point in points)
        if offset is None:
            return found


async def test_index_and_search_in_every_mode(stack: SynthStack) -> None:
    rag = stack.rag
    for number, content in enumerate((CATS, MARKETS, DOGS)):
        meta = {"topic": ["animals", "finance", "animals"][number], "rank": number}
        done = await rag.index("alpha", _index(content, "modes", f"doc-{number}", metadata=meta))
        assert done.chunks_created == 1
    for mode in ("lexical", "dense", "hybrid"):
        found = await rag.search("alpha", _search("why does my cat purr", "modes", mode=mode))
        assert found.results[0].document_id == "doc-0", mode
        first = found.results[0]
        assert first.content == CATS and (first.span.start, first.span.end) == (0, len(CATS))
    dense = await rag.search("alpha", _search("why does my cat purr", "modes", mode="dense"))
    assert [r.document_id for r in dense.results][:1] == ["doc-0"]
    assert all(-1.0 <= r.score <= 1.0 for r in dense.results)
    assert dense.results == sorted(dense.results, key=lambda r: -r.score)
    for mode in ("dense", "hybrid"):
        filtered = await rag.search(
            "alpha", _search("animals", "modes", mode=mode, filter={"topic": {"in": ["finance"]}})
        )
        assert [r.document_id for r in filtered.results] == ["doc-1"], mode
        by_number = await rag.search(
            "alpha", _search("animals", "modes", mode=mode, filter={"rank": 2.0})
        )
        assert [r.document_id for r in by_number.results] == ["doc-2"], mode
        either = await rag.search(
            "alpha", _search("animals", "modes", mode=mode, filter={"rank": {"in": [0, 2]}})
        )
        assert {r.document_id for r in either.results} == {"doc-0", "doc-2"}, mode
        as_text = await rag.search(
            "alpha", _search("animals", "modes", mode=mode, filter={"rank": "2"})
        )
        assert as_text.results == [], mode  # "2" is not 2, as in jsonb
    strict = await rag.search("alpha", _search("cat", "modes", mode="dense", min_score=0.99))
    assert strict.results == []
    # The rows carry no vector; Qdrant holds exactly one point per chunk.
    scope = await _scope(stack, "alpha", "modes")
    async with stack.database.session() as session:
        stored = await session.scalar(
            text("SELECT count(embedding) FROM rag_chunks WHERE collection_id = :id"),
            {"id": scope.collection_id},
        )
    assert stored == 0
    chunk_ids = set().union(*[await _chunk_ids(stack, scope, f"doc-{n}") for n in range(3)])
    assert await _point_ids(_qdrant(stack), scope) == chunk_ids
    stats = {c.name: c for c in (await rag.stats("alpha")).collections}
    assert stats["modes"].store == "qdrant"
    assert stats["modes"].vectors == stats["modes"].chunks == 3


async def test_a_search_inside_a_transaction_finds_what_a_search_finds(stack: SynthStack) -> None:
    """``search_in`` (the interface's search in the caller's transaction) answers as ``search``:
    Qdrant reads no rows, and its hits carry none for the caller to read in its snapshot."""
    rag = stack.rag
    for number, content in enumerate((CATS, MARKETS, DOGS)):
        await rag.index("alpha", _index(content, "in-transaction", f"doc-{number}"))
    store = _qdrant(stack)
    scope = await _scope(stack, "alpha", "in-transaction")
    (cat,) = await _chunk_ids(stack, scope, "doc-0")
    (point,) = await store.client.retrieve(
        store.collection_name(scope.dimensions), [cat], with_vectors=True
    )
    vector = np.asarray(point.vector, dtype=np.float32)
    alone = await store.search(scope, vector, limit=3, filters={})
    async with stack.database.session() as session, session.begin():
        inside = await store.search_in(session, scope, vector, limit=3, filters={})
    assert inside == alone
    assert len(inside) == 3 and str(inside[0].chunk_id) == cat
    assert all(hit.chunk is None for hit in inside)


async def test_tenants_never_see_each_other(stack: SynthStack) -> None:
    rag = stack.rag
    await rag.index("alpha", _index(CATS, "shared-name", "secret-doc"))
    await rag.index("beta", _index(MARKETS, "shared-name", "their-doc"))
    for mode in ("dense", "hybrid"):
        beta = await rag.search(
            "beta", _search("cat purrs felines", "shared-name", mode=mode, limit=50)
        )
        assert {r.document_id for r in beta.results} == {"their-doc"}, mode
    with pytest.raises(NotFound):
        await rag.search("gamma", _search("cat", "shared-name", mode="dense"))
    # In Qdrant itself, beta's scope finds none of alpha's points.
    store = _qdrant(stack)
    alpha_scope = await _scope(stack, "alpha", "shared-name")
    beta_scope = await _scope(stack, "beta", "shared-name")
    probe = np.ones(alpha_scope.dimensions, dtype=np.float32)
    beta_hits = await store.search(beta_scope, probe, limit=100, filters={})
    alpha_points = await _point_ids(store, alpha_scope)
    assert beta_hits and not {str(hit.chunk_id) for hit in beta_hits} & alpha_points
    # A scope mixing alpha's tenant with beta's collection finds nothing.
    crossed = VectorScope(alpha_scope.tenant_id, beta_scope.collection_id, beta_scope.dimensions)
    assert await store.search(crossed, probe, limit=100, filters={}) == []
    assert (await rag.stats("beta")).collections[0].vectors == 1


async def test_deleting_removes_points(stack: SynthStack) -> None:
    rag = stack.rag
    store = _qdrant(stack)
    await rag.index("alpha", _index(CATS, "deletions", "gone"))
    await rag.index("alpha", _index(DOGS, "deletions", "stays"))
    scope = await _scope(stack, "alpha", "deletions")
    gone = await _chunk_ids(stack, scope, "gone")
    stays = await _chunk_ids(stack, scope, "stays")
    assert await _point_ids(store, scope) == gone | stays
    deleted = await rag.delete_document("alpha", "deletions", "gone")
    assert deleted.chunks_deleted == 1
    for mode in ("dense", "hybrid"):
        found = await rag.search("alpha", _search("cat purrs", "deletions", mode=mode))
        assert "gone" not in {r.document_id for r in found.results}, mode
    assert await _point_ids(store, scope) == stays
    assert await store.client.retrieve(store.collection_name(384), ids=sorted(gone)) == []
    # A collection of its own to watch (not another test's: the order of tests may vary).
    await rag.index("alpha", _index(MARKETS, "deletions-bystander", "markets"))
    other = await _scope(stack, "alpha", "deletions-bystander")
    before_other = await _point_ids(store, other)
    assert len(before_other) == 1
    removed = await rag.delete_collection("alpha", "deletions")
    assert (removed.documents_deleted, removed.chunks_deleted) == (1, 1)
    assert await _point_ids(store, scope) == set()
    assert await store.count(scope) == 0
    assert await _point_ids(store, other) == before_other, "another collection lost points"
    with pytest.raises(NotFound):
        await rag.search("alpha", _search("cat", "deletions", mode="dense"))


async def test_reindexing_replaces_the_points(stack: SynthStack) -> None:
    rag = stack.rag
    store = _qdrant(stack)
    first = await rag.index(
        "alpha", _index(VERSIONS["a"], "reindex", "doc", chunk_size=32, chunk_overlap=0)
    )
    scope = await _scope(stack, "alpha", "reindex")
    old = await _chunk_ids(stack, scope, "doc")
    assert len(old) == first.chunks_created > 3
    assert await _point_ids(store, scope) == old
    second = await rag.index("alpha", _index(MARKETS, "reindex", "doc"))
    new = await _chunk_ids(stack, scope, "doc")
    assert second.chunks_created == len(new) == 1 and not new & old
    assert await _point_ids(store, scope) == new
    found = await rag.search("alpha", _search("Alpha version paragraph", "reindex", mode="dense"))
    assert [r.content for r in found.results] == [MARKETS]


async def test_concurrent_reindexing_never_mixes(stack: SynthStack) -> None:
    """Four re-indexes of one document at once, with searches running all along: no search and
    no final state ever mixes two versions, and Qdrant ends with exactly the final chunks."""
    rag = stack.rag
    store = _qdrant(stack)
    await rag.index(
        "alpha", _index(VERSIONS["a"], "race", "contested", chunk_size=32, chunk_overlap=0)
    )
    scope = await _scope(stack, "alpha", "race")
    writing = True
    seen: list[set[bool]] = []

    async def search_all_along() -> None:
        while writing:
            for mode in ("dense", "hybrid"):
                found = await rag.search(
                    "alpha", _search("paragraph section cats", "race", mode=mode, limit=100)
                )
                seen.append({"Alpha" in r.content for r in found.results})
            await asyncio.sleep(0)

    searcher = asyncio.create_task(search_all_along())
    try:
        for _ in range(3):
            await asyncio.gather(
                *(
                    rag.index(
                        "alpha",
                        _index(body, "race", "contested", chunk_size=32, chunk_overlap=0),
                    )
                    for body in (VERSIONS["a"], VERSIONS["b"], VERSIONS["a"], VERSIONS["b"])
                )
            )
            chunks = await _chunk_ids(stack, scope, "contested")
            assert await _point_ids(store, scope) == chunks, "points and rows differ"
            found = await rag.search(
                "alpha", _search("paragraph section cats", "race", mode="dense", limit=100)
            )
            assert len(found.results) == len(chunks)
            assert len({"Alpha" in r.content for r in found.results}) == 1
    finally:
        writing = False
        await searcher
    assert seen and all(len(kinds) <= 1 for kinds in seen), "a search mixed two versions"


async def test_a_failed_vector_write_leaves_nothing_behind(
    empty_database_url: str, tmp_path: Path
) -> None:
    """Qdrant goes away mid-ingestion (its client is closed): 503, the database keeps the previous
    version and nothing of the new one, and Qdrant still holds the previous points."""
    folder = str(tmp_path / "qdrant")
    async with SynthStack(_settings(empty_database_url, folder)) as stack:
        rag = stack.rag
        assert (await stack.readiness()).checks.vector_store.status == "ok"  # type: ignore[union-attr]
        await rag.index("alpha", _index(CATS, "atomic", "kept"))
        scope = await _scope(stack, "alpha", "atomic")
        kept_chunks = await _chunk_ids(stack, scope, "kept")
        await _qdrant(stack).client.close()
        with pytest.raises(DependencyUnavailable):
            await rag.index("alpha", _index(DOGS, "atomic", "kept"))
        with pytest.raises(DependencyUnavailable):
            await rag.index("alpha", _index(DOGS, "atomic", "new-one"))
        ready = await stack.readiness()
        assert ready.status == "not_ready" and ready.checks.vector_store is not None
        assert ready.checks.vector_store.status == "error"
        document = await rag.get_document("alpha", "atomic", "kept")
        assert document.characters == len(CATS), "the previous version must survive"
        assert await _chunk_ids(stack, scope, "kept") == kept_chunks
        with pytest.raises(NotFound):
            await rag.get_document("alpha", "atomic", "new-one")
        counts = await _count_rows(stack, scope)
        assert counts[0] == 1 and counts[1] == len(kept_chunks) and counts[2] > 0
        with pytest.raises(DependencyUnavailable):
            await rag.search("alpha", _search("cat", "atomic", mode="dense"))
    reopened = QdrantStore(path=folder)
    try:
        assert await _point_ids(reopened, scope) == kept_chunks
    finally:
        await reopened.aclose()


async def test_an_unusable_qdrant_collection_fails_cleanly(stack: SynthStack) -> None:
    """The vectors' Qdrant collection is replaced by one of another size: every write is refused
    by Qdrant itself; the document is not half-written."""
    rag = stack.rag
    await rag.index("alpha", _index(CATS, "broken", "kept"))
    scope = await _scope(stack, "alpha", "broken")
    kept = await _chunk_ids(stack, scope, "kept")
    store = _qdrant(stack)
    name = store.collection_name(scope.dimensions)
    snapshot = await store.client.scroll(name, limit=10_000, with_vectors=True)
    await store.client.delete_collection(name)
    await store.client.create_collection(
        name, vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE)
    )
    try:
        with pytest.raises(DependencyUnavailable):
            await rag.index("alpha", _index(DOGS, "broken", "kept"))
        with pytest.raises(DependencyUnavailable):
            await rag.index("alpha", _index(DOGS, "broken", f"new-{uuid.uuid4().hex[:6]}"))
        assert (await rag.get_document("alpha", "broken", "kept")).characters == len(CATS)
        listed = await rag.list_documents("alpha", DocumentListParams(collection="broken"))
        assert [d.document_id for d in listed.documents] == ["kept"]
        assert await _chunk_ids(stack, scope, "kept") == kept
    finally:
        await store.client.delete_collection(name)
        await store.client.create_collection(
            name,
            vectors_config=models.VectorParams(
                size=scope.dimensions, distance=models.Distance.COSINE
            ),
        )
        await store.client.upsert(
            name,
            points=[
                models.PointStruct(id=p.id, vector=p.vector, payload=p.payload)  # type: ignore[arg-type]
                for p in snapshot[0]
            ],
        )


# -- vector deletions Qdrant owes: the outbox ---------------------------------------------------
#
# Qdrant goes away for real: its local client (on a folder) is closed, so every call fails as a
# closed client does, and comes back as a new client on the same folder, holding the same points.
# Where the outage must start at a precise moment (after a write, after a first batch), the real
# client's method is wrapped to close the client once it has done its work: nothing of ours is
# replaced, and every count below is Qdrant's own.


@pytest.fixture
async def outage(empty_database_url: str, tmp_path: Path) -> AsyncIterator[tuple[SynthStack, str]]:
    folder = str(tmp_path / "qdrant")
    async with SynthStack(_settings(empty_database_url, folder)) as started:
        yield started, folder


def _repository(stack: SynthStack) -> RagRepository:
    return stack.rag._repository


def _bring_back(store: QdrantStore, folder: str) -> None:
    """Qdrant is reachable again (a new client on the folder the closed one released)."""
    store.client = AsyncQdrantClient(path=folder)


def _close_after(
    store: QdrantStore, method: str, monkeypatch: pytest.MonkeyPatch, calls: int = 1
) -> None:
    """Qdrant goes away right after the client's ``method`` has done its work ``calls`` times."""
    client = store.client
    real = getattr(client, method)
    done = 0

    async def then_close(*args: Any, **kwargs: Any) -> Any:
        nonlocal done
        result = await real(*args, **kwargs)
        done += 1
        if done == calls:
            await client.close()
        return result

    monkeypatch.setattr(client, method, then_close)


async def _outbox(stack: SynthStack) -> list[dict[str, Any]]:
    """The recorded deletions, oldest first."""
    async with stack.database.session() as session:
        rows = await session.execute(
            text(
                "SELECT id, store, kind, collection_id, document_id, chunk_ids, attempts,"
                " last_error FROM rag_vector_deletions ORDER BY id"
            )
        )
        return [dict(row._mapping) for row in rows]


def _is_class_name(error: str | None) -> bool:
    return error is not None and error.isidentifier()


async def _count_rows(stack: SynthStack, scope: VectorScope) -> tuple[int, int, int]:
    async with stack.database.session() as session:
        counts = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM rag_documents WHERE collection_id = :id),"
                    " (SELECT count(*) FROM rag_chunks WHERE collection_id = :id),"
                    " (SELECT count(*) FROM rag_postings WHERE collection_id = :id)"
                ),
                {"id": scope.collection_id},
            )
        ).one()
    return int(counts[0]), int(counts[1]), int(counts[2])


async def test_a_document_deleted_while_qdrant_is_down(outage: tuple[SynthStack, str]) -> None:
    """The deletion succeeds for the caller and is recorded; Qdrant keeps the points until a
    sweep finds it back, and then holds exactly the remaining chunks."""
    stack, folder = outage
    rag, store, repository = stack.rag, _qdrant(stack), _repository(stack)
    await rag.index("alpha", _index(CATS, "outbox-doc", "gone"))
    await rag.index("alpha", _index(DOGS, "outbox-doc", "stays"))
    scope = await _scope(stack, "alpha", "outbox-doc")
    gone = await _chunk_ids(stack, scope, "gone")
    stays = await _chunk_ids(stack, scope, "stays")
    assert await _outbox(stack) == []

    await store.client.close()
    deleted = await rag.delete_document("alpha", "outbox-doc", "gone")
    assert deleted.chunks_deleted == len(gone) == 1
    with pytest.raises(NotFound):
        await rag.get_document("alpha", "outbox-doc", "gone")
    assert await _chunk_ids(stack, scope, "gone") == set()
    [record] = await _outbox(stack)
    assert (record["store"], record["kind"], record["attempts"]) == ("qdrant", "document", 1)
    assert record["collection_id"] == scope.collection_id and record["document_id"] is not None
    assert _is_class_name(record["last_error"]), record["last_error"]
    assert await repository.pending_vector_deletions() == 1
    # Still down: a sweep fails, counts the attempt and keeps the record.
    still_down = await repository.sweep_vector_deletions()
    assert still_down.done == () and still_down.failed == (record["id"],)
    assert [r["attempts"] for r in await _outbox(stack)] == [2]

    _bring_back(store, folder)
    assert await _point_ids(store, scope) == gone | stays, "the points were left behind"
    swept = await repository.sweep_vector_deletions()
    assert swept.done == (record["id"],) and swept.failed == ()
    assert await _outbox(stack) == []
    assert await repository.pending_vector_deletions() == 0
    assert await _point_ids(store, scope) == stays
    documents, chunks, _ = await _count_rows(stack, scope)
    assert await store.count(scope) == chunks == len(stays) and documents == 1
    [stats] = [c for c in (await rag.stats("alpha")).collections if c.name == "outbox-doc"]
    assert stats.vectors == stats.chunks == 1
    assert await repository.sweep_vector_deletions() == VectorSweep()


async def test_a_collection_deleted_while_qdrant_is_down(
    empty_database_url: str, tmp_path: Path
) -> None:
    """Deleting a collection while Qdrant is down is recorded; the next start-up's sweep removes
    its points, and only its points."""
    folder = str(tmp_path / "qdrant")
    async with SynthStack(_settings(empty_database_url, folder)) as stack:
        rag, store = stack.rag, _qdrant(stack)
        await rag.index("alpha", _index(CATS, "outbox-col", "one"))
        await rag.index("alpha", _index(DOGS, "outbox-col", "two"))
        await rag.index("alpha", _index(MARKETS, "kept-col", "three"))
        scope = await _scope(stack, "alpha", "outbox-col")
        other = await _scope(stack, "alpha", "kept-col")
        doomed = await _chunk_ids(stack, scope, "one") | await _chunk_ids(stack, scope, "two")
        kept = await _chunk_ids(stack, other, "three")
        await store.client.close()
        removed = await rag.delete_collection("alpha", "outbox-col")
        assert (removed.documents_deleted, removed.chunks_deleted) == (2, len(doomed))
        with pytest.raises(NotFound):
            await rag.search("alpha", _search("cat", "outbox-col", mode="lexical"))
        assert await _count_rows(stack, scope) == (0, 0, 0)
        [record] = await _outbox(stack)
        assert (record["kind"], record["attempts"]) == ("collection", 1)
        assert record["collection_id"] == scope.collection_id
        assert record["document_id"] is None and record["chunk_ids"] is None
        assert _is_class_name(record["last_error"])
    left = QdrantStore(path=folder)
    try:
        assert await _point_ids(left, scope) == doomed, "the points were left behind"
    finally:
        await left.aclose()

    async with SynthStack(_settings(empty_database_url, folder)) as restarted:
        store = _qdrant(restarted)
        assert await _outbox(restarted) == [], "start-up did not sweep"
        assert await _point_ids(store, scope) == set()
        assert await store.count(scope) == 0
        assert await _point_ids(store, other) == kept, "another collection lost points"
        [stats] = (await restarted.rag.stats("alpha")).collections
        assert stats.name == "kept-col" and stats.vectors == stats.chunks == len(kept)


async def test_a_reindex_whose_old_points_outlive_the_commit(
    outage: tuple[SynthStack, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Qdrant goes away between the new version's points and the removal of the old ones: the
    re-index succeeds, the old points' removal is recorded, and the next write sweeps them."""
    stack, folder = outage
    rag, store = stack.rag, _qdrant(stack)
    first = await rag.index(
        "alpha", _index(VERSIONS["a"], "outbox-reindex", "doc", chunk_size=32, chunk_overlap=0)
    )
    scope = await _scope(stack, "alpha", "outbox-reindex")
    old = await _chunk_ids(stack, scope, "doc")
    assert len(old) == first.chunks_created > 3

    _close_after(store, "upsert", monkeypatch)
    second = await rag.index("alpha", _index(MARKETS, "outbox-reindex", "doc"))
    new = await _chunk_ids(stack, scope, "doc")
    assert second.chunks_created == len(new) == 1 and not new & old
    [record] = await _outbox(stack)
    assert (record["kind"], record["attempts"]) == ("points", 1)
    assert {str(i) for i in record["chunk_ids"]} == old
    assert _is_class_name(record["last_error"])

    monkeypatch.undo()
    _bring_back(store, folder)
    assert await _point_ids(store, scope) == old | new, "the old points were left behind"
    # The next write of a repository (here one sweeping before every write) carries it out.
    eager = RagRepository(
        stack.database, stack._vector_stores, default_store="qdrant", sweep_interval_seconds=0
    )
    assert await eager.delete_document("alpha", "outbox-reindex", "no-such-document") is None
    assert await _outbox(stack) == []
    assert await _point_ids(store, scope) == new
    found = await rag.search("alpha", _search("Alpha version paragraph", "outbox-reindex"))
    assert [r.content for r in found.results] == [MARKETS]
    [stats] = [c for c in (await rag.stats("alpha")).collections if c.name == "outbox-reindex"]
    assert stats.vectors == stats.chunks == 1


async def test_a_write_failing_after_its_first_batch_leaves_nothing(
    outage: tuple[SynthStack, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Qdrant goes away after the first batch of a large document's points (and so cannot take
    them back): 503, PostgreSQL keeps the previous version whole, and the points already written
    are recorded before they were written, so a sweep removes every one of them."""
    stack, folder = outage
    rag, store, repository = stack.rag, _qdrant(stack), _repository(stack)
    await rag.index("alpha", _index(CATS, "outbox-batch", "doc"))
    scope = await _scope(stack, "alpha", "outbox-batch")
    kept = await _chunk_ids(stack, scope, "doc")
    rows_before = await _count_rows(stack, scope)
    large = " ".join(f"Sentence {i} says that cat number {i} sleeps." for i in range(500))

    _close_after(store, "upsert", monkeypatch)
    with pytest.raises(DependencyUnavailable):
        await rag.index(
            "alpha", _index(large, "outbox-batch", "doc", chunk_size=16, chunk_overlap=0)
        )
    assert (await rag.get_document("alpha", "outbox-batch", "doc")).characters == len(CATS)
    assert await _chunk_ids(stack, scope, "doc") == kept
    assert await _count_rows(stack, scope) == rows_before
    [record] = await _outbox(stack)
    assert (record["kind"], record["attempts"]) == ("points", 1)
    written = {str(i) for i in record["chunk_ids"]}
    assert len(written) > UPSERT_BATCH and not written & kept

    monkeypatch.undo()
    _bring_back(store, folder)
    leftover = await _point_ids(store, scope) - kept
    assert len(leftover) == UPSERT_BATCH and leftover <= written, "the first batch was written"
    swept = await repository.sweep_vector_deletions()
    assert swept.done == (record["id"],)
    assert await _outbox(stack) == []
    assert await _point_ids(store, scope) == kept
    assert await store.count(scope) == rows_before[1]


async def test_concurrent_sweeps_never_share_a_record(outage: tuple[SynthStack, str]) -> None:
    """A record another worker holds is skipped, not waited for; two sweeps at once carry out
    disjoint records; together they remove every point of the deleted documents."""
    stack, folder = outage
    rag, store, repository = stack.rag, _qdrant(stack), _repository(stack)
    bodies = [CATS, DOGS, MARKETS, *VERSIONS.values()]
    names = [f"doc-{n}" for n in range(8)]
    for number, name in enumerate(names):
        await rag.index("alpha", _index(bodies[number % len(bodies)], "outbox-race", name))
    scope = await _scope(stack, "alpha", "outbox-race")
    await store.client.close()
    for name in names[:7]:
        await rag.delete_document("alpha", "outbox-race", name)
    records = [r["id"] for r in await _outbox(stack)]
    assert len(records) == 7
    _bring_back(store, folder)

    other = RagRepository(stack.database, stack._vector_stores, default_store="qdrant")
    async with stack.database.session() as held, held.begin():
        # Another worker is carrying out the oldest record.
        await held.execute(
            text("SELECT id FROM rag_vector_deletions WHERE id = :id FOR UPDATE"),
            {"id": records[0]},
        )
        with anyio.fail_after(20):
            first, second = await asyncio.gather(
                repository.sweep_vector_deletions(limit=3), other.sweep_vector_deletions(limit=3)
            )
    assert first.failed == second.failed == ()
    assert not set(first.done) & set(second.done), "two sweeps carried out one record"
    assert records[0] not in first.done + second.done, "a held record was taken"
    assert len(first.done) + len(second.done) == 6
    assert [r["id"] for r in await _outbox(stack)] == [records[0]]
    assert (await repository.sweep_vector_deletions()).done == (records[0],)
    assert await _point_ids(store, scope) == await _chunk_ids(stack, scope, names[7])
    assert await store.count(scope) == (await _count_rows(stack, scope))[1]
