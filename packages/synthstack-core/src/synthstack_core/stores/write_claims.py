"""A check a store runs inside the transaction that writes a document, before it commits.

A job that indexes a document may be cancelled at any time, also while its chunks are being
written. The job service sets a *claim* (:func:`claimed_by`) around the job's work; the document's
writer calls :func:`claim_write` in its transaction once it holds the document's row, and the
claim, in that same transaction, marks the job as having stored its work (locking the job's row
until the commit) or raises when the job was cancelled, which rolls the write back. So a cancel
and a write are serialised on the job's row: whichever commits first decides, and the other sees
it. Outside a job (a synchronous call) there is no claim and nothing is checked.

A context variable rather than an argument: the writer is reached through the feature's code,
which need not know about jobs.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["WriteClaim", "claim_write", "claimed_by"]

#: Run in the writing transaction (its session) before it commits; raises to roll it back.
WriteClaim = Callable[[AsyncSession], Awaitable[None]]

_claim: contextvars.ContextVar[WriteClaim | None] = contextvars.ContextVar(
    "synthstack_write_claim", default=None
)


@contextlib.contextmanager
def claimed_by(claim: WriteClaim) -> Iterator[None]:
    """Writes made inside the block (in this context and the tasks it starts) run ``claim``."""
    token = _claim.set(claim)
    try:
        yield
    finally:
        _claim.reset(token)


async def claim_write(session: AsyncSession) -> None:
    """Run the current claim, if any, in the writing transaction of ``session``."""
    claim = _claim.get()
    if claim is not None:
        await claim(session)
