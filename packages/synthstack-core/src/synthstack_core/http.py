"""The framework-free HTTP pipeline both adapters call.

An adapter turns its framework's request into an :class:`HttpRequest` (reading at most
``max_body_bytes + 1`` bytes of body), calls :meth:`SynthStack.handle`, and writes the
:class:`HttpResponse` back as it is. Everything in between — request ids, authentication, body
limits, content types, parsing, validation, the handler, problem rendering — happens here, once,
which is what makes the two backends byte-for-byte identical.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field

import anyio
from pydantic import BaseModel

from synthstack_core.errors import (
    PROBLEM_CONTENT_TYPE,
    MethodNotAllowed,
    PayloadTooLarge,
    SynthStackError,
    UnsupportedMediaType,
    no_endpoint,
    problem_for,
)

__all__ = [
    "SSE_CONTENT_TYPE",
    "SSE_KEEPALIVE",
    "HttpRequest",
    "HttpResponse",
    "error_response",
    "event_stream_response",
    "method_not_allowed_response",
    "not_found_response",
    "raw_response",
    "read_sync_stream",
    "request_id_of",
    "sse_event",
]

logger = logging.getLogger("synthstack.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
JSON_CONTENT_TYPE = "application/json"
#: Headers every API response carries, on both backends.
BASE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
)


@dataclass(frozen=True)
class HttpRequest:
    """What the pipeline needs of a request. Header names are lower-case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""
    #: Values of the path template's parameters (``{name}``), as the router matched them.
    path_params: Mapping[str, str] = field(default_factory=dict)
    #: Query parameters (the last value of a repeated one, as both frameworks give it).
    query: Mapping[str, str] = field(default_factory=dict)
    #: The body as it arrives, for operations that take an upload (``Operation.form``): the core
    #: reads it, enforcing the operation's limit, instead of the adapter reading it whole.
    stream: AsyncIterable[bytes] | None = None
    #: The address of the peer that sent the request, as the server saw it (an IP address; no
    #: forwarding header is trusted), or ``None`` when the server does not say.
    client: str | None = None


@dataclass
class HttpResponse:
    """What an adapter writes back: status, headers (in order) and body."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    #: A streamed body (server-sent events): the adapter sends its chunks as they come, and
    #: closes it (``aclose``) if the client goes away, which stops the work behind it.
    stream: AsyncGenerator[bytes, None] | None = None

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header."""
        for name, value in self.headers:
            if name.lower() == "content-type":
                return value
        return ""


async def read_sync_stream(
    read: Callable[[int], bytes], chunk_size: int = 64 * 1024
) -> AsyncIterator[bytes]:
    """The chunks of a blocking reader (a WSGI input stream), each read in a worker thread so the
    event loop is never blocked; ends at the first empty read."""
    while True:
        chunk = await anyio.to_thread.run_sync(read, chunk_size)
        if not chunk:
            return
        yield chunk


def request_id_of(headers: Mapping[str, str]) -> str:
    """The caller's ``X-Request-ID`` when it is a safe token, else a new id."""
    given = headers.get("x-request-id", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def json_response(model: BaseModel, *, status: int, request_id: str) -> HttpResponse:
    """A model rendered as compact JSON."""
    return HttpResponse(
        status=status,
        headers=[
            ("Content-Type", JSON_CONTENT_TYPE),
            ("X-Request-ID", request_id),
            *BASE_HEADERS,
        ],
        body=model.__pydantic_serializer__.to_json(model),
    )


def error_response(error: BaseException, *, request_id: str, path: str | None) -> HttpResponse:
    """Any exception as a problem+json response (a bare 500 for an unexpected one)."""
    if not isinstance(error, SynthStackError):
        logger.error("unhandled error in request %s", request_id, exc_info=error)
    problem = problem_for(error, request_id=request_id, instance=path)
    return HttpResponse(
        status=problem.status,
        headers=[
            ("Content-Type", PROBLEM_CONTENT_TYPE),
            ("X-Request-ID", request_id),
            *BASE_HEADERS,
            *problem.headers.items(),
        ],
        body=problem.to_bytes(),
    )


def not_found_response(path: str, headers: Mapping[str, str]) -> HttpResponse:
    """The 404 of a path no operation serves (used by both adapters' routers)."""
    return error_response(no_endpoint(path), request_id=request_id_of(headers), path=path)


def method_not_allowed_response(
    method: str, path: str, headers: Mapping[str, str], allowed: Sequence[str] | None = None
) -> HttpResponse:
    """The 405 of a known path with another method; ``Allow`` names the contract's methods there
    (or ``allowed``, for pages outside the contract)."""
    from synthstack_core.operations import allowed_methods

    methods = allowed_methods(path) if allowed is None else allowed
    return error_response(
        MethodNotAllowed(method, methods), request_id=request_id_of(headers), path=path
    )


def check_json_body(request: HttpRequest, max_body_bytes: int) -> None:
    """Raise 413 for a body over the limit and 415 for one that is not JSON."""
    declared = request.headers.get("content-length", "")
    if len(request.body) > max_body_bytes or (
        declared.isdigit() and int(declared) > max_body_bytes
    ):
        raise PayloadTooLarge(f"The request body is larger than {max_body_bytes} bytes.")
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media_type.strip().lower() != JSON_CONTENT_TYPE or charset not in ("", "utf-8", "utf8"):
        raise UnsupportedMediaType("Send the request body as `application/json` (UTF-8).")


SSE_CONTENT_TYPE = "text/event-stream"


def sse_event(event: str, data: bytes) -> bytes:
    """One server-sent event: ``event: <name>`` and one ``data:`` line of compact JSON."""
    return b"event: " + event.encode("ascii") + b"\ndata: " + data + b"\n\n"


#: What an event stream sends when its producer has nothing new (``None``): an SSE comment.
SSE_KEEPALIVE = b": keep-alive\n\n"


def _frame(item: tuple[str, BaseModel] | None) -> bytes:
    if item is None:
        return SSE_KEEPALIVE
    event, payload = item
    return sse_event(event, payload.__pydantic_serializer__.to_json(payload))


async def event_stream_response(
    events: AsyncGenerator[tuple[str, BaseModel] | None, None],
    *,
    request_id: str,
    path: str,
    translate: Callable[[Exception], BaseException] = lambda exc: exc,
) -> HttpResponse:
    """``events`` as a ``text/event-stream`` response.

    The first event is produced before the response starts, so a failure before any output (a
    provider refusing the request, say) is still an ordinary problem+json response with its own
    status. A failure after that ends the stream with an ``error`` event carrying the problem
    document, never a hung connection. An item ``None`` is sent as a comment line
    (:data:`SSE_KEEPALIVE`). Closing the returned stream closes ``events``.
    """
    started = True
    try:
        first: tuple[str, BaseModel] | None = await anext(events)
    except StopAsyncIteration:
        first, started = None, False
    except BaseException:
        await events.aclose()
        raise

    async def body() -> AsyncGenerator[bytes, None]:
        try:
            if started:
                yield _frame(first)
            async for item in events:
                yield _frame(item)
        except Exception as exc:  # cancellation (a client gone) is not caught: it propagates
            error = translate(exc)
            if not isinstance(error, SynthStackError):
                logger.error("unhandled error in stream %s", request_id, exc_info=error)
            problem = problem_for(error, request_id=request_id, instance=path)
            yield sse_event("error", problem.to_bytes())
        finally:
            await events.aclose()

    return HttpResponse(
        status=200,
        headers=[
            ("Content-Type", SSE_CONTENT_TYPE),
            ("X-Request-ID", request_id),
            *BASE_HEADERS,
            ("X-Accel-Buffering", "no"),
        ],
        stream=body(),
    )


def raw_response(body: bytes, *, media_type: str, status: int, request_id: str) -> HttpResponse:
    """A body that is not JSON (plain text, subtitles), as the handler rendered it."""
    return HttpResponse(
        status=status,
        headers=[("Content-Type", media_type), ("X-Request-ID", request_id), *BASE_HEADERS],
        body=body,
    )
