"""Each store's ``ping()`` against the real engine (PostgreSQL, pgvector, Redis, the in-process
cache, Qdrant's local engine), and the readiness entries built from them in one place."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions
from sqlalchemy.exc import OperationalError

from synthstack_core.features.embeddings import EmbeddingModelRegistry, EmbeddingService
from synthstack_core.features.health import (
    READINESS_TIMEOUT_SECONDS,
    dependency_check,
    readiness,
)
from synthstack_core.providers.local_onnx import LOCAL_MODEL, LocalOnnxEmbeddingProvider
from synthstack_core.schemas.common import Limits
from synthstack_core.stores.cache import MemoryCache, RedisCache
from synthstack_core.stores.database import Database
from synthstack_core.stores.qdrant import QdrantStore
from synthstack_core.stores.vectors import PgVectorStore


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


async def test_database_ping(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert await database.ping() == "postgresql"
    finally:
        await database.aclose()
    gone = Database(f"postgresql://nobody@127.0.0.1:{_closed_port()}/nothing")
    try:
        with pytest.raises(OperationalError):
            await gone.ping()
        entry = await dependency_check(gone.ping, kind=gone.kind, required=True)
        assert entry.model_dump(exclude={"latency_ms"}) == {
            "status": "error",
            "required": True,
            "kind": "postgresql",
            "detail": "unreachable (OperationalError)",
        }
    finally:
        await gone.aclose()


async def test_pgvector_ping(database_url: str, postgres_server_url: str) -> None:
    database = Database(database_url)
    try:
        described = await PgVectorStore(database).ping()
        assert described.startswith("pgvector 0.")
        entry = await dependency_check(PgVectorStore(database).ping, kind="pgvector", required=True)
        assert entry.status == "ok" and entry.kind == described and entry.latency_ms > 0
    finally:
        await database.aclose()
    bare = Database(postgres_server_url)  # the maintenance database: no vector extension
    try:
        with pytest.raises(LookupError):
            await PgVectorStore(bare).ping()
    finally:
        await bare.aclose()


async def test_redis_ping(redis_server: Any) -> None:
    cache = RedisCache(redis_server.url)
    try:
        assert await cache.ping() == "redis"
    finally:
        await cache.aclose()
    gone = RedisCache(f"redis://127.0.0.1:{_closed_port()}/0")
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await gone.ping()
    finally:
        await gone.aclose()


async def test_memory_cache_ping() -> None:
    assert await MemoryCache(8).ping() == "memory"


async def test_qdrant_ping(tmp_path: Path) -> None:
    store = QdrantStore(path=tmp_path / "qdrant")
    assert await store.ping() == "qdrant-local"
    await store.aclose()
    with pytest.raises(Exception):  # noqa: B017 - whatever the closed client raises
        await store.ping()
    entry = await dependency_check(store.ping, kind=store.kind, required=True)
    assert entry.status == "error" and entry.detail is not None
    assert entry.detail.startswith("unreachable (")


async def test_a_probe_that_hangs_times_out() -> None:
    async def hangs() -> str:
        import anyio

        await anyio.sleep(60)
        return "never"

    entry = await dependency_check(hangs, kind="slow", required=False, time_limit=0.05)
    assert entry.status == "error" and entry.detail == "unreachable (TimeoutError)"
    assert 50 <= entry.latency_ms < 1000 * READINESS_TIMEOUT_SECONDS


async def test_readiness_with_every_store_down() -> None:
    """The entries a client gets when PostgreSQL and Redis are gone (the bodies /ready gave before
    the stores' checks became pings)."""
    dead = f"postgresql://nobody@127.0.0.1:{_closed_port()}/nothing"
    database, vectors_database = Database(dead), Database(dead)
    cache = RedisCache(f"redis://127.0.0.1:{_closed_port()}/0")
    embeddings = EmbeddingService(
        EmbeddingModelRegistry([LocalOnnxEmbeddingProvider()], LOCAL_MODEL.id),
        MemoryCache(8),
        limits=Limits(max_text_chars=1000, max_batch_size=8),
        ttl_seconds=60,
    )
    try:
        report = await readiness(database, cache, embeddings, PgVectorStore(vectors_database))
    finally:
        for closing in (database, vectors_database, cache):
            await closing.aclose()
    body = report.model_dump(mode="json")
    assert body["status"] == "not_ready"
    checks = {name: dict(check) for name, check in body["checks"].items()}
    assert all(check.pop("latency_ms") >= 0 for check in checks.values())
    assert checks == {
        "database": {
            "status": "error",
            "required": True,
            "kind": "postgresql",
            "detail": "unreachable (OperationalError)",
        },
        "cache": {
            "status": "error",
            "required": False,
            "kind": "redis",
            "detail": "unreachable (ConnectionError); serving uncached, rate limits counted in each process",
        },
        "vector_store": {
            "status": "error",
            "required": True,
            "kind": "pgvector",
            "detail": "unavailable (OperationalError)",
        },
        "embedding_model": {
            "status": "ok",
            "required": True,
            "kind": checks["embedding_model"]["kind"],
        },
    }
    assert checks["embedding_model"]["kind"].startswith(LOCAL_MODEL.id)
