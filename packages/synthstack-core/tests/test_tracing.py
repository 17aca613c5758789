"""Traces configured by the standard ``OTEL_*`` variables alone: when they ask for an exporter, and a
real export over OTLP/HTTP to a collector on loopback.

The export runs in a subprocess (the SDK's tracer provider is set once per process): a stack started
with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a small HTTP server in this test serves one request
carrying a ``traceparent``, then exits; the SDK's batch processor flushes at exit, and the
collector decodes what it received with OpenTelemetry's own protobuf classes.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import secrets
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from synthstack_core.tracing import tracing_requested


@pytest.mark.parametrize(
    ("variables", "requested"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "synthstack"}, False),  # names the service, exports nothing
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, True),
    ],
)
def test_which_variables_ask_for_traces(variables: dict[str, str], requested: bool) -> None:
    assert tracing_requested(variables) is requested


class Collector(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP collector on loopback: keeps every POST (path, headers, body)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _CollectorHandler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _CollectorHandler(http.server.BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.received.append(
            (self.path, {name.lower(): value for name, value in self.headers.items()}, body)
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


SERVE_ONE_REQUEST = """
import asyncio, json, os
from synthstack_core import Settings, SynthStack
from synthstack_core.http import HttpRequest

async def main():
    async with SynthStack(Settings(_env_file=None)) as stack:
        operation = next(o for o in stack.operations if o.operation_id == "rag-list-collections")
        headers = {"authorization": "Bearer otlp-test-key", "traceparent": os.environ["PARENT"]}
        response = await stack.handle(operation, HttpRequest("GET", operation.path, headers))
        print(json.dumps({"status": response.status}))

asyncio.run(main())
"""


def _attributes(span: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for attribute in span.attributes:
        value = attribute.value
        found[attribute.key] = getattr(value, value.WhichOneof("value"))
    return found


def test_spans_are_exported_over_otlp_http_to_the_configured_endpoint(
    collector: Collector, database_url: str, tmp_path: Path
) -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DATABASE_URL": database_url,
        "SYNTHSTACK_DATA_DIR": str(tmp_path),
        "SYNTHSTACK_API_KEYS": "otlp-tenant:otlp-test-key",
        "PARENT": f"00-{trace_id}-{parent_id}-01",
        # Only the standard variables: no exporter named, so OTLP over HTTP/protobuf.
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_SERVICE_NAME": "synthstack-otlp-test",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
    }
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SERVE_ONE_REQUEST)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == {"status": 200}

    assert collector.received, "nothing was exported"
    spans: list[Span] = []
    for path, headers, body in collector.received:
        assert path == "/v1/traces"
        assert headers["content-type"] == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource)
            assert resource["service.name"] == "synthstack-otlp-test"
            assert resource["deployment.environment.name"] == "test"
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)

    (server,) = [span for span in spans if span.name == "rag-list-collections"]
    assert server.kind == Span.SpanKind.SPAN_KIND_SERVER
    assert server.trace_id.hex() == trace_id
    assert server.parent_span_id.hex() == parent_id
    assert _attributes(server) | {"synthstack.request_id": "-"} == {
        "http.request.method": "GET",
        "http.route": "/api/v1/rag/collections",
        "url.path": "/api/v1/rag/collections",
        "synthstack.operation_id": "rag-list-collections",
        "http.response.status_code": 200,
        "synthstack.tenant": "otlp-tenant",
        "synthstack.request_id": "-",
    }
    in_request = [span for span in spans if span.trace_id.hex() == trace_id and span is not server]
    children = [span for span in in_request if span.parent_span_id == server.span_id]
    assert "authenticate" in {span.name for span in children}
    queries = [
        span
        for span in in_request
        if "postgresql"
        in {_attributes(span).get("db.system"), _attributes(span).get("db.system.name")}
    ]
    assert queries, [span.name for span in in_request]
    # The start is a trace of its own: the migrations' queries are in it.
    (start,) = [span for span in spans if span.name == "start"]
    assert start.trace_id.hex() != trace_id
    assert any(span.trace_id == start.trace_id and span is not start for span in spans)
