"""A job's run is traced as a trace of its own, linked to the request that submitted it.

The OpenTelemetry SDK is set up here as a host would, before the stack starts (a ``TracerProvider``
whose spans go to the SDK's in-memory exporter); the FastAPI app runs in-process with its embedded
worker, which runs the job. Afterwards the process's OpenTelemetry globals are reset and the core's
tracing is off again, for the tests after these.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from synthstack_core import tracing
from tests.jobs.support import ASYNC, api_client, document, ended, wait_for
from tests.tracing_support import in_memory_spans


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """The SDK, set up in this process, keeping every finished span in memory."""
    with in_memory_spans() as kept:
        yield kept


def _descendants(spans: list[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    assert root.context is not None
    found, parents = [], {root.context.span_id}
    for _ in spans:  # as deep as there are spans
        more = [
            span
            for span in spans
            if span.parent is not None
            and span.parent.span_id in parents
            and span.context is not None
            and span.context.span_id not in parents
        ]
        if not more:
            break
        found.extend(more)
        parents |= {span.context.span_id for span in more if span.context is not None}
    return found


def test_a_job_s_run_is_linked_to_the_request_that_submitted_it(
    module_database_url: str, exporter: InMemorySpanExporter
) -> None:
    caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    with pytest.MonkeyPatch.context() as patch:
        for api in api_client(module_database_url, "embedded", patch):
            assert tracing.enabled()
            accepted = api.post(
                "/api/v1/rag/index",
                headers={**ASYNC, "traceparent": f"00-{caller_trace}-{caller_span}-01"},
                json={"content": document(3, "wrens"), "source": "w.txt", "collection": "traced"},
            )
            assert accepted.status_code == 202, accepted.text
            job = wait_for(api, accepted.json()["id"], ended, timeout=180)
            assert job["status"] == "succeeded", job
    spans = list(exporter.get_finished_spans())
    servers = [span for span in spans if span.kind is SpanKind.SERVER and span.name == "rag-index"]
    assert len(servers) == 1, [span.name for span in spans]
    server = servers[0]
    assert server.context is not None and server.context.trace_id == int(caller_trace, 16)
    runs = [span for span in spans if span.name == "job rag-index"]
    assert len(runs) == 1, [span.name for span in spans]
    run = runs[0]
    assert run.kind is SpanKind.CONSUMER and run.parent is None and run.context is not None
    # A trace of its own, linked to the request's span.
    assert run.context.trace_id != server.context.trace_id
    assert [(link.context.trace_id, link.context.span_id) for link in run.links] == [
        (server.context.trace_id, server.context.span_id)
    ]
    assert run.attributes is not None
    assert run.attributes["synthstack.job_id"] == job["id"]
    assert run.attributes["synthstack.request_id"] == accepted.headers["x-request-id"]
    assert run.attributes["synthstack.job.attempt"] == 1
    # What the run does nests under it: the embedding and the queries storing the document.
    inside = _descendants(spans, run)
    assert any(span.name.startswith("embed") for span in inside), [s.name for s in inside]
    assert any("INSERT" in span.name for span in inside), [s.name for s in inside]
