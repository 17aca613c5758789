"""Traces (OpenTelemetry): the extra ``otel``, configured only by the standard ``OTEL_*`` variables.

Tracing is on in a process when the extra is installed, ``OTEL_SDK_DISABLED`` is not ``true`` and
either an exporter is asked for (``OTEL_TRACES_EXPORTER`` other than ``none``, or an OTLP endpoint:
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), or the host process set
up an SDK ``TracerProvider`` of its own before the stack started (``opentelemetry-instrument``, a
host application, a test). The SDK is then set up by its own environment-driven configurator
(``opentelemetry-distro``'s, which reads the exporter, endpoint, headers, sampler, service name and
resource attributes, batch settings, ...): nothing here reads those variables. Two defaults are the
OTLP specification's, which the Python SDK does not apply: an endpoint alone means the ``otlp``
exporter, and OTLP speaks ``http/protobuf`` (the exporter the extra installs) unless
``OTEL_EXPORTER_OTLP_PROTOCOL`` says otherwise.

Asking for an exporter without the extra fails :meth:`SynthStack.start
<synthstack_core.service.SynthStack.start>` naming it. Otherwise, without the extra or without
configuration, nothing of OpenTelemetry is imported and every span below is a shared no-op context
(one global read).

What is traced: one server span per request (the pipeline's observability step,
:class:`ServerSpan`), continuing a W3C ``traceparent`` the request carries; inside it spans for
authentication, embedding, vector searches, provider calls (:func:`provider_span`) and, through the
SQLAlchemy instrumentation, every database query. A job's run is a trace of its own
(:func:`job_span`), linked to the request that submitted the job (:func:`propagation_headers`,
kept with the job). :func:`current_ids` gives the log lines their
``trace_id`` and ``span_id`` (:mod:`synthstack_core.logs`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Final

from synthstack_core.extras import installed, require
from synthstack_core.version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "ServerSpan",
    "configure_tracing",
    "current_ids",
    "enabled",
    "failed",
    "job_span",
    "propagation_headers",
    "provider_span",
    "span",
    "tracing_requested",
]

#: The tracer of this process while tracing is on (``None``: off, every span a no-op).
_tracer: Tracer | None = None
_NO_SPAN: Final[AbstractContextManager[None]] = nullcontext()
#: What the extra is asked for by, in start-up errors.
_ASKED_BY = "Tracing (OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_ENDPOINT is set)"
#: The names OpenTelemetry's semantic conventions give the operations of generative AI.
_GEN_AI_OPERATIONS: Final = {"embedding": "embeddings", "chat": "chat"}


def _sdk_disabled(environ: Mapping[str, str]) -> bool:
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``environ`` asks for traces to be exported (see the module's doc)."""
    if _sdk_disabled(environ):
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def enabled() -> bool:
    """Whether this process traces requests."""
    return _tracer is not None


def configure_tracing() -> bool:
    """Decide, at each start of a stack, whether this process traces, and set the SDK up from
    the ``OTEL_*`` variables the first time they ask for it. Returns :func:`enabled`.

    Raises :class:`~synthstack_core.extras.ExtraNotInstalled` when an exporter is asked for and
    the extra ``otel`` is not installed.
    """
    global _tracer
    requested = tracing_requested()
    if requested:
        require("otel", _ASKED_BY)
    elif (
        _sdk_disabled(os.environ)
        # Nobody in this process set OpenTelemetry up: nothing to find (and nothing imported).
        or "opentelemetry.trace" not in sys.modules
        or not installed("otel")
    ):
        _tracer = None
        return False
    from opentelemetry import trace

    if requested and not _provider_set():
        _configure_sdk()
    if not _provider_set():
        _tracer = None
        return False
    _instrument_sqlalchemy()
    _tracer = trace.get_tracer("synthstack_core", __version__)
    return True


def _provider_set() -> bool:
    """Whether a real ``TracerProvider`` is this process's (not the API's placeholder)."""
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def _configure_sdk() -> None:
    """The SDK's own set-up from the ``OTEL_*`` variables (``opentelemetry-distro``'s
    configurator), with the OTLP specification's two defaults (see the module's doc)."""
    from opentelemetry.distro import OpenTelemetryConfigurator

    if not os.environ.get("OTEL_TRACES_EXPORTER", "").strip():
        os.environ["OTEL_TRACES_EXPORTER"] = "otlp"
    if not (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    ):
        os.environ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
    OpenTelemetryConfigurator().configure()  # type: ignore[no-untyped-call]


def _instrument_sqlalchemy() -> None:
    """Every SQLAlchemy engine made from now on (the stack's is made after this) traces its
    queries; once per process (a host's ``opentelemetry-instrument`` may have done it)."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    instrumentor = SQLAlchemyInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def _attributes(given: Mapping[str, object]) -> dict[str, Any]:
    """``given`` without its ``None`` values (which OpenTelemetry refuses)."""
    return {name: value for name, value in given.items() if value is not None}


def span(
    name: str, attributes: Mapping[str, object] | None = None
) -> AbstractContextManager[Span | None]:
    """A span around the block, current inside it (its children, database queries included, nest
    under it); an exception ends it as an error. ``None`` values of ``attributes`` are left out."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    return tracer.start_as_current_span(name, attributes=_attributes(attributes or {}))


def provider_span(kind: str, model: str) -> AbstractContextManager[Span | None]:
    """A span around one provider call (``kind``: ``embedding``, ``chat``, ``transcription``),
    named and described as OpenTelemetry's generative-AI conventions say (``chat gpt-4o-mini``,
    ``gen_ai.operation.name``, ``gen_ai.request.model``).

    Not made current: a streamed generation's call spans several steps of an async generator,
    which may run in different contexts (Django pulls a stream from tasks of its own); a span
    attached in one step could not be detached in another. Its parent is the span current when
    the call starts.
    """
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    return _leaf_span(tracer, kind, model)


@contextmanager
def _leaf_span(tracer: Tracer, kind: str, model: str) -> Iterator[Span]:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    operation = _GEN_AI_OPERATIONS.get(kind, kind)
    started = tracer.start_span(
        f"{operation} {model}",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": model,
            "synthstack.model.kind": kind,
        },
    )
    try:
        yield started
    except Exception as exc:
        started.record_exception(exc)
        started.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        started.end()


def propagation_headers() -> dict[str, str]:
    """The current span's context as the propagators of ``OTEL_PROPAGATORS`` write it (W3C
    ``traceparent``, ``tracestate``...), for work done later elsewhere; ``{}`` while tracing is off
    or outside a span."""
    if _tracer is None:
        return {}
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def job_span(
    name: str, submitted: Mapping[str, str], attributes: Mapping[str, object]
) -> AbstractContextManager[Span | None]:
    """The span of one run of a job (``CONSUMER``), current inside the block: the root of a trace
    of its own, linked to the span ``submitted`` names (:func:`propagation_headers` of the request
    that submitted the job), when it names one. An exception ends it as an error.

    A link, not a parent: a run starts after the request's trace has ended (seconds, or hours for
    a queue with a backlog), a job may run several times (retries, a worker lost), and a trace that
    stays open for as long as its jobs would be cut by samplers that decide when a trace ends."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    from opentelemetry import context, propagate, trace

    origin = trace.get_current_span(propagate.extract(dict(submitted))).get_span_context()
    return tracer.start_as_current_span(
        name,
        context=context.Context(),  # a new trace, not the worker's current context
        kind=trace.SpanKind.CONSUMER,
        links=[trace.Link(origin)] if origin.is_valid else None,
        attributes=_attributes(attributes),
    )


def failed(span: Span | None, description: str) -> None:
    """Mark ``span`` (when tracing) as an error that raised nothing: a job that stored its
    failure."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_status(Status(StatusCode.ERROR, description))


class ServerSpan:
    """The span of one request (``SERVER``, named after its operation), current from its start to
    :meth:`end`; both are called from the same task (the pipeline's ``handle``).

    A ``traceparent`` (and ``tracestate``, baggage: the propagators of ``OTEL_PROPAGATORS``) among
    the request's headers makes it a child of the caller's span, so a gateway's trace goes on.
    """

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span, token: object) -> None:
        self._span = span
        self._token = token

    @classmethod
    def start(
        cls, operation_id: str, method: str, route: str, path: str, headers: Mapping[str, str]
    ) -> ServerSpan | None:
        """The request's span, now current; ``None`` while tracing is off."""
        tracer = _tracer
        if tracer is None:
            return None
        from opentelemetry import context, propagate, trace

        parent = propagate.extract(headers)
        started = tracer.start_span(
            operation_id,
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.path": path,
                "synthstack.operation_id": operation_id,
            },
        )
        return cls(started, context.attach(trace.set_span_in_context(started, parent)))

    def annotate(self, status: int | None, tenant: str | None, request_id: str) -> None:
        """Its outcome: the response's ``status`` (``None``: cancelled, its client went away),
        the caller's tenant; a 5xx or a cancellation is an error."""
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attributes(
            _attributes(
                {
                    "http.response.status_code": status,
                    "synthstack.tenant": tenant,
                    "synthstack.request_id": request_id,
                }
            )
        )
        if status is None:
            self._span.set_status(Status(StatusCode.ERROR, "cancelled"))
        elif status >= 500:
            self._span.set_status(Status(StatusCode.ERROR))

    def end(self) -> None:
        """End it, and make current again the context that was current before it."""
        from opentelemetry import context

        self._span.end()
        context.detach(self._token)  # type: ignore[arg-type]


def current_ids() -> tuple[str, str] | None:
    """The trace and span ids (hexadecimal, as W3C ``traceparent`` writes them) of the span
    current here, or ``None`` (tracing off, or no span)."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    found = trace.get_current_span().get_span_context()
    if not found.is_valid:
        return None
    return trace.format_trace_id(found.trace_id), trace.format_span_id(found.span_id)
