"""The service's Prometheus metrics (the pipeline, stores and features record into it;
:mod:`synthstack_core.features.observability` serves it as ``GET /metrics``).

The metrics live in ``prometheus_client``'s default registry. In one process their values are kept
in memory; when ``PROMETHEUS_MULTIPROC_DIR`` is set before this module is first imported (as
``synthstack serve`` does for its workers), every process writes its values to files there and a
scrape, whichever worker answers it, reads and sums the files of all of them (``livesum`` gauges:
of the processes still alive).

What every process would read the same from the database (the jobs by status) is no metric of a
process: it is read at each scrape by the process answering it and added to the exposition as it
is (:func:`jobs_by_status`), never summed over the workers, and left out when it cannot be read.
"""

from __future__ import annotations

import glob
import os
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from synthstack_core.tracing import provider_span

__all__ = [
    "CACHE_HITS",
    "CACHE_MISSES",
    "CONTENT_TYPE",
    "DB_POOL_IN_USE",
    "DB_POOL_SIZE",
    "EMBEDDING_RUN_CALLERS",
    "IN_FLIGHT",
    "JOB_STATUSES_COUNTED",
    "MODEL_INFERENCE",
    "MULTIPROCESS_DIR_VARIABLE",
    "QUEUED",
    "RATE_LIMITED",
    "REQUESTS",
    "REQUEST_DURATION",
    "SHED",
    "exposition",
    "jobs_by_status",
    "model_inference",
    "track_pool",
    "untrack_pool",
]

#: The variable that puts ``prometheus_client`` in multi-process mode (a folder shared by the
#: workers of one server start, emptied before it).
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: The text exposition format, version 0.0.4 (what every Prometheus server reads; the client's
#: ``generate_latest`` writes it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Request latencies, seconds: from a health check (~1 ms) to a long transcription.
_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip
#: Model runs, seconds: a cached-size embedding batch (~5 ms) to a long generation.
_INFERENCE_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip

REQUESTS = Counter(
    "synthstack_http_requests",
    "Requests answered, by operation (the contract's operationId) and status.",
    ["operation_id", "status"],
)
REQUEST_DURATION = Histogram(
    "synthstack_http_request_duration_seconds",
    "Time from a request reaching the core to its response (a stream: to its first event).",
    ["operation_id"],
    buckets=_LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "synthstack_http_requests_in_flight",
    "Requests being served now, by operation.",
    ["operation_id"],
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "synthstack_http_rate_limited_requests",
    "Requests answered 429 `rate_limited` (a limit of this service, or a provider's 429 passed "
    "on), by operation.",
    ["operation_id"],
)
SHED = Counter(
    "synthstack_http_shed_requests",
    "Requests refused 503 `overloaded` because the queue of requests waiting for a place was full "
    "(SYNTHSTACK_MAX_QUEUED_REQUESTS), by operation.",
    ["operation_id"],
)
QUEUED = Gauge(
    "synthstack_http_requests_queued",
    "Requests waiting for a place to run (SYNTHSTACK_MAX_ACTIVE_REQUESTS are running), summed "
    "over the workers.",
    multiprocess_mode="livesum",
)
EMBEDDING_RUN_CALLERS = Histogram(
    "synthstack_embedding_shared_run_callers",
    "Callers (indexing jobs' embedding calls) whose texts one shared embedding run carried "
    "(SYNTHSTACK_JOB_EMBED_BATCHING), by model.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32),
)
MODEL_INFERENCE = Histogram(
    "synthstack_model_inference_seconds",
    "Time a model took for one call (an embedding batch, a completion or a whole stream, a "
    "transcription), failures included, by kind (embedding, chat, transcription) and model.",
    ["kind", "model"],
    buckets=_INFERENCE_BUCKETS,
)
CACHE_HITS = Counter(
    "synthstack_cache_hits",
    "Embedding-cache lookups that found the embedding, by cache (memory or redis).",
    ["cache"],
)
CACHE_MISSES = Counter(
    "synthstack_cache_misses",
    "Embedding-cache lookups that did not (an unreachable Redis counts as a miss), by cache.",
    ["cache"],
)
DB_POOL_SIZE = Gauge(
    "synthstack_db_pool_size",
    "PostgreSQL connections the pools keep open (summed over the workers).",
    multiprocess_mode="livesum",
)
DB_POOL_IN_USE = Gauge(
    "synthstack_db_pool_connections_in_use",
    "PostgreSQL connections checked out of the pools now (summed over the workers; above "
    "the pool size, the pools overflow).",
    multiprocess_mode="livesum",
)


#: The statuses of the jobs gauge: the jobs waiting for a worker, and those a worker runs.
JOB_STATUSES_COUNTED = ("queued", "running")


def jobs_by_status(counts: Mapping[str, int]) -> GaugeMetricFamily:
    """``synthstack_jobs{status}``: the jobs queued and running now (``counts``, read from the
    ``jobs`` table at the scrape; a status without jobs is 0). By status only, not by tenant or
    kind: the series stay two whatever the number of tenants."""
    family = GaugeMetricFamily(
        "synthstack_jobs",
        "Jobs queued (waiting for a worker, or for their next run) and running now, by status "
        "(read from the database at each scrape; absent when it could not be read).",
        labels=["status"],
    )
    for status in JOB_STATUSES_COUNTED:
        family.add_metric([status], counts.get(status, 0))
    return family


@contextmanager
def model_inference(kind: str, model: str) -> Iterator[None]:
    """Time the block as one run of ``model`` (failures and cancellations included), and trace it
    as one provider call when tracing is on (:func:`~synthstack_core.tracing.provider_span`)."""
    started = time.perf_counter()
    try:
        with provider_span(kind, model):
            yield
    finally:
        MODEL_INFERENCE.labels(kind, model).observe(time.perf_counter() - started)


# -- database pools: counted from the pools themselves --------------------------------------------

#: The engines whose pools this process reports (an engine's pool is replaced when it is disposed).
_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()


def _pools() -> Iterator[Any]:
    for engine in list(_ENGINES):
        pool = engine.pool
        if hasattr(pool, "checkedout"):  # a queue pool (the service's); others keep no count
            yield pool


def refresh_pool_gauges(*, returning: int = 0) -> None:
    """Set the pool gauges from this process's pools (``returning``: connections being checked in,
    which a pool still counts while its ``checkin`` event runs)."""
    pools = list(_pools())
    DB_POOL_SIZE.set(sum(pool.size() for pool in pools))
    DB_POOL_IN_USE.set(max(0, sum(pool.checkedout() for pool in pools) - returning))


def track_pool(engine: Any) -> None:
    """Report the pool of ``engine`` (a synchronous SQLAlchemy ``Engine``; an async engine's
    ``sync_engine``): the gauges follow its checkouts and check-ins, and are read again at each
    scrape."""
    from sqlalchemy import event

    if engine in _ENGINES:
        return
    _ENGINES.add(engine)
    event.listen(engine, "checkout", _checked_out)
    event.listen(engine, "checkin", _checked_in)
    refresh_pool_gauges()


def untrack_pool(engine: Any) -> None:
    """Stop reporting the pool of ``engine``."""
    from sqlalchemy import event

    if engine not in _ENGINES:
        return
    _ENGINES.discard(engine)
    event.remove(engine, "checkout", _checked_out)
    event.remove(engine, "checkin", _checked_in)
    refresh_pool_gauges()


def _checked_out(*_: Any) -> None:
    refresh_pool_gauges()


def _checked_in(*_: Any) -> None:
    refresh_pool_gauges(returning=1)


# -- the exposition -------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    """The multi-process folder, when this process runs in multi-process mode."""
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None


def forget_dead_processes(path: str) -> None:
    """Drop the live gauges of worker processes that no longer exist (a worker a server replaced:
    gunicorn says so through its ``child_exit`` hook, uvicorn does not)."""
    pids = {
        os.path.basename(name).rpartition("_")[2].removesuffix(".db")
        for name in glob.glob(os.path.join(path, "gauge_live*_*.db"))
    }
    for pid in pids:
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class _Read(Collector):
    """A collector of metric families read for one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def exposition(read: Iterable[Metric] = ()) -> bytes:
    """Every metric in the text format: this process's, or in multi-process mode every worker's
    summed; then the families ``read`` for this scrape (the database's), as they are."""
    refresh_pool_gauges()
    extra = generate_latest(_Read(read))
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY) + extra
    forget_dead_processes(path)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return generate_latest(registry) + extra
