"""PostgreSQL going away in the middle of an ingestion: the caller gets a 503, the document's
transaction leaves nothing behind (a previous version stays whole), and the next ingestion works.

The ingestion's backend is killed from a second connection (``pg_terminate_backend``, what a
database restart or failover does to a session) at a point chosen deterministically:

- while its transaction is open between two statements, after it has written the document row and
  the new chunks (an engine event names the moment: the postings ``INSERT`` is about to be sent);
- while one of its statements runs: the test holds ``FOR UPDATE`` on the collection row, so the
  re-index's ``INSERT INTO rag_chunks`` waits on it (its foreign-key check), after the document row
  was updated and the old chunks and postings deleted; the backend is killed while it waits.

Requests go through :meth:`SynthStack.handle`, as both adapters send them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, text

from synthstack_core import Settings, SynthStack
from synthstack_core.http import HttpRequest, HttpResponse
from synthstack_core.modules import BUILTIN_MODULES
from synthstack_core.operations import Operation
from synthstack_core.operations import by_id as operation
from synthstack_core.registry import Module
from synthstack_core.registry import operation as declare
from synthstack_core.schemas.health import HealthResponse
from synthstack_core.schemas.rag import SearchRequest
from synthstack_core.stores.database import Database

KEY = "outage-test-key-0001"
TENANT = "outage"
HEADERS = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
COLLECTION = "outage"
OLD = " ".join(f"Kestrel note {i}: the falcon hovers over the meadow." for i in range(40))
NEW = " ".join(f"Harbour log {i}: the ferry leaves at dawn with cargo." for i in range(200))


class StatementRunner:
    """A test module's service: runs the statements it was given on the stack's own database, so
    the whole pipeline (:meth:`SynthStack.handle`) meets what PostgreSQL raises."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.statements: tuple[str, ...] = ()
        self.value = ""

    @declare("test-run-statements")
    async def run(self) -> HealthResponse:
        async with self.database.session() as session:
            for statement in self.statements:
                await session.execute(text(statement), {"value": self.value})
        raise AssertionError("the statements were expected to fail")


RUNNER = Module(
    "statements",
    StatementRunner,
    lambda stack: StatementRunner(stack.database),
    contract={
        "paths": {
            "/test/statements": {
                "get": {
                    "operationId": "test-run-statements",
                    "responses": {"200": {"description": "never: the statements fail"}},
                }
            }
        }
    },
)


@pytest.fixture(scope="module")
async def stack(module_database_url: str) -> AsyncIterator[SynthStack]:
    settings = Settings(
        DATABASE_URL=module_database_url,
        SYNTHSTACK_API_KEYS=f"{TENANT}:{KEY}",
        SYNTHSTACK_MIGRATE_ON_START=False,
        SYNTHSTACK_CACHE_MAX_ENTRIES=0,
    )
    async with SynthStack(settings, modules=(*BUILTIN_MODULES, RUNNER)) as started:
        yield started


async def _index(stack: SynthStack, document_id: str, content: str) -> HttpResponse:
    index = operation("rag-index")
    body = {
        "content": content,
        "source": f"{document_id}.txt",
        "collection": COLLECTION,
        "document_id": document_id,
        "chunk_size": 32,
        "chunk_overlap": 0,
    }
    return await stack.handle(
        index, HttpRequest("POST", index.path, HEADERS, json.dumps(body).encode())
    )


@dataclass(frozen=True)
class Stored:
    """What the database holds of one document, and of its collection."""

    document: tuple[Any, ...] | None
    chunks: list[tuple[Any, ...]]
    postings: int
    collection_chunks: int
    collection_postings: int
    orphan_postings: int


async def _stored(url: str, document_id: str) -> Stored:
    """Read from a connection of its own, outside the service's pool."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        collection = "SELECT id FROM rag_collections WHERE name = %(c)s"
        params = {"c": COLLECTION, "d": document_id}
        document = await (
            await conn.execute(
                "SELECT id, content_sha256, characters, chunk_count, updated_at FROM rag_documents"
                f" WHERE collection_id = ({collection}) AND external_id = %(d)s",
                params,
            )
        ).fetchone()
        chunks = await (
            await conn.execute(
                "SELECT k.id, k.position, k.content, k.lexeme_count, k.embedding::text"
                " FROM rag_chunks k JOIN rag_documents d ON d.id = k.document_id"
                f" WHERE d.collection_id = ({collection}) AND d.external_id = %(d)s"
                " ORDER BY k.position",
                params,
            )
        ).fetchall()
        counts = await (
            await conn.execute(
                "SELECT"
                " (SELECT count(*) FROM rag_postings p JOIN rag_chunks k ON k.id = p.chunk_id"
                "  JOIN rag_documents d ON d.id = k.document_id"
                f"  WHERE d.collection_id = ({collection}) AND d.external_id = %(d)s),"
                f" (SELECT count(*) FROM rag_chunks WHERE collection_id = ({collection})),"
                f" (SELECT count(*) FROM rag_postings WHERE collection_id = ({collection})),"
                " (SELECT count(*) FROM rag_postings p"
                "  WHERE NOT EXISTS (SELECT FROM rag_chunks k WHERE k.id = p.chunk_id))",
                params,
            )
        ).fetchone()
    assert counts is not None
    return Stored(document, chunks, *counts)


def _assert_unavailable(response: HttpResponse) -> None:
    assert response.status == 503, response.body
    problem = json.loads(response.body)
    assert problem["code"] == "dependency_unavailable"
    assert problem["detail"] == "The database is unavailable."


async def test_a_new_document_killed_mid_transaction_leaves_nothing(
    stack: SynthStack, module_database_url: str
) -> None:
    assert (await _index(stack, "seed", OLD)).status == 200  # the collection exists
    before = await _stored(module_database_url, "harbour")
    assert before.document is None and before.collection_chunks > 0
    engine = stack.database.engine.sync_engine
    seen: list[tuple[str, bool, bool]] = []

    def kill(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The postings are written by a statement whose CTE inserts them (stores/rag/documents.py).
        if "INSERT INTO rag_postings" not in statement or seen:
            return
        pid = conn.connection.driver_connection.info.backend_pid
        with psycopg.connect(module_database_url, autocommit=True) as admin:
            # Mid-transaction, after its writes: an open transaction holding a transaction id.
            state = admin.execute(
                "SELECT state, backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = %s",
                (pid,),
            ).fetchone()
            assert state is not None
            killed = admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()
            assert killed is not None
            seen.append((state[0], state[1], killed[0]))

    event.listen(engine, "before_cursor_execute", kill)
    try:
        response = await _index(stack, "harbour", NEW)
    finally:
        event.remove(engine, "before_cursor_execute", kill)
    assert [killed for *_, killed in seen] == [True]
    _assert_unavailable(response)
    after = await _stored(module_database_url, "harbour")
    assert after == before, "the killed ingestion left rows behind"
    assert after.orphan_postings == 0
    # It was killed inside its transaction, after writing (it held a transaction id).
    assert seen == [("idle in transaction", True, True)]

    # The pool has recovered: the same ingestion now succeeds, whole.
    again = await _index(stack, "harbour", NEW)
    assert again.status == 200, again.body
    created = json.loads(again.body)["chunks_created"]
    stored = await _stored(module_database_url, "harbour")
    assert stored.document is not None and stored.document[3] == created == len(stored.chunks)
    assert stored.postings > 0 and all(chunk[3] > 0 for chunk in stored.chunks)


async def test_a_reindex_killed_while_writing_keeps_the_previous_version(
    stack: SynthStack, module_database_url: str
) -> None:
    assert (await _index(stack, "kestrel", OLD)).status == 200
    previous = await _stored(module_database_url, "kestrel")
    assert previous.document is not None and len(previous.chunks) > 1 and previous.postings > 0
    async with (
        await psycopg.AsyncConnection.connect(module_database_url) as blocker,
        await psycopg.AsyncConnection.connect(module_database_url, autocommit=True) as admin,
    ):
        await blocker.execute(
            "SELECT 1 FROM rag_collections WHERE name = %s FOR UPDATE", (COLLECTION,)
        )
        ingestion = asyncio.create_task(_index(stack, "kestrel", NEW))
        # The ingestion's backend, once it waits on the lock this test holds.
        deadline = time.monotonic() + 60
        blocked = None
        while blocked is None and not ingestion.done() and time.monotonic() < deadline:
            blocked = await (
                await admin.execute(
                    "SELECT pid, query FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    (blocker.info.backend_pid,),
                )
            ).fetchone()
            if blocked is None:
                await asyncio.sleep(0.02)
        assert blocked is not None, "the ingestion never waited on the collection row"
        pid, query = blocked
        assert query.startswith("INSERT INTO rag_chunks"), query
        # By now its transaction has updated the document row and deleted the old chunks.
        killed = await (
            await admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
        ).fetchone()
        assert killed == (True,)
        await blocker.rollback()
    _assert_unavailable(await asyncio.wait_for(ingestion, 30))
    assert await _stored(module_database_url, "kestrel") == previous
    found = await stack.rag.search(
        TENANT,
        SearchRequest(query="falcon hovers over the meadow", collection=COLLECTION, mode="hybrid"),
    )
    assert found.results and {r.document_id for r in found.results} <= {"kestrel", "seed"}

    # The service still works: the re-index now replaces the previous version.
    again = await _index(stack, "kestrel", NEW)
    assert again.status == 200, again.body
    replaced = await _stored(module_database_url, "kestrel")
    assert replaced.document is not None and replaced.document[0] == previous.document[0]
    assert {chunk[0] for chunk in replaced.chunks}.isdisjoint(c[0] for c in previous.chunks)
    assert all("Harbour log" in chunk[2] for chunk in replaced.chunks)
    assert replaced.orphan_postings == 0


#: Statements whose last one PostgreSQL (or psycopg, before sending it) refuses because of the value
#: given: data exceptions, SQLSTATE class 22.
DATA_EXCEPTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "invalid text for a type": (("SELECT CAST(:value AS integer)",), "not a number"),
    "NUL in text": (("SELECT CAST(:value AS text)",), "a\x00b"),
    "string too long": (
        (
            "CREATE TEMPORARY TABLE refused (v varchar(3)) ON COMMIT DROP",
            "INSERT INTO refused VALUES (:value)",
        ),
        "abcdef",
    ),
    "NaN in JSON": (("SELECT CAST(:value AS jsonb)",), '{"a": NaN}'),
    "division by zero": (("SELECT 1 / CAST(:value AS integer)",), "0"),
}


def _running(stack: SynthStack, statements: tuple[str, ...], value: str) -> Operation:
    """The test module's operation, set to run ``statements`` with ``value``."""
    runner = stack.service(StatementRunner)
    runner.statements, runner.value = statements, value
    return next(op for op in stack.operations if op.operation_id == "test-run-statements")


@pytest.mark.parametrize("case", list(DATA_EXCEPTIONS))
async def test_a_value_the_database_refuses_is_the_callers_error(
    stack: SynthStack, case: str
) -> None:
    """A data exception is caused by a value of the request: a 422, not an outage's 503."""
    op = _running(stack, *DATA_EXCEPTIONS[case])
    response = await stack.handle(op, HttpRequest("GET", op.path, HEADERS))
    assert response.status == 422, response.body
    problem = json.loads(response.body)
    assert problem["code"] == "unstorable_value"
    assert problem["detail"] == "The request holds a value the database cannot store or compare."
    # The pool is fine: the next request is served.
    stats = operation("rag-stats")
    assert (await stack.handle(stats, HttpRequest("GET", stats.path, HEADERS))).status == 200


async def test_a_cancelled_statement_is_still_unavailability(stack: SynthStack) -> None:
    """What is no data exception stays a 503: a statement cancelled by its timeout (57014)."""
    op = _running(
        stack, ("SET LOCAL statement_timeout = 50", "SELECT pg_sleep(CAST(:value AS float))"), "5"
    )
    _assert_unavailable(await stack.handle(op, HttpRequest("GET", op.path, HEADERS)))
