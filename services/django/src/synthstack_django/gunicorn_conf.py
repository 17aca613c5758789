"""Gunicorn hooks and settings used by ``synthstack serve --backend django``.

Each worker starts the core as it boots, so a service that cannot start (database down, bad
settings) fails at boot, as the FastAPI backend does, instead of answering 500 to every request.

Metrics: ``synthstack serve`` gives the server a fresh ``PROMETHEUS_MULTIPROC_DIR``, which every
worker writes its metrics to; when a worker exits, its live gauges (requests in flight, database
pool) are dropped from the sums. With ``SYNTHSTACK_LOG_FORMAT=json`` gunicorn's own lines are JSON
too. (Gunicorn reads this module's public names as its settings: helpers are private.)
"""

from __future__ import annotations

import os as _os
from typing import Any

if _os.environ.get("SYNTHSTACK_LOG_FORMAT", "").strip().lower() == "json":
    from synthstack_core.logs import server_logging_config as _json_logging

    logconfig_dict = _json_logging()


def post_worker_init(worker: Any) -> None:
    """Start this worker's service before it accepts requests."""
    from synthstack_django.service import get_stack

    get_stack()


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: its live gauges no longer count (counters and histograms keep its
    share)."""
    if _os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(worker.pid)
