"""``GET /metrics``, and the service's observability set up when the stack starts.

:class:`ObservabilityService` serves the metrics (:mod:`synthstack_core.metrics`) as the operation
``metrics``, reports the database pool while the stack runs, and applies ``SYNTHSTACK_LOG_FORMAT``
(:mod:`synthstack_core.logs`; with tracing on, log lines carry their span's ids). Each request is
measured by the pipeline's own step (:mod:`synthstack_core.observability`). Each scrape also reads
the jobs queued and running from the database (one grouped count; left out of that scrape, with a
warning, when the database does not answer within :data:`JOB_COUNT_TIMEOUT_SECONDS`).

Who may read ``/metrics``: a caller sending ``Authorization: Bearer <SYNTHSTACK_METRICS_TOKEN>``
(compared in constant time), and, in development (``SYNTHSTACK_ENV=development``, the default), any
caller whose address is a loopback one (no forwarding header is trusted). Anyone else gets the 404
problem of a path nothing serves, so the endpoint's existence says nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Mapping
from typing import Protocol

import anyio
from prometheus_client.metrics_core import Metric
from pydantic import RootModel
from sqlalchemy import func, select

from synthstack_core import tracing
from synthstack_core.errors import no_endpoint
from synthstack_core.logs import add_trace_ids, configure_logging
from synthstack_core.metrics import (
    CONTENT_TYPE,
    exposition,
    jobs_by_status,
    track_pool,
    untrack_pool,
)
from synthstack_core.registry import Module, Stack, operation
from synthstack_core.replies import RawReply
from synthstack_core.settings import Settings
from synthstack_core.stores.database import Database
from synthstack_core.stores.jobs import UNFINISHED, jobs

__all__ = ["MODULE", "Caller", "MetricsText", "ObservabilityService", "loopback_address"]

logger = logging.getLogger("synthstack.metrics")

#: How long a scrape waits for the jobs' count before it answers without it.
JOB_COUNT_TIMEOUT_SECONDS = 2.0


class MetricsText(RootModel[str]):
    """The Prometheus text exposition (``text/plain; version=0.0.4``)."""


class Caller(Protocol):
    """What the rule needs of a request (an :class:`~synthstack_core.http.HttpRequest`)."""

    @property
    def path(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def client(self) -> str | None: ...


def loopback_address(address: str | None) -> bool:
    """Whether a peer ``address`` is this machine (``127.0.0.0/8``, ``::1``, or an IPv4 loopback
    address mapped into IPv6)."""
    if not address:
        return False
    try:
        parsed = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(parsed, "ipv4_mapped", None)
    return bool(parsed.is_loopback or (mapped is not None and mapped.is_loopback))


class ObservabilityService:
    """``GET /metrics``, and the database pool reported while the stack runs."""

    def __init__(self, settings: Settings, database: Database) -> None:
        token = settings.metrics_token
        self._token_digest = (
            None
            if token is None
            else hashlib.sha256(token.get_secret_value().strip().encode()).digest()
        )
        self._development = settings.development
        self._database = database
        self._engine = database.engine.sync_engine
        track_pool(self._engine)

    def may_read(self, request: Caller) -> bool:
        """Whether the caller of ``request`` may read the metrics (see the module's doc)."""
        if self._development and loopback_address(request.client):
            return True
        if self._token_digest is None:
            return False
        scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return False
        given = hashlib.sha256(credentials.strip().encode()).digest()
        return hmac.compare_digest(given, self._token_digest)

    @operation("metrics", response=MetricsText)
    async def metrics(self, request: Caller) -> RawReply:
        """``GET /metrics``: every metric of every worker, or the 404 of an unknown path."""
        if not self.may_read(request):
            raise no_endpoint(request.path)
        read = await self._jobs()
        # Reading every worker's files takes a moment: off the event loop.
        body = await anyio.to_thread.run_sync(exposition, read)
        return RawReply(body, CONTENT_TYPE)

    async def _jobs(self) -> list[Metric]:
        """The jobs gauge, from one grouped count of the ``jobs`` table; nothing when the
        database does not answer (the rest of the scrape still does)."""
        query = select(jobs.c.status, func.count()).where(UNFINISHED).group_by(jobs.c.status)
        try:
            with anyio.fail_after(JOB_COUNT_TIMEOUT_SECONDS):
                async with self._database.engine.connect() as connection:
                    rows = (await connection.execute(query)).all()
        except Exception as error:
            logger.warning("/metrics: the jobs were not counted (%s)", type(error).__name__)
            return []
        return [jobs_by_status({status: count for status, count in rows})]

    async def aclose(self) -> None:
        """Stop reporting the pool (the stack closes the database next)."""
        untrack_pool(self._engine)


def build(stack: Stack) -> ObservabilityService:
    """Apply the log format (with the trace ids when tracing is on), and serve the metrics."""
    trace_ids = tracing.enabled()
    if trace_ids:
        add_trace_ids(tracing.current_ids)
    configure_logging(stack.settings.log_format, trace_ids=trace_ids)
    return ObservabilityService(stack.settings, stack.database)


MODULE = Module("observability", ObservabilityService, build)
