"""Usage per tenant and hour, counted in this process and written to PostgreSQL every few seconds.

What is counted (``docs/architecture.md``, "Usage"):

* every request of an authenticated caller, by operation and status, when the pipeline's
  observability step records it (:meth:`UsageRecorder.request`);
* what the features know a request used (:func:`count`): texts embedded, chat-model prompt and
  completion tokens (as the model reports them), seconds of audio transcribed, bytes of documents
  ingested. They are counted for the tenant the pipeline bound to the request
  (:meth:`UsageRecorder.bind`); outside a request (the library called directly) nothing is.

The counts are added up in memory, by ``(tenant, hour, operation, status)`` and ``(tenant, hour)``,
and written every ``SYNTHSTACK_USAGE_FLUSH_SECONDS`` in one transaction (``write``: an upsert that
adds to the stored counts), so a request costs a dictionary update, not a database round trip. A
write that fails keeps its counts for the next one (logged); closing the recorder writes what is
left. A crash (or ``SIGKILL``) loses what was counted since the last write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, fields

__all__ = [
    "HOUR_SECONDS",
    "Quantities",
    "RequestKey",
    "UsageBatch",
    "UsageRecorder",
    "UsageScope",
    "count",
    "current_scope",
]

logger = logging.getLogger(__name__)

HOUR_SECONDS = 3600

#: ``(tenant, hour, operation_id, status)``; the hour is the UNIX time of its start (UTC).
RequestKey = tuple[str, int, str, int]
#: ``(tenant, hour)``.
QuantityKey = tuple[str, int]


@dataclass
class Quantities:
    """What requests used, as the features count it."""

    texts_embedded: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    audio_seconds: float = 0.0
    bytes_ingested: int = 0

    def add(self, other: Quantities) -> None:
        """Add ``other``'s counts to these."""
        for name in _QUANTITY_NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in _QUANTITY_NAMES)


_QUANTITY_NAMES = tuple(f.name for f in fields(Quantities))


@dataclass(frozen=True)
class UsageBatch:
    """Counts to add to the stored ones."""

    requests: Mapping[RequestKey, int] = field(default_factory=dict)
    quantities: Mapping[QuantityKey, Quantities] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.requests or self.quantities)


def hour_of(moment: float) -> int:
    """The start of the UTC hour holding the UNIX time ``moment``."""
    return int(moment // HOUR_SECONDS) * HOUR_SECONDS


class UsageRecorder:
    """Counts usage in memory and writes it with ``write`` every ``flush_seconds``.

    Counting is thread-safe (a lock around a dictionary update). :meth:`start` starts the
    periodic write on the running event loop; :meth:`aclose` stops it and writes what is left.
    """

    def __init__(
        self,
        write: Callable[[UsageBatch], Awaitable[None]],
        *,
        flush_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._write = write
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: dict[RequestKey, int] = {}
        self._quantities: dict[QuantityKey, Quantities] = {}
        self._flushing: asyncio.Lock | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: Writes that failed (their counts were kept for the next one).
        self.failed_writes = 0

    # -- counting --------------------------------------------------------------------------

    def request(self, tenant: str, operation_id: str, status: int) -> None:
        """Count one answered request of ``tenant``."""
        key = (tenant, hour_of(self._clock()), operation_id, status)
        with self._lock:
            if self._closed:
                self._dropped("request", tenant)
                return
            self._requests[key] = self._requests.get(key, 0) + 1

    def add(self, tenant: str, quantities: Quantities) -> None:
        """Count what a request of ``tenant`` used."""
        if not quantities:
            return
        key = (tenant, hour_of(self._clock()))
        with self._lock:
            if self._closed:
                self._dropped("quantities", tenant)
                return
            self._quantities.setdefault(key, Quantities()).add(quantities)

    @staticmethod
    def _dropped(what: str, tenant: str) -> None:
        # A stream that ends after the stack closed: said, not silently lost.
        logger.warning(
            "usage %s of tenant %r counted after the recorder closed: lost", what, tenant
        )

    @property
    def pending(self) -> UsageBatch:
        """What is counted and not written yet (a copy)."""
        with self._lock:
            return UsageBatch(
                dict(self._requests),
                {key: Quantities(**vars(value)) for key, value in self._quantities.items()},
            )

    # -- binding to a request --------------------------------------------------------------

    def bind(self, tenant: str | None) -> None:
        """Make ``tenant`` the one the features' counts (:func:`count`) of this request (the
        current context) go to; ``None``: nobody's."""
        _SCOPE.set(None if tenant is None else UsageScope(self, tenant))

    # -- writing ---------------------------------------------------------------------------

    def _take(self) -> UsageBatch:
        with self._lock:
            batch = UsageBatch(self._requests, self._quantities)
            self._requests, self._quantities = {}, {}
        return batch

    def _give_back(self, batch: UsageBatch) -> None:
        with self._lock:
            for key, value in batch.requests.items():
                self._requests[key] = self._requests.get(key, 0) + value
            for qkey, quantities in batch.quantities.items():
                self._quantities.setdefault(qkey, Quantities()).add(quantities)

    async def flush(self) -> bool:
        """Write what is counted now; ``False`` (logged) when the write failed, its counts kept for
        the next one. One write at a time: a flush waits for the one in progress."""
        if self._flushing is None:
            self._flushing = asyncio.Lock()
        async with self._flushing:
            batch = self._take()
            if not batch:
                return True
            try:
                await self._write(batch)
            except BaseException as exc:
                self._give_back(batch)
                if not isinstance(exc, Exception):  # cancelled: counts kept, cancellation goes on
                    raise
                self.failed_writes += 1
                logger.warning(
                    "usage not written (%s): %d request counts and %d quantity rows kept for the "
                    "next write",
                    type(exc).__name__,
                    len(batch.requests),
                    len(batch.quantities),
                )
                return False
            return True

    def start(self) -> None:
        """Write every ``flush_seconds`` on the running event loop, until :meth:`aclose`."""
        if self._task is not None:
            return
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(self._stop))

    async def _run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.flush_seconds)
            if not stop.is_set():
                await self.flush()

    async def aclose(self) -> None:
        """Stop the periodic write and write what is left; what cannot be written is logged as
        lost (an error naming the counts), never dropped silently."""
        if self._stop is not None and self._task is not None:
            self._stop.set()
            await self._task  # lets a write in progress end
            self._task = None
        if not await self.flush():
            left = self._take()
            logger.error(
                "usage lost at shutdown: %d requests and %s of tenants %s could not be written",
                sum(left.requests.values()),
                _describe(left),
                sorted({key[0] for key in (*left.requests, *left.quantities)}),
            )
        with self._lock:
            self._closed = True


def _describe(batch: UsageBatch) -> str:
    total = Quantities()
    for quantities in batch.quantities.values():
        total.add(quantities)
    return ", ".join(f"{getattr(total, name)} {name}" for name in _QUANTITY_NAMES)


@dataclass(frozen=True)
class UsageScope:
    """The recorder and tenant a request's usage goes to."""

    recorder: UsageRecorder
    tenant: str

    def count(
        self,
        *,
        texts_embedded: int = 0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        audio_seconds: float = 0.0,
        bytes_ingested: int = 0,
    ) -> None:
        """Count what the request used (never raises: usage must not fail a request)."""
        try:
            self.recorder.add(
                self.tenant,
                Quantities(
                    texts_embedded=max(0, texts_embedded),
                    prompt_tokens=max(0, prompt_tokens),
                    completion_tokens=max(0, completion_tokens),
                    audio_seconds=max(0.0, audio_seconds) if math.isfinite(audio_seconds) else 0.0,
                    bytes_ingested=max(0, bytes_ingested),
                ),
            )
        except Exception:  # pragma: no cover - a dictionary update; logged all the same
            logger.exception("usage of tenant %r not counted", self.tenant)


#: The recorder and tenant of the request being served (set by the pipeline after authentication).
_SCOPE: ContextVar[UsageScope | None] = ContextVar("synthstack_usage", default=None)


def current_scope() -> UsageScope | None:
    """Where the current request's usage goes (``None`` outside a request). A stream takes it
    when it is created: its pieces may be pulled from another context."""
    return _SCOPE.get()


def count(
    *,
    texts_embedded: int = 0,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    audio_seconds: float = 0.0,
    bytes_ingested: int = 0,
) -> None:
    """Count what the current request used, for its tenant (nothing outside a request)."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.count(
            texts_embedded=texts_embedded,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            audio_seconds=audio_seconds,
            bytes_ingested=bytes_ingested,
        )
