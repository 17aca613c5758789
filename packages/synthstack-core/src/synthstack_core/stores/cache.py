"""The cache: Redis when ``REDIS_URL`` is set, an in-process LRU otherwise.

A Redis outage never fails a request: reads become misses and writes are dropped, and Redis is
retried after a short pause, so the service keeps working, uncached.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from synthstack_core.metrics import CACHE_HITS, CACHE_MISSES

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["Cache", "MemoryCache", "RedisCache"]

logger = logging.getLogger(__name__)


class Cache(ABC):
    """Bytes by string key, with a time to live.

    ``hits`` and ``misses`` count the keys looked up by :meth:`get_many` in this process (a key
    missed because the cache is unreachable is a miss); so do the metrics ``synthstack_cache_hits``
    and ``synthstack_cache_misses``, for every worker.
    """

    kind: str
    hits: int = 0
    misses: int = 0

    def _counted(self, found: list[bytes | None]) -> list[bytes | None]:
        hits = sum(value is not None for value in found)
        self.hits += hits
        self.misses += len(found) - hits
        if found:  # and for the metrics of every process (synthstack_core.metrics)
            CACHE_HITS.labels(self.kind).inc(hits)
            CACHE_MISSES.labels(self.kind).inc(len(found) - hits)
        return found

    @abstractmethod
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The value of each key, or ``None`` where there is none."""

    @abstractmethod
    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: int) -> None:
        """Store every item for ``ttl_seconds``."""

    @abstractmethod
    async def ping(self) -> str:
        """Really reach the cache (raises when it does not answer); returns :attr:`kind`."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class MemoryCache(Cache):
    """A bounded least-recently-used map in this process."""

    kind = "memory"

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Hits move to the most-recent end; expired entries are dropped."""
        now = time.monotonic()
        found: list[bytes | None] = []
        for key in keys:
            entry = self._items.get(key)
            if entry is None or entry[0] < now:
                if entry is not None:
                    del self._items[key]
                found.append(None)
                continue
            self._items.move_to_end(key)
            found.append(entry[1])
        return self._counted(found)

    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: int) -> None:
        """Insert and evict the least recently used beyond the bound."""
        if self._max <= 0:
            return
        expires = time.monotonic() + ttl_seconds
        for key, value in items.items():
            self._items[key] = (expires, value)
            self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    async def ping(self) -> str:
        """The in-process cache is always there."""
        return self.kind


class RedisCache(Cache):
    """Redis, with short timeouts and a pause after a failure so an outage costs little."""

    kind = "redis"

    def __init__(
        self, url: str, *, timeout_seconds: float = 0.5, pause_seconds: float = 5.0
    ) -> None:
        import redis.asyncio as aioredis

        self._client: redis.asyncio.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            health_check_interval=30,
        )
        self._pause = pause_seconds
        self._down_until = 0.0

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if self._available():
            logger.warning("redis unavailable, serving uncached for %.0fs: %s", self._pause, exc)
        self._down_until = time.monotonic() + self._pause

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """MGET; every key misses while Redis is down."""
        if not keys or not self._available():
            return self._counted([None] * len(keys))
        try:
            values = await self._client.mget(list(keys))
        except Exception as exc:  # any client or connection error: degrade, never fail
            self._failed(exc)
            return self._counted([None] * len(keys))
        return self._counted([v if isinstance(v, bytes) else None for v in values])

    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: int) -> None:
        """SET with expiry in one pipeline; dropped while Redis is down."""
        if not items or not self._available():
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, ex=ttl_seconds)
                await pipe.execute()
        except Exception as exc:
            self._failed(exc)

    async def ping(self) -> str:
        """PING; a failure also pauses the cache (see :meth:`get_many`), a success ends a pause."""
        try:
            await self._client.ping()  # type: ignore[misc]  # redis-py types ping as sync|async
        except Exception as exc:
            self._failed(exc)
            raise
        self._down_until = 0.0
        return self.kind

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
