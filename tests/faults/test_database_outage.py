"""PostgreSQL stopped under load, with real processes: ``synthstack serve`` (each backend) on a
PostgreSQL the test owns, clients in threads writing (``rag/index`` of small documents, each 200
remembered with its chunk count) and reading (``rag/search``, and embeddings with the cache off)
while PostgreSQL is stopped (``pg_ctl stop``, fast) and started again on the same socket.

During the outage every request answers within :data:`BOUND_SECONDS`, and every one that needs
the database is a 503 ``dependency_unavailable`` problem (never a 500, never a hang); ``/ready`` is
a 503. Once PostgreSQL is back the same server process serves again, and every document it
acknowledged before is stored whole.

The bound: with PostgreSQL stopped, a new connection is refused at once (its socket is gone), so
nothing waits on the server; the pool (5 + 10 overflow connections, a checkout waiting at most
``pool_timeout``, 30 s, SQLAlchemy's default) is not exhausted by refused connections, and
``pool_pre_ping`` replaces the connections the stop cut before a request uses them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.support import AUTH, Server, owned_postgres

#: How long PostgreSQL stays down.
OUTAGE_SECONDS = 8.0
#: The longest any request may take while PostgreSQL is down (or coming back).
BOUND_SECONDS = 10.0
#: How soon after PostgreSQL is back the service must serve again.
RECOVERY_SECONDS = 30.0
COLLECTION = "outage"


@dataclass
class Answer:
    kind: str  # "index", "search" or "embed"
    started: float
    ended: float
    status: int  # 0: no answer (the client gave up)
    code: str | None
    content_type: str


class Load:
    """Writers and readers in threads until :meth:`finish`."""

    def __init__(self, base: str, writers: int = 2, readers: int = 2) -> None:
        self.base = base
        self.answers: list[Answer] = []
        self.acknowledged: dict[str, int] = {}  # document id -> chunks created
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [
            threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(writers)
        ] + [threading.Thread(target=self._read, args=(n,), daemon=True) for n in range(readers)]
        for thread in self.threads:
            thread.start()

    def _send(self, client: httpx.Client, kind: str, path: str, body: dict[str, Any]) -> Answer:
        started = time.monotonic()
        try:
            response = client.post(path, json=body, headers=AUTH)
        except httpx.TransportError:
            answer = Answer(kind, started, time.monotonic(), 0, None, "")
        else:
            problem = response.headers.get("content-type", "").startswith("application/problem")
            answer = Answer(
                kind,
                started,
                time.monotonic(),
                response.status_code,
                response.json().get("code") if problem else None,
                response.headers.get("content-type", ""),
            )
            if kind == "index" and response.status_code == 200:
                with self.lock:
                    self.acknowledged[body["document_id"]] = response.json()["chunks_created"]
        with self.lock:
            self.answers.append(answer)
        return answer

    def _write(self, writer: int) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            n = 0
            while not self.done.is_set():
                document_id = f"w{writer}-{n}"
                content = "\n\n".join(
                    f"Note {document_id}.{p}: the heron {p} waits by pond {n} at dawn."
                    for p in range(1 + n % 3)
                )
                body = {
                    "content": content,
                    "source": f"{document_id}.txt",
                    "collection": COLLECTION,
                    "document_id": document_id,
                    "chunk_size": 16,
                    "chunk_overlap": 0,
                }
                if self._send(client, "index", "/api/v1/rag/index", body).status != 200:
                    time.sleep(0.2)
                n += 1

    def _read(self, reader: int) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            n = 0
            while not self.done.is_set():
                if n % 2:
                    body: dict[str, Any] = {"text": f"reader {reader} asks {n}"}
                    self._send(client, "embed", "/api/v1/embeddings/generate", body)
                else:
                    body = {"query": f"heron by pond {n}", "collection": COLLECTION}
                    self._send(client, "search", "/api/v1/rag/search", body)
                n += 1
                time.sleep(0.05)

    def between(self, start: float, end: float) -> list[Answer]:
        with self.lock:
            return [a for a in self.answers if a.started >= start and a.ended <= end]

    def finish(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=90)


@pytest.mark.parametrize("backend", ["fastapi", "django"])
def test_postgresql_stopped_under_load_is_a_503_and_the_service_recovers(
    backend: str, tmp_path: Path
) -> None:
    with owned_postgres(f"outage-{backend}") as (postgres, url):
        server = Server(
            backend,
            url,
            tmp_path / "server.log",
            # Every embedding is computed (no cache), every key looked up at once.
            {"SYNTHSTACK_CACHE_MAX_ENTRIES": "0", "SYNTHSTACK_KEY_CACHE_SECONDS": "0"},
        )
        load: Load | None = None
        try:
            server.wait_ready()
            first = {"content": "The heron waits.", "source": "first.txt", "collection": COLLECTION}
            created = httpx.post(f"{server.base}/api/v1/rag/index", json=first, headers=AUTH)
            assert created.status_code == 200, created.text  # the collection searched exists
            load = Load(server.base)
            time.sleep(3)  # under load
            with load.lock:
                assert load.acknowledged, (load.answers, server.output()[-4000:])
            stopped = time.monotonic()
            postgres.stop()
            time.sleep(OUTAGE_SECONDS / 2)
            ready = httpx.get(f"{server.base}/ready", timeout=BOUND_SECONDS)
            assert ready.status_code == 503, ready.text
            checks = ready.json()["checks"]
            assert checks["database"]["status"] == "error", checks
            time.sleep(OUTAGE_SECONDS / 2)
            restarted = time.monotonic()
            assert postgres.start() == url  # the same server, on the same socket
            # The service serves again by itself: a write and a read succeed soon.
            recovered = False
            while time.monotonic() - restarted < RECOVERY_SECONDS:
                after = load.between(restarted, time.monotonic())
                if {a.kind for a in after if a.status == 200} >= {"index", "search"}:
                    recovered = True
                    break
                time.sleep(0.25)
            load.finish()
            assert recovered, (load.between(restarted, time.monotonic()), server.output()[-6000:])
            assert httpx.get(f"{server.base}/ready", timeout=30).status_code == 200
            assert server.process.poll() is None  # never restarted

            # No 500, no hang, ever; every request the outage met answered in time.
            assert all(a.status in {200, 503} for a in load.answers), [
                a for a in load.answers if a.status not in {200, 503}
            ]
            outage = load.between(stopped, restarted)
            met = [a for a in load.answers if a.ended >= stopped and a.started <= restarted]
            assert all(a.ended - a.started <= BOUND_SECONDS for a in met), max(
                a.ended - a.started for a in met
            )
            # What needs the database is a 503 problem while it is down.
            needing = [
                a for a in outage if a.kind in {"index", "search"} and a.started > stopped + 1
            ]
            assert len(needing) >= 10, outage
            assert all(
                a.status == 503
                and a.code == "dependency_unavailable"
                and a.content_type.startswith("application/problem+json")
                for a in needing
            ), needing
            # Every failure is that problem.
            failed = [a for a in load.answers if a.status == 503]
            assert failed and {a.code for a in failed} == {"dependency_unavailable"}

            # Every acknowledged document is there, whole.
            assert len(load.acknowledged) >= 5
            with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as client:
                for document_id, chunks in load.acknowledged.items():
                    stored = client.get(
                        f"/api/v1/rag/documents/{document_id}", params={"collection": COLLECTION}
                    )
                    assert stored.status_code == 200, (document_id, stored.text)
                    assert stored.json()["chunks"] == chunks, (document_id, stored.json())
        finally:
            if load is not None:
                load.finish()
            server.stop()
