"""A PostgreSQL that stops answering (rather than refusing) costs seconds, not minutes.

A server that is refused fails at once (``tests/faults/test_database_outage.py``); one that accepts
TCP connections and never answers — a host gone without closing its sockets, a failover whose new
address is not serving yet, a network partition — would make every new connection wait for the
operating system to give up (about two minutes). ``SYNTHSTACK_DATABASE_CONNECT_TIMEOUT`` bounds it.

The unanswering server is real: a TCP proxy in front of the test's PostgreSQL that forwards, then
cuts every session and holds new connections open without a byte of answer (the kernel completes
their handshakes), then forwards again. Requests go through :meth:`SynthStack.handle`, as both
adapters send them.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from synthstack_core import Settings, SynthStack
from synthstack_core.http import HttpRequest, HttpResponse
from synthstack_core.operations import by_id as operation
from synthstack_core.stores.database import with_timeouts

KEY = "timeouts-test-key-0001"
HEADERS = {"authorization": f"Bearer {KEY}"}
TIMEOUT = 2  # seconds; libpq's smallest effective connect_timeout


def test_the_timeouts_are_added_to_the_url_unless_it_has_them() -> None:
    url = make_url(with_timeouts("postgres://app:s3cret@db.example:6543/synth", 5))
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "app",
        "s3cret",
        "db.example",
        6543,
        "synth",
    )
    assert dict(url.query) == {
        "connect_timeout": "5",
        "keepalives": "1",
        "keepalives_idle": "5",
        "keepalives_interval": "5",
        "keepalives_count": "2",
        "tcp_user_timeout": "15000",
    }
    given = make_url(
        with_timeouts("postgresql://app@/synth?host=/run/pg&connect_timeout=30&keepalives=0", 5)
    )
    assert given.query["host"] == "/run/pg"
    assert given.query["connect_timeout"] == "30"
    assert given.query["keepalives"] == "0"
    assert given.query["tcp_user_timeout"] == "15000"
    assert with_timeouts("postgresql://app@db/synth", 0) == "postgresql://app@db/synth"


class SilencingProxy:
    """A TCP proxy to a PostgreSQL (a TCP address or a Unix socket) that can go silent."""

    def __init__(self, upstream: str | tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self.listener.getsockname()[1]
        self.silent = False
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self.upstream, str):
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
            return upstream
        return socket.create_connection(self.upstream)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                self._open.append(client)
                if self.silent:  # held open, never read, never answered
                    continue
            upstream = self._connect_upstream()
            with self._lock:
                self._open.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for sock in (source, target):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def go_silent(self) -> None:
        """Cut every session (as a failover does) and answer nothing from now on."""
        with self._lock:
            self.silent = True
            cut, self._open = self._open, []
        for sock in cut:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def forward(self) -> None:
        """Serve again (the connections held in silence are closed)."""
        self.go_silent()
        with self._lock:
            self.silent = False

    def close(self) -> None:
        self.listener.close()
        self.go_silent()


@contextmanager
def proxy_url(database_url: str) -> Iterator[tuple[SilencingProxy, str]]:
    url = make_url(database_url)
    host = url.query.get("host")
    socket_dir = host if isinstance(host, str) else None
    if socket_dir is not None and socket_dir.startswith("/"):
        port = url.query.get("port") or url.port or 5432
        proxy = SilencingProxy(str(Path(socket_dir) / f".s.PGSQL.{port}"))
    else:
        proxy = SilencingProxy((url.host or "127.0.0.1", url.port or 5432))
    through = url.set(host="127.0.0.1", port=proxy.port).difference_update_query(["host", "port"])
    try:
        yield proxy, through.render_as_string(hide_password=False)
    finally:
        proxy.close()


@pytest.fixture(scope="module")
def proxied(module_database_url: str) -> Iterator[tuple[SilencingProxy, str]]:
    with proxy_url(module_database_url) as pair:
        yield pair


@pytest.fixture(scope="module")
async def stack(proxied: tuple[SilencingProxy, str]) -> AsyncIterator[SynthStack]:
    settings = Settings(
        DATABASE_URL=proxied[1],
        SYNTHSTACK_API_KEYS=f"timeouts:{KEY}",
        SYNTHSTACK_MIGRATE_ON_START=False,
        SYNTHSTACK_DATABASE_CONNECT_TIMEOUT=TIMEOUT,
        SYNTHSTACK_WORKER="none",
    )
    async with SynthStack(settings) as started:
        yield started


async def _get(stack: SynthStack, operation_id: str) -> tuple[HttpResponse, float]:
    op = operation(operation_id)
    started = time.monotonic()
    response = await stack.handle(op, HttpRequest("GET", op.path, HEADERS, b""))
    return response, time.monotonic() - started


async def test_a_silent_database_is_a_503_within_the_connect_timeout_and_recovers(
    stack: SynthStack, proxied: tuple[SilencingProxy, str]
) -> None:
    proxy, _ = proxied
    response, _ = await _get(stack, "rag-list-collections")
    assert response.status == 200, response.body

    proxy.go_silent()
    try:
        for _ in range(2):  # the first finds its pooled connection cut; both must connect anew
            response, took = await _get(stack, "rag-list-collections")
            assert response.status == 503, response.body
            problem = json.loads(response.body)
            assert problem["code"] == "dependency_unavailable"
            assert took < TIMEOUT + 3, f"answered after {took:.1f} s"
        ready, took = await _get(stack, "health-readiness")
        assert ready.status == 503
        assert took < TIMEOUT + 3, f"readiness answered after {took:.1f} s"
    finally:
        proxy.forward()

    deadline = time.monotonic() + 15
    while True:
        response, _ = await _get(stack, "rag-list-collections")
        if response.status == 200 or time.monotonic() > deadline:
            break
    assert response.status == 200, response.body


async def test_a_silent_database_at_start_fails_the_start_within_the_timeout(
    module_database_url: str,
) -> None:
    with proxy_url(module_database_url) as (proxy, url):
        proxy.go_silent()
        settings = Settings(
            DATABASE_URL=url,
            SYNTHSTACK_API_KEYS=f"timeouts:{KEY}",
            SYNTHSTACK_DATABASE_CONNECT_TIMEOUT=TIMEOUT,
            SYNTHSTACK_WORKER="none",
        )
        started = time.monotonic()
        with pytest.raises(Exception, match="timeout expired"):
            async with SynthStack(settings):
                pass
        assert time.monotonic() - started < TIMEOUT + 5
