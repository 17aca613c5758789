"""Gunicorn hooks used by ``synthstack serve --backend django``.

Each worker starts the core as it boots, so a service that cannot start (database down, bad
settings) fails at boot, as the FastAPI backend does, instead of answering 500 to every request.
"""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    """Start this worker's service before it accepts requests."""
    from synthstack_django.service import get_stack

    get_stack()
