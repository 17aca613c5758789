"""The process's one :class:`~synthstack_core.runtime.BlockingSynthStack`.

Django's views are synchronous, and the core's pools (PostgreSQL, Redis, HTTP clients) belong to one
event loop, so every call goes to a single long-lived loop thread. It is created and started on the
first request (never at import, so ``manage.py`` commands and a forking server's master open
nothing), and closed when the process exits.

Its database is :func:`~synthstack_django.database.core_database_url`: ``DATABASE_URL``, else
Django's ``default`` database, so that in a host project the core, the admin's models and
``manage.py migrate`` all use the same one.
"""

from __future__ import annotations

import atexit
import threading

from synthstack_core import BlockingSynthStack, Settings
from synthstack_django.database import core_database_url

__all__ = ["get_stack", "reset_stack"]

_lock = threading.Lock()
_stack: BlockingSynthStack | None = None
_exit_hook_registered = False


def get_stack() -> BlockingSynthStack:
    """The started service of this process (created and started by the first caller)."""
    global _stack, _exit_hook_registered
    stack = _stack
    if stack is None:
        with _lock:
            if _stack is None:
                settings = Settings()
                settings = settings.model_copy(update={"database_url": core_database_url()})
                _stack = BlockingSynthStack(settings, backend="django")
                if not _exit_hook_registered:
                    # Registered after the embedded PostgreSQL's own hook, so it runs before it.
                    atexit.register(_close)
                    _exit_hook_registered = True
            stack = _stack
    # Idempotent and thread-safe; retried by the next request if the previous start failed.
    stack.start()
    return stack


def reset_stack() -> None:
    """Close the service; the next :func:`get_stack` builds it again from the environment."""
    global _stack
    with _lock:
        stack, _stack = _stack, None
    if stack is not None:
        stack.close()


def _close() -> None:
    """Close the service at exit."""
    with _lock:
        stack = _stack
    if stack is not None:
        stack.close()
