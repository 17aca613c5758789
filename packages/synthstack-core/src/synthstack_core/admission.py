"""Admission control: how much work a process takes on at once, and what it refuses.

At most ``SYNTHSTACK_MAX_ACTIVE_REQUESTS`` requests run their handler at once in a process; the
others wait, first come first served, in a queue of at most ``SYNTHSTACK_MAX_QUEUED_REQUESTS``
(0: unbounded). A request that finds the queue full is refused at once with a 503 ``overloaded``
problem and a ``Retry-After`` estimated from the work ahead of it and the measured time a request
holds its place (at least 1 s). The probes (``/health``, ``/ready``) and ``/metrics`` are never
queued nor refused (:data:`NEVER_SHED_TAGS`).

Why bound the running requests and not only the model: with every request admitted at once, an
asyncio server interleaves them all (each stage of every request, the model's queue among them), so
all of them finish near the end of a burst; a bounded number running, the rest waiting in order,
finishes them in order, as gunicorn's pool of threads does for the Django backend (see
``docs/benchmarks.md``, "Load, overload and admission control"). The pipeline admits a request
once it is authenticated, counted against its rate limit, parsed and validated: a client's mistake
is a 4xx whatever the load, and costs no place.

The bound is per process and lives on the process's one event loop (both backends run the core on
one loop per process).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from synthstack_core.errors import Overloaded
from synthstack_core.metrics import QUEUED, SHED

__all__ = ["NEVER_SHED_TAGS", "Admission"]

#: Operations with one of these tags (the contract's) are never queued nor refused: liveness,
#: readiness and metrics must answer while the service is overloaded.
NEVER_SHED_TAGS = frozenset({"health", "operations"})

#: The weight of the newest sample in the moving average of a request's time in its place.
_SMOOTHING = 0.2


class Admission:
    """Places for ``max_active`` requests at once and a queue of ``max_queued`` (0: unbounded)."""

    def __init__(self, max_active: int, max_queued: int) -> None:
        if max_active < 1 or max_queued < 0:
            raise ValueError("max_active must be at least 1 and max_queued at least 0")
        self.max_active = max_active
        self.max_queued = max_queued
        self._limiter: anyio.CapacityLimiter | None = None
        #: Moving average of the seconds a request holds its place (``None``: none measured yet).
        self.service_seconds: float | None = None

    def _places(self) -> anyio.CapacityLimiter:
        # Made on first use, on the loop that serves the requests.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_active)
        return self._limiter

    @property
    def active(self) -> int:
        """Requests holding a place now."""
        return 0 if self._limiter is None else int(self._limiter.borrowed_tokens)

    @property
    def waiting(self) -> int:
        """Requests in the queue now."""
        return 0 if self._limiter is None else self._limiter.statistics().tasks_waiting

    def retry_after(self) -> int:
        """Seconds until a place is likely free for a newcomer: the requests ahead of it (those
        running and those waiting) times the measured time of one, over the places; at least 1."""
        per_request = self.service_seconds or 0.0
        ahead = self.active + self.waiting
        return max(1, math.ceil(ahead * per_request / self.max_active))

    @asynccontextmanager
    async def admit(self, operation_id: str) -> AsyncIterator[None]:
        """Hold a place while the body runs: wait for one in the queue, or raise
        :class:`~synthstack_core.errors.Overloaded` at once when the queue is full."""
        places = self._places()
        borrower = object()
        if places.available_tokens < 1 and self.max_queued and self.waiting >= self.max_queued:
            SHED.labels(operation_id).inc()
            raise Overloaded(
                f"The service is at capacity ({self.active} requests running, {self.waiting} "
                "waiting); try again later.",
                retry_after=self.retry_after(),
            )
        if places.available_tokens < 1:
            with QUEUED.track_inprogress():
                await places.acquire_on_behalf_of(borrower)
        else:
            await places.acquire_on_behalf_of(borrower)
        started = time.monotonic()
        try:
            yield
        finally:
            places.release_on_behalf_of(borrower)
            seconds = time.monotonic() - started
            previous = self.service_seconds
            self.service_seconds = (
                seconds if previous is None else previous + _SMOOTHING * (seconds - previous)
            )
