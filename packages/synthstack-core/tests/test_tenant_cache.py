"""Every tenant's cache entries are its own: another tenant's identical request is a miss.

Proven by the cache's own hit and miss counters and by what Redis holds, never by timing; on the
in-process cache and on a real Redis, through the request pipeline with two API keys of two tenants.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis

from synthstack_core import Settings, SynthStack
from synthstack_core.http import HttpRequest
from synthstack_core.operations import by_id as operation

KEY_A = "tenant-cache-key-a-0001"
KEY_B = "tenant-cache-key-b-0001"


def _settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "SYNTHSTACK_API_KEYS": f"tenant-a:{KEY_A},tenant-b:{KEY_B}",
        "SYNTHSTACK_KEY_CACHE_SECONDS": 0,
        "SYNTHSTACK_MIGRATE_ON_START": False,
        **overrides,
    }
    return Settings(**values)


async def _post(stack: SynthStack, operation_id: str, key: str, body: dict[str, Any]) -> Any:
    op = operation(operation_id)
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    response = await stack.handle(
        op, HttpRequest("POST", op.path, headers, json.dumps(body).encode())
    )
    assert response.status in (200, 201), response.body
    return json.loads(response.body)


class Counters:
    """Hits and misses of the stack's cache since the last reading."""

    def __init__(self, stack: SynthStack) -> None:
        self._cache = stack.cache
        self._seen = (self._cache.hits, self._cache.misses)

    def read(self) -> tuple[int, int]:
        now = (self._cache.hits, self._cache.misses)
        delta = (now[0] - self._seen[0], now[1] - self._seen[1])
        self._seen = now
        return delta


@pytest.fixture(params=["memory", "redis"])
async def stack(
    request: pytest.FixtureRequest, module_database_url: str, redis_server: Any
) -> AsyncIterator[SynthStack]:
    redis_url = {"REDIS_URL": redis_server.url} if request.param == "redis" else {}
    async with SynthStack(_settings(module_database_url, **redis_url)) as started:
        assert started.cache.kind == request.param
        yield started


async def test_another_tenants_identical_request_is_a_miss(stack: SynthStack) -> None:
    counters = Counters(stack)
    body = {"text": f"a text only tenant a embedded ({stack.cache.kind})"}
    first = await _post(stack, "embeddings-generate", KEY_A, body)
    assert counters.read() == (0, 1)
    again = await _post(stack, "embeddings-generate", KEY_A, body)
    assert counters.read() == (1, 0)  # the same tenant's: a hit
    other = await _post(stack, "embeddings-generate", KEY_B, body)
    assert counters.read() == (0, 1)  # another tenant's: a miss, embedded again
    assert first == again and other["embedding"] == first["embedding"]
    assert (await _post(stack, "embeddings-generate", KEY_B, body)) == other
    assert counters.read() == (1, 0)


async def test_indexed_chunks_are_cached_as_their_tenants(stack: SynthStack) -> None:
    """RAG indexing embeds a tenant's chunks: they are that tenant's entries, and so are the
    texts of similarity and classification requests."""
    counters = Counters(stack)
    text = f"Chunk text that tenant a indexed into its collection ({stack.cache.kind})."
    indexed = await _post(
        stack,
        "rag-index",
        KEY_A,
        {
            "content": text,
            "source": "test",
            "collection": "tenant-cache",
            "document_id": stack.cache.kind,
        },
    )
    assert indexed["chunks_created"] == 1
    assert counters.read() == (0, 1)
    await _post(stack, "embeddings-generate", KEY_B, {"text": text})
    assert counters.read() == (0, 1)
    await _post(stack, "embeddings-generate", KEY_A, {"text": text})
    assert counters.read() == (1, 0)
    pair = {"text1": text, "text2": f"another text ({stack.cache.kind})"}
    await _post(stack, "embeddings-similarity", KEY_A, pair)
    assert counters.read() == (1, 1)
    await _post(stack, "embeddings-similarity", KEY_B, pair)
    assert counters.read() == (1, 1)  # tenant b's own entry of `text`, made above
    classify = {"text": f"The team won the cup ({stack.cache.kind}).", "categories": ["sports"]}
    await _post(stack, "analysis-classify", KEY_A, classify)
    assert counters.read() == (0, 3)
    await _post(stack, "analysis-classify", KEY_B, classify)
    assert counters.read() == (0, 3)
    await _post(stack, "analysis-classify", KEY_B, classify)
    assert counters.read() == (3, 0)


async def test_redis_holds_each_tenants_entries_under_its_name(
    module_database_url: str, redis_server: Any
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    settings = _settings(module_database_url, REDIS_URL=redis_server.url)
    try:
        async with SynthStack(settings) as stack:
            text = "a text whose entries are counted in redis"
            await _post(stack, "embeddings-generate", KEY_A, {"text": text})
            await _post(stack, "embeddings-generate", KEY_B, {"text": text})
            await _post(stack, "embeddings-generate", KEY_B, {"text": text})
        keys = {k.decode() for k in client.keys("synthstack:emb:*")}
        mine = sorted(k.rsplit(":", 3)[0] for k in keys if k.endswith(_digest(text)))
        assert mine == ["synthstack:emb:v2:tenant:tenant-a", "synthstack:emb:v2:tenant:tenant-b"]
    finally:
        client.close()


async def test_sharing_across_tenants_is_explicit(module_database_url: str) -> None:
    """``SYNTHSTACK_CACHE_SHARED_ACROSS_TENANTS=true`` (off by default) shares the entries."""
    assert Settings().cache_shared_across_tenants is False
    settings = _settings(module_database_url, SYNTHSTACK_CACHE_SHARED_ACROSS_TENANTS=True)
    async with SynthStack(settings) as stack:
        counters = Counters(stack)
        body = {"text": "a text shared by every tenant"}
        await _post(stack, "embeddings-generate", KEY_A, body)
        assert counters.read() == (0, 1)
        await _post(stack, "embeddings-generate", KEY_B, body)
        assert counters.read() == (1, 0)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_each_document_gets_a_token_counter_of_its_own() -> None:
    """The cl100k counter remembers the words it counted (a repeated word is a look-up), so a
    counter shared by tenants would tell by its speed whether a word was indexed before."""
    from synthstack_core.providers.openai import OPENAI_MODELS, OpenAIEmbeddingProvider
    from synthstack_core.providers.openai_client import OpenAIClient

    provider = OpenAIEmbeddingProvider(
        OpenAIClient(api_key="sk-test", base_url="http://127.0.0.1:9", timeout=1.0, max_retries=0)
    )
    first = provider.token_counter(OPENAI_MODELS[0])
    first.count("a word only the first document holds: zxqwvjkpl")
    second = provider.token_counter(OPENAI_MODELS[0])
    assert second is not first
    assert getattr(second, "_cache", None) == {}
