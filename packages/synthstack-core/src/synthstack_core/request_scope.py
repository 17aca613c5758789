"""The request being served, as the work it starts sees it: its id.

The pipeline's observability step enters a request's scope (:func:`entered`) for as long as it
serves it; whatever the request's handler starts in that context (a job submitted, a task) reads
:func:`current_request_id`, so that its records name the request. A module of its own, importing
nothing of the package, so that any part of the core may read it.
"""

from __future__ import annotations

import contextvars

__all__ = ["Entered", "current_request_id", "entered", "left"]

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("synthstack_request_id")

#: What :func:`left` needs to end a scope.
Entered = contextvars.Token[str]


def entered(request_id: str) -> Entered:
    """Serving request ``request_id`` from here, in this context, until :func:`left`."""
    return _request_id.set(request_id)


def left(scope: Entered) -> None:
    """The request's scope ended (called in the context that entered it)."""
    _request_id.reset(scope)


def current_request_id() -> str:
    """The id of the request being served (``X-Request-ID``, given or made); ``""`` outside a
    request."""
    return _request_id.get("")
