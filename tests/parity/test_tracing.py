"""Traces on both backends, in-process: the span tree of a request, a caller's trace continued, and
the trace id in the log lines.

The OpenTelemetry SDK is set up here as a host would, before the stacks start: a ``TracerProvider``
whose spans go to the SDK's in-memory exporter; both apps are then rebuilt (so their stacks start
with tracing on and their database engines trace queries). Requests reach the OpenAI stub for
embeddings and chat. Afterwards the process's OpenTelemetry globals are reset and the core's tracing
is off again, for the tests after these.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from synthstack_core import tracing
from synthstack_core.logs import ACCESS_LOGGER, JsonLogFormatter, TextWithTraceIds
from synthstack_testing import OpenAIStub
from tests.parity.conftest import AUTH, rebuilt_clients
from tests.tracing_support import in_memory_spans

BACKENDS = ("fastapi", "django")
OPENAI_EMBEDDING = "text-embedding-3-small"
OPENAI_CHAT = "gpt-4o-mini"


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """The SDK, set up in this process, keeping every finished span in memory."""
    with in_memory_spans() as kept:
        yield kept


@pytest.fixture(scope="module")
def traced(
    exporter: InMemorySpanExporter, django_app: Any, clients: dict[str, httpx.Client]
) -> Iterator[dict[str, httpx.Client]]:
    """Both backends, started with the SDK set up."""
    with rebuilt_clients(django_app, {}) as rebuilt:
        assert tracing.enabled()
        yield rebuilt


class Keep(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[Keep]:
    """Every record of every logger, DEBUG included, while the test runs."""
    root = logging.getLogger()
    handler = Keep()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _request(
    exporter: InMemorySpanExporter,
    client: httpx.Client,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
) -> tuple[httpx.Response, ReadableSpan, list[ReadableSpan]]:
    """Send one request: its response, its server span and every span of its trace."""
    exporter.clear()
    response = client.request(method, path, headers=headers or {}, json=body)
    finished = exporter.get_finished_spans()
    servers = [span for span in finished if span.kind is SpanKind.SERVER]
    assert len(servers) == 1, [span.name for span in finished]
    server = servers[0]
    assert server.context is not None
    in_trace = [
        span
        for span in finished
        if span.context is not None and span.context.trace_id == server.context.trace_id
    ]
    return response, server, in_trace


def _children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span
        for span in spans
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def _descendants(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    found = []
    for child in _children(spans, parent):
        found += [child, *_descendants(spans, child)]
    return found


def _only(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    named = [span for span in spans if span.name == name]
    assert len(named) == 1, (name, [span.name for span in spans])
    return named[0]


def _is_query(span: ReadableSpan) -> bool:
    attributes = span.attributes or {}
    return "postgresql" in (attributes.get("db.system"), attributes.get("db.system.name"))


def _traceparent() -> tuple[str, str, str]:
    """A caller's ``traceparent`` (sampled), with its trace and span ids."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_search_is_one_trace_that_continues_the_callers(
    backend: str, traced: dict[str, httpx.Client], exporter: InMemorySpanExporter
) -> None:
    client = traced[backend]
    collection = f"traced-{backend}-{uuid.uuid4().hex[:8]}"
    created = client.post(
        "/api/v1/rag/collections",
        headers=AUTH,
        json={"name": collection, "embedding_model": OPENAI_EMBEDDING},
    )
    assert created.status_code == 201, created.text
    indexed = client.post(
        "/api/v1/rag/index",
        headers=AUTH,
        json={
            "content": "Cats purr when content. Kittens play with yarn.",
            "source": "cats.txt",
            "collection": collection,
            "document_id": "cats",
        },
    )
    assert indexed.status_code in (200, 201), indexed.text

    traceparent, caller_trace, caller_span = _traceparent()
    query = f"why do cats purr {uuid.uuid4().hex}"  # never embedded before: the provider is called
    response, server, spans = _request(
        exporter,
        client,
        "POST",
        "/api/v1/rag/search",
        headers={**AUTH, "traceparent": traceparent},
        body={"query": query, "collection": collection, "mode": "dense", "limit": 3},
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"], response.text

    # The server span: the caller's trace goes on, under the caller's span.
    assert server.name == "rag-search"
    assert server.context is not None and server.parent is not None
    assert trace.format_trace_id(server.context.trace_id) == caller_trace
    assert trace.format_span_id(server.parent.span_id) == caller_span
    assert server.parent.is_remote
    assert dict(server.attributes or {}) == {
        "http.request.method": "POST",
        "http.route": "/api/v1/rag/search",
        "url.path": "/api/v1/rag/search",
        "synthstack.operation_id": "rag-search",
        "http.response.status_code": 200,
        "synthstack.tenant": "tenant-a",
        "synthstack.request_id": response.headers["x-request-id"],
    }
    assert server.status.status_code is StatusCode.UNSET

    # Its children: authentication, the query's embedding (and in it the provider call), the
    # vector search (and in it its SQL), the collection's lookup.
    children = _children(spans, server)
    authenticate = _only(children, "authenticate")
    embedding = _only(children, "embedding")
    assert dict(embedding.attributes or {}) == {
        "synthstack.embedding.model": OPENAI_EMBEDDING,
        "synthstack.embedding.texts": 1,
        "synthstack.embedding.cached": 0,
    }
    provider = _only(_children(spans, embedding), f"embeddings {OPENAI_EMBEDDING}")
    assert (provider.attributes or {})["gen_ai.request.model"] == OPENAI_EMBEDDING
    assert (provider.attributes or {})["gen_ai.operation.name"] == "embeddings"
    search = _only(children, "vector search")
    assert dict(search.attributes or {}) == {
        "synthstack.vector_store": "pgvector",
        "synthstack.vector_search.k": 3,
    }
    assert any(_is_query(span) for span in _descendants(spans, search))
    # The collection is looked up in PostgreSQL before the embedding.
    lookups = [span for span in children if _is_query(span)]
    assert lookups and all(span.end_time <= embedding.start_time for span in lookups)  # type: ignore[operator]
    # Every span of the trace is the server span's descendant, and in it.
    assert {span.context.span_id for span in spans if span.context} == {
        server.context.span_id,
        *(span.context.span_id for span in _descendants(spans, server) if span.context),
    }
    for span in (authenticate, embedding, provider, search):
        assert server.start_time <= span.start_time  # type: ignore[operator]
        assert span.end_time <= server.end_time  # type: ignore[operator]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_chat_generation_has_its_provider_call(
    backend: str,
    traced: dict[str, httpx.Client],
    exporter: InMemorySpanExporter,
    openai_stub: OpenAIStub,
) -> None:
    response, server, spans = _request(
        exporter,
        traced[backend],
        "POST",
        "/api/v1/generation/text",
        headers=AUTH,
        body={"prompt": f"Write about owls {backend}", "model": OPENAI_CHAT, "max_tokens": 16},
    )
    assert response.status_code == 200, response.text
    assert server.name == "generation-text"
    assert server.parent is None  # no traceparent: a trace of its own
    children = _children(spans, server)
    # The guardrails' spans hold the lookups of the tenant's overrides (when not remembered): the
    # rate-limit step's, and the token budget's check before the model and its count after.
    assert {span.name for span in children} == {
        "authenticate",
        "rate limit",
        "token budget",
        f"chat {OPENAI_CHAT}",
    }
    chat = _only(children, f"chat {OPENAI_CHAT}")
    assert chat.kind is SpanKind.CLIENT
    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": OPENAI_CHAT,
        "synthstack.model.kind": "chat",
    }

    # A provider's failure is the provider span's error.
    openai_stub.fail_next(500)
    failed, server, spans = _request(
        exporter,
        traced[backend],
        "POST",
        "/api/v1/generation/text",
        headers=AUTH,
        body={"prompt": "Fail", "model": OPENAI_CHAT, "max_tokens": 16},
    )
    assert failed.status_code >= 500
    chat = _only(_children(spans, server), f"chat {OPENAI_CHAT}")
    assert chat.status.status_code is StatusCode.ERROR
    assert server.status.status_code is StatusCode.ERROR
    assert (server.attributes or {})["http.response.status_code"] == failed.status_code


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_refused_key_ends_the_authentication_span_in_error(
    backend: str, traced: dict[str, httpx.Client], exporter: InMemorySpanExporter
) -> None:
    response, server, spans = _request(
        exporter,
        traced[backend],
        "GET",
        "/api/v1/embeddings/models",
        headers={"Authorization": "Bearer not-a-key-of-anyone"},
    )
    assert response.status_code == 401
    assert [span.name for span in _children(spans, server)] == ["authenticate"]
    assert _only(spans, "authenticate").status.status_code is StatusCode.ERROR
    assert (server.attributes or {})["http.response.status_code"] == 401
    assert "synthstack.tenant" not in (server.attributes or {})
    assert server.status.status_code is StatusCode.UNSET  # a 4xx is the caller's, not an error


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_log_lines_of_a_request_carry_its_trace_id(
    backend: str, traced: dict[str, httpx.Client], exporter: InMemorySpanExporter, kept: Keep
) -> None:
    request_id = f"traced-log-{backend}-{uuid.uuid4().hex[:8]}"
    text = f"trace ids in the logs {uuid.uuid4().hex}"
    body = {"text": text, "model": OPENAI_EMBEDDING}
    response, server, spans = _request(
        exporter,
        traced[backend],
        "POST",
        "/api/v1/embeddings/generate",
        headers={**AUTH, "X-Request-ID": request_id},
        body=body,
    )
    assert response.status_code == 200, response.text
    assert server.context is not None
    trace_id = trace.format_trace_id(server.context.trace_id)
    span_id = trace.format_span_id(server.context.span_id)

    access = [
        record
        for record in kept.records
        if record.name == ACCESS_LOGGER and getattr(record, "request_id", None) == request_id
    ]
    assert len(access) == 1
    line = json.loads(JsonLogFormatter().format(access[0]))
    assert line["trace_id"] == trace_id and line["span_id"] == span_id
    assert line["operationId"] == "embeddings-generate" and line["status"] == 200
    text_line = TextWithTraceIds(logging.Formatter("%(name)s %(message)s")).format(access[0])
    assert text_line.endswith(f" request_id={request_id} trace_id={trace_id} span_id={span_id}")

    # The other lines written meanwhile (the OpenAI SDK's, httpx's) carry the ids of the span
    # they were written in: the provider call's parent, the embedding span.
    embedding = _only(_children(spans, server), "embedding")
    assert embedding.context is not None
    sdk_lines = [
        record
        for record in kept.records
        if record.name.startswith(("openai", "httpx")) and getattr(record, "trace_id", None)
    ]
    assert sdk_lines, [record.name for record in kept.records]
    for record in sdk_lines:
        assert record.trace_id == trace_id  # type: ignore[attr-defined]
        assert record.span_id == trace.format_span_id(embedding.context.span_id)  # type: ignore[attr-defined]

    # The same text again: from the cache, so no provider call, and no line without a span.
    kept.records.clear()
    again, server, spans = _request(
        exporter,
        traced[backend],
        "POST",
        "/api/v1/embeddings/generate",
        headers={**AUTH, "X-Request-ID": request_id},
        body=body,
    )
    assert again.status_code == 200
    embedding = _only(_children(spans, server), "embedding")
    assert (embedding.attributes or {})["synthstack.embedding.cached"] == 1
    assert _children(spans, embedding) == []


def test_outside_a_request_no_line_has_a_trace_id(
    traced: dict[str, httpx.Client], kept: Keep
) -> None:
    logging.getLogger("synthstack").warning("outside any span")
    (record,) = [r for r in kept.records if r.getMessage() == "outside any span"]
    assert not hasattr(record, "trace_id")
    assert "trace_id" not in json.loads(JsonLogFormatter().format(record))
    assert TextWithTraceIds().format(record) == "outside any span"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_streamed_generation_has_its_provider_call_under_the_request(
    backend: str, traced: dict[str, httpx.Client], exporter: InMemorySpanExporter, kept: Keep
) -> None:
    """The request's span ends with its first event (as its latency metric); the provider call
    goes on until the stream ends, a child of the request's span."""
    response, server, spans = _request(
        exporter,
        traced[backend],
        "POST",
        "/api/v1/generation/text",
        headers=AUTH,
        body={
            "prompt": "Stream about owls",
            "model": OPENAI_CHAT,
            "stream": True,
            "max_tokens": 24,
        },
    )
    assert response.status_code == 200
    assert "event: done" in response.text
    chat = _only(_children(spans, server), f"chat {OPENAI_CHAT}")
    assert chat.end_time >= server.end_time  # type: ignore[operator]
    assert chat.status.status_code is StatusCode.UNSET
    problems = [r for r in kept.records if r.name.startswith("opentelemetry") and r.levelno >= 30]
    assert problems == [], [r.getMessage() for r in problems]
