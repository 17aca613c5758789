"""What the tracing tests share: the OpenTelemetry SDK set up in this process as a host would, its
finished spans kept in memory, and the process's globals reset afterwards (so the core's tracing is
off again for the tests that follow)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from synthstack_core import tracing


def _reset_opentelemetry_globals() -> None:
    """Forget the process's tracer provider (what OpenTelemetry's own test utilities do)."""
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    trace._PROXY_TRACER_PROVIDER = trace.ProxyTracerProvider()


@contextmanager
def in_memory_spans() -> Iterator[InMemorySpanExporter]:
    """The SDK, set up in this process, keeping every finished span in memory."""
    assert not isinstance(trace.get_tracer_provider(), TracerProvider), "set up elsewhere"
    kept = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    trace.set_tracer_provider(provider)
    try:
        yield kept
    finally:
        provider.shutdown()
        _reset_opentelemetry_globals()
        SQLAlchemyInstrumentor().uninstrument()
        assert tracing.configure_tracing() is False
