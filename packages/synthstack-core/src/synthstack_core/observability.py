"""The pipeline's observability step: each request measured, traced and logged.

:class:`ObservedRequest` wraps every request (in flight, its status and latency by operation, 429s
``rate_limited``, bytes in and out), opens its server span when tracing is on
(:mod:`synthstack_core.tracing`: everything the request does nests under it, and its log lines carry
its ``trace_id``), writes its access-log line, with the request's fields as ``extra`` (JSON lines
with ``SYNTHSTACK_LOG_FORMAT=json``: :mod:`synthstack_core.logs`), and counts each request of an
authenticated caller in the tenant's usage (:mod:`synthstack_core.usage`). The metrics are served
by :mod:`synthstack_core.features.observability`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator

from synthstack_core import request_scope
from synthstack_core.errors import PROBLEM_CONTENT_TYPE
from synthstack_core.http import HttpRequest, HttpResponse, request_id_of
from synthstack_core.logs import ACCESS_LOGGER
from synthstack_core.metrics import IN_FLIGHT, RATE_LIMITED, REQUEST_DURATION, REQUESTS
from synthstack_core.tracing import ServerSpan
from synthstack_core.usage import UsageRecorder

__all__ = ["ObservedRequest"]

access_logger = logging.getLogger(ACCESS_LOGGER)
logger = logging.getLogger(__name__)


class ObservedRequest:
    """One request as the metrics and the access log see it (the pipeline's observability step).

    Made when the request reaches the pipeline (it is then in flight, and its span current);
    :meth:`finish` records it once its response is ready (for a stream, at its first event) or it
    was cancelled, and ends its span. Both are called from the same task. ``route`` is the
    operation's path in the contract (the span's ``http.route``).
    """

    __slots__ = (
        "_bytes_in",
        "_scope",
        "_span",
        "operation_id",
        "request",
        "request_id",
        "started",
        "tenant",
        "usage",
    )

    def __init__(
        self,
        operation_id: str,
        request: HttpRequest,
        usage: UsageRecorder | None = None,
        route: str = "",
    ) -> None:
        self.started = time.perf_counter()
        self.operation_id = operation_id
        #: Where the request is counted once answered (when its caller is known).
        self.usage = usage
        self.request_id = request_id_of(request.headers)
        # What the request's handler starts (a job) reads its id: request_scope.
        self._scope = request_scope.entered(self.request_id)
        self._span = ServerSpan.start(
            operation_id, request.method, route or request.path, request.path, request.headers
        )
        #: The caller's tenant, once authenticated.
        self.tenant: str | None = None
        self._bytes_in = len(request.body)
        #: The request to serve: an upload's stream counts its bytes as the core reads them.
        self.request = (
            request
            if request.stream is None
            else dataclasses.replace(request, stream=self._counted(request.stream))
        )
        IN_FLIGHT.labels(operation_id).inc()

    async def _counted(self, stream: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        async for chunk in stream:
            self._bytes_in += len(chunk)
            yield chunk

    def finish(self, response: HttpResponse | None) -> None:
        """Record the request: its ``response``, or ``None`` when it was cancelled (its client went
        away), which is only logged; then end its span (the access line is written inside it)."""
        request_scope.left(self._scope)
        span = self._span
        if span is None:
            self._record(response)
            return
        try:
            span.annotate(
                None if response is None else response.status, self.tenant, self.request_id
            )
            self._record(response)
        finally:
            span.end()

    def _record(self, response: HttpResponse | None) -> None:
        elapsed = time.perf_counter() - self.started
        operation_id = self.operation_id
        IN_FLIGHT.labels(operation_id).dec()
        request = self.request
        fields = {
            "request_id": self.request_id,
            "tenant": self.tenant,
            "operationId": operation_id,
            "method": request.method,
            "path": request.path,
            "status": None if response is None else response.status,
            "duration_ms": round(elapsed * 1000, 3),
            "bytes_in": self._bytes_in,
            # A stream's size is not known when it starts.
            "bytes_out": None
            if response is None or response.stream is not None
            else len(response.body),
        }
        if response is None:
            access_logger.info(
                "%s %s cancelled %.1fms request_id=%s",
                request.method,
                request.path,
                elapsed * 1000,
                self.request_id,
                extra=fields,
            )
            return
        REQUESTS.labels(operation_id, str(response.status)).inc()
        if self.usage is not None and self.tenant is not None:
            try:
                self.usage.request(self.tenant, operation_id, response.status)
            except Exception:  # pragma: no cover - a dictionary update; never the caller's problem
                logger.exception("usage of request %s not counted", self.request_id)
        REQUEST_DURATION.labels(operation_id).observe(elapsed)
        if response.status == 429 and _problem_code(response) == "rate_limited":
            RATE_LIMITED.labels(operation_id).inc()
        access_logger.info(
            "%s %s %d %.1fms request_id=%s",
            request.method,
            request.path,
            response.status,
            elapsed * 1000,
            self.request_id,
            extra=fields,
        )


def _problem_code(response: HttpResponse) -> str | None:
    """The ``code`` of a problem+json response."""
    if response.content_type != PROBLEM_CONTENT_TYPE or response.stream is not None:
        return None
    try:
        code = json.loads(response.body).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None
