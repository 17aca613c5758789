"""A local HTTP stub of Anthropic's Messages API, for tests and benchmarks.

:class:`AnthropicStub` runs a :class:`http.server.ThreadingHTTPServer` on ``127.0.0.1`` (port chosen
by the OS) in a daemon thread and answers ``POST /v1/messages`` the way Anthropic does, so that the
real ``anthropic`` SDK can be driven with no internet access::

    with AnthropicStub() as stub:
        client = anthropic.Anthropic(base_url=stub.base_url, api_key=stub.api_key, max_retries=0)
        message = client.messages.create(
            model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        )

* Requests need the key, as ``x-api-key: <api_key>`` or ``Authorization: Bearer <api_key>`` (which
  the 2.x SDK sends), else 401; and an ``anthropic-version`` header, else 400.
* The reply is the deterministic one of :func:`~synthstack_testing.chat_stub.expected_chat_reply`
  (to the last user message); ``max_tokens`` cuts it short with ``stop_reason`` ``max_tokens``.
  When the conversation ends with an assistant turn ``{`` (a JSON prefill), the reply is the JSON
  form, continued after that ``{``.
* ``stream: true`` answers server-sent events as Anthropic names them: ``message_start``,
  ``content_block_start``, ``ping``, ``content_block_delta`` (``text_delta``),
  ``content_block_stop``, ``message_delta`` (stop reason, cumulative output tokens),
  ``message_stop``.
* Errors have Anthropic's shape ``{"type": "error", "error": {"type", "message"}}``.

Faults, as in the OpenAI stub: :meth:`AnthropicStub.fail_next` (status, ``retry-after``),
:meth:`AnthropicStub.garbage_next` (a 200 body that is not JSON), :meth:`AnthropicStub.delay_next`,
and the stream controls of :class:`~synthstack_testing.chat_stub.ChatStubControls`.

Only the standard library is used.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import sys
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal, Self, cast

from synthstack_testing.chat_stub import (
    ChatReply,
    ChatStubControls,
    ChunkedWriter,
    approximate_chat_prompt_tokens,
    chat_reply_tokens,
    expected_chat_reply,
)
from synthstack_testing.openai_stub import RecordedRequest

__all__ = ["DEFAULT_ANTHROPIC_API_KEY", "KNOWN_ANTHROPIC_MODELS", "AnthropicStub"]

DEFAULT_ANTHROPIC_API_KEY: Final = "sk-ant-stub-key"
"""The API key an :class:`AnthropicStub` accepts unless told otherwise."""

KNOWN_ANTHROPIC_MODELS: Final = frozenset(
    {"claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1", "claude-3-5-haiku-latest"}
)
"""The models the stub serves; any other model is answered with a 404."""

_ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_GARBAGE_BODY: Final = b'{"id": "msg_broken", "type": "message", "content": [{"type": "te'
_GARBAGE_EVENT: Final = b'event: content_block_delta\ndata: {"type": "content_block_del\n\n'


class _APIError(Exception):
    """An error answered with Anthropic's error shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, object]:
        """Anthropic's error body."""
        return _error_body(self.status, self.message)


def _error_body(status: int, message: str) -> dict[str, object]:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _text_of(content: object, where: str) -> str:
    """The text of a message content: a string, or a list of text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [b.get("text") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        if len(texts) == len(content) and all(isinstance(t, str) for t in texts):
            return "".join(cast(list[str], texts))
    raise _APIError(400, f"{where}: Input should be a valid string or a list of text blocks")


@dataclass(frozen=True, slots=True)
class _MessagesRequest:
    model: str
    texts: tuple[str, ...]
    reply: ChatReply
    stream: bool


def _parse_messages_request(body: object) -> _MessagesRequest:
    """Validate a Messages API body the way Anthropic does, raising :class:`_APIError`."""
    if not isinstance(body, dict):
        raise _APIError(400, "There was an issue with your request body: expected a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _APIError(400, "model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _APIError(400, "max_tokens: Field required (an integer of at least 1)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _APIError(400, "messages: at least one message is required")
    texts: list[str] = []
    roles: list[str] = []
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _APIError(400, f"messages.{position}.role: Input should be 'user' or 'assistant'")
        roles.append(cast(str, message["role"]))
        texts.append(_text_of(message.get("content"), f"messages.{position}.content"))
    if roles[0] != "user":
        raise _APIError(400, "messages: the first message must use the `user` role")
    system = body.get("system")
    if system is not None:
        texts.insert(0, _text_of(system, "system"))
    temperature = body.get("temperature")
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0 <= temperature <= 1
    ):
        raise _APIError(400, "temperature: Input should be less than or equal to 1")
    if model not in KNOWN_ANTHROPIC_MODELS:
        raise _APIError(404, f"model: {model}")
    users = [text for role, text in zip(roles, texts[-len(roles) :], strict=True) if role == "user"]
    last_user = users[-1]
    prefill = texts[-1] if roles[-1] == "assistant" else ""
    if prefill.strip() == "{":
        # Continue the prefilled JSON object: the JSON reply without its opening brace.
        tokens = chat_reply_tokens(model, last_user, json_output=True)[1:]
        finish: Literal["stop", "length"] = "stop"
        if len(tokens) > max_tokens:
            tokens, finish = tokens[:max_tokens], "length"
        reply = ChatReply("".join(tokens), finish, len(tokens), tuple(tokens))
    else:
        reply = expected_chat_reply(model, last_user, max_tokens=max_tokens)
    return _MessagesRequest(model, tuple(texts), reply, body.get("stream") is True)


_STOP_REASONS: Final = {"stop": "end_turn", "length": "max_tokens"}


@dataclass(slots=True)
class _Fault:
    status: int
    garbage: bool
    retry_after: float | None
    remaining: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stub: AnthropicStub) -> None:
        self.stub = stub
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "SynthStackAnthropicStub/1.0"
    sys_version = ""

    @property
    def _stub(self) -> AnthropicStub:
        return cast(_Server, self.server).stub

    def setup(self) -> None:
        """Register the connection so that :meth:`AnthropicStub.stop` can interrupt it."""
        super().setup()
        self._stub._track(cast(socket.socket, self.connection))

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            super().finish()
        finally:
            self._stub._untrack(cast(socket.socket, self.connection))

    def log_message(self, format: str, *args: Any) -> None:
        """Do not log every request."""

    def do_POST(self) -> None:
        """Handle a POST request."""
        self._dispatch()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _dispatch(self) -> None:
        stub = self._stub
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {key.lower(): value for key, value in self.headers.items()}
        stub._record(RecordedRequest(self.path, body, headers))
        generation = stub._generation()
        delay, fault = stub._take_faults()
        if delay > 0:
            stub._stopping.wait(delay)
            if stub._outlived_reset(generation):
                self.close_connection = True
                return
        if fault is not None:
            extra = {}
            if fault.retry_after is not None:
                extra["retry-after"] = str(fault.retry_after)
            if fault.garbage:
                self._send(200, _GARBAGE_BODY, extra)
            else:
                self._send_json(fault.status, _error_body(fault.status, "Injected fault."), extra)
            return
        try:
            bearer = headers.get("authorization", "")
            key = headers.get("x-api-key") or bearer.removeprefix("Bearer ").strip()
            if not secrets.compare_digest(key.encode(), stub.api_key.encode()):
                raise _APIError(401, "invalid x-api-key")
            if "anthropic-version" not in headers:
                raise _APIError(400, "anthropic-version: header is required")
            if self.command != "POST" or self.path.split("?", 1)[0] != "/v1/messages":
                raise _APIError(404, f"Not found: {self.command} {self.path}")
            request = _parse_messages_request(body)
        except _APIError as error:
            self._send_json(error.status, error.body())
            return
        if request.stream:
            self._stream(request)
        else:
            self._send_json(200, _message(request, f"msg_{secrets.token_hex(12)}"))

    def _stream(self, request: _MessagesRequest) -> None:
        stub = self._stub
        fault = stub._take_stream_fault()
        message_id = f"msg_{secrets.token_hex(12)}"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("request-id", f"req_{secrets.token_hex(12)}")
        self.end_headers()
        writer = ChunkedWriter(self)

        def event(name: str, payload: dict[str, object]) -> None:
            data = json.dumps(payload, separators=(",", ":")).encode()
            writer.send(b"event: " + name.encode() + b"\ndata: " + data + b"\n\n")

        start = _message(request, message_id)
        start.update(content=[], stop_reason=None, stop_sequence=None)
        start["usage"] = {**cast(dict[str, int], start["usage"]), "output_tokens": 1}
        reply = request.reply
        try:
            event("message_start", {"type": "message_start", "message": start})
            event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            event("ping", {"type": "ping"})
            for position, token in enumerate(reply.tokens):
                if fault is not None and position == fault.after_chunks:
                    if not fault.garbage:
                        writer.cut()
                        return
                    writer.send(_GARBAGE_EVENT)
                if stub.token_delay:
                    stub._stopping.wait(stub.token_delay)
                event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": token},
                    },
                )
            event("content_block_stop", {"type": "content_block_stop", "index": 0})
            event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": _STOP_REASONS[reply.finish], "stop_sequence": None},
                    "usage": {"output_tokens": reply.completion_tokens},
                },
            )
            event("message_stop", {"type": "message_stop"})
            writer.end()
        except OSError:
            self.close_connection = True
            stub._stream_ended(aborted=True)
            return
        stub._stream_ended(aborted=False)

    def _send_json(
        self, status: int, payload: object, headers: Mapping[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(payload, separators=(",", ":")).encode(), headers or {})

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("request-id", f"req_{secrets.token_hex(12)}")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _message(request: _MessagesRequest, message_id: str) -> dict[str, object]:
    """Anthropic's Message object for a whole reply."""
    reply = request.reply
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [{"type": "text", "text": reply.content}],
        "stop_reason": _STOP_REASONS[reply.finish],
        "stop_sequence": None,
        "usage": {
            "input_tokens": approximate_chat_prompt_tokens(request.texts),
            "output_tokens": reply.completion_tokens,
        },
    }


class AnthropicStub(ChatStubControls):
    """A local, deterministic stand-in for Anthropic's Messages API (see the module docstring)."""

    def __init__(self, api_key: str = DEFAULT_ANTHROPIC_API_KEY) -> None:
        """Prepare a stub accepting ``api_key``; nothing listens until :meth:`start`."""
        self.api_key = api_key
        """The key clients must send (``x-api-key`` or a bearer token)."""
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: deque[_Fault] = deque()
        self._delays: deque[list[float]] = deque()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Start listening on ``127.0.0.1`` on a free port."""
        if self._server is not None:
            raise RuntimeError("the Anthropic stub is already running")
        self._stopping = threading.Event()
        server = _Server(self)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop the server, interrupt delays and close connections."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        thread.join()

    def __enter__(self) -> Self:
        """Start the stub."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the stub."""
        self.stop()

    @property
    def base_url(self) -> str:
        """The URL to give an Anthropic client, e.g. ``"http://127.0.0.1:54321"``."""
        if self._server is None:
            raise RuntimeError("the Anthropic stub is not running; call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``times`` requests with HTTP ``status`` and Anthropic's error body."""
        if not 400 <= status <= 599 or times < 1:
            raise ValueError("status must be within 400..599 and times >= 1")
        with self._lock:
            self._faults.append(_Fault(status, False, retry_after, times))

    def garbage_next(self, times: int = 1) -> None:
        """Answer the next ``times`` requests 200 with a body that is not valid JSON."""
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.append(_Fault(200, True, None, times))

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """Sleep ``seconds`` before answering each of the next ``times`` requests."""
        if not seconds >= 0 or times < 1:
            raise ValueError("seconds must be >= 0 and times >= 1")
        with self._lock:
            self._delays.append([float(seconds), float(times)])

    def reset(self) -> None:
        """Forget pending faults, recorded requests and stream counters."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()
            self._requests.clear()
        self._reset_chat()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_faults(self) -> tuple[float, _Fault | None]:
        with self._lock:
            delay = 0.0
            if self._delays:
                delay = self._delays[0][0]
                self._delays[0][1] -= 1
                if self._delays[0][1] <= 0:
                    self._delays.popleft()
            fault = None
            if self._faults:
                pending = self._faults[0]
                fault = _Fault(pending.status, pending.garbage, pending.retry_after, 1)
                pending.remaining -= 1
                if pending.remaining == 0:
                    self._faults.popleft()
            return delay, fault

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)
