"""Running the async core from synchronous code (Django views, the Django admin, the CLI).

The core's pools (PostgreSQL, Redis, HTTP clients) belong to one event loop. ``async_to_sync`` under
a WSGI server runs each call on a new loop, which such pools do not survive, so a synchronous caller
gets one long-lived loop in a daemon thread instead (an anyio blocking portal), started once per
process, and every call is submitted to it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from synthstack_core.service import SynthStack
from synthstack_core.settings import Settings

__all__ = ["BlockingSynthStack"]

T = TypeVar("T")


class BlockingSynthStack:
    """A started :class:`SynthStack` on its own event-loop thread, callable from sync code."""

    def __init__(self, settings: Settings | None = None, *, backend: str = "library") -> None:
        self.stack = SynthStack(settings, backend=backend)
        self._lock = threading.Lock()
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None

    def start(self) -> None:
        """Start the loop thread and the service (idempotent, thread-safe)."""
        with self._lock:
            if self._portal is not None:
                return
            portal_cm = start_blocking_portal()
            portal = portal_cm.__enter__()
            try:
                portal.call(self.stack.start)
            except BaseException:
                portal_cm.__exit__(None, None, None)
                raise
            self._portal_cm, self._portal = portal_cm, portal

    def call(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await func(*args)`` on the service's loop and return its result."""
        if self._portal is None:
            self.start()
        assert self._portal is not None
        return self._portal.call(func, *args)

    def iterate(self, stream: AsyncGenerator[bytes, None]) -> Iterator[bytes]:
        """The chunks of a streamed response, each produced on the service's loop.

        Closing the iterator (a WSGI server does when the client goes away) closes ``stream``,
        which stops the work behind it.
        """
        finished = False
        try:
            while True:
                chunk = self.call(_next_chunk, stream)
                if chunk is None:
                    finished = True
                    return
                yield chunk
        finally:
            if not finished:
                self.call(stream.aclose)

    def close(self) -> None:
        """Close the service and stop the loop thread."""
        with self._lock:
            if self._portal is None or self._portal_cm is None:
                return
            try:
                self._portal.call(self.stack.aclose)
            finally:
                self._portal_cm.__exit__(None, None, None)
                self._portal = self._portal_cm = None


async def _next_chunk(stream: AsyncGenerator[bytes, None]) -> bytes | None:
    """The next chunk of ``stream``, or ``None`` at its end."""
    try:
        return await anext(stream)
    except StopAsyncIteration:
        return None
