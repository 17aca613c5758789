"""What the OpenAI and Anthropic stubs share for chat: the deterministic reply, stream controls.

The reply to a conversation depends only on the model, the last user message and whether JSON was
asked for, so a test can compute it with :func:`expected_chat_reply` and assert on exact text.
It is cut into "tokens" (a word with the blanks before it, or one punctuation mark), one per
streamed piece; ``max_tokens`` cuts it short with the finish reason ``length``.

:class:`ChatStubControls` is mixed into both stubs: a delay between streamed tokens (to check that
the first piece arrives before the end), faults that break a stream midway (the connection is
cut, or an event that is not JSON is sent), and counters of streams finished or abandoned by the
client (to check that closing a stream early closes the connection).

Only the standard library is used.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Final, Literal, cast

__all__ = [
    "ChatReply",
    "ChatStubControls",
    "ChunkedWriter",
    "StreamFault",
    "chat_reply_tokens",
    "expected_chat_reply",
]

_PIECE_RE: Final = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")


def chat_reply_tokens(model: str, last_user_message: str, *, json_output: bool) -> list[str]:
    """The stub's whole reply, cut into tokens (their concatenation is the reply)."""
    words = " ".join(re.findall(r"\w+", last_user_message.lower())[:24]) or "nothing"
    text = f"Stub reply from {model}. You said: {words}. This answer is deterministic."
    if json_output:
        text = json.dumps({"model": model, "reply": text, "ok": True})
    return _PIECE_RE.findall(text)


@dataclass(frozen=True)
class ChatReply:
    """The reply the stub gives: text, finish (``stop`` or ``length``) and its token count."""

    content: str
    finish: Literal["stop", "length"]
    completion_tokens: int
    tokens: tuple[str, ...]


def expected_chat_reply(
    model: str, last_user_message: str, *, max_tokens: int | None, json_output: bool = False
) -> ChatReply:
    """The reply both stubs give to a conversation whose last user message is the one given."""
    tokens = chat_reply_tokens(model, last_user_message, json_output=json_output)
    finish: Literal["stop", "length"] = "stop"
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens, finish = tokens[:max_tokens], "length"
    return ChatReply("".join(tokens), finish, len(tokens), tuple(tokens))


def approximate_chat_prompt_tokens(texts: Sequence[str]) -> int:
    """Prompt tokens of a conversation: its pieces, plus 4 per message of framing, plus 3."""
    return sum(len(_PIECE_RE.findall(text)) + 4 for text in texts) + 3


@dataclass(slots=True)
class StreamFault:
    """A queued stream fault: after ``after_chunks`` content pieces, cut or send garbage."""

    after_chunks: int
    garbage: bool
    remaining: int


@dataclass
class _ChatState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    token_delay: float = 0.0
    faults: deque[StreamFault] = field(default_factory=deque)
    finished: int = 0
    aborted: int = 0
    aborted_event: threading.Event = field(default_factory=threading.Event)
    # Counts resets: a request that was delayed across a reset belongs to a test that is over.
    generation: int = 0


class ChatStubControls:
    """Stream controls shared by the chat stubs (thread-safe)."""

    @property
    def _chat(self) -> _ChatState:
        state = self.__dict__.get("_chat_state")
        if state is None:
            # dict.setdefault is atomic: two threads racing here get the same state.
            state = self.__dict__.setdefault("_chat_state", _ChatState())
        return state  # type: ignore[no-any-return]

    @property
    def token_delay(self) -> float:
        """Seconds slept before each streamed content piece (default 0)."""
        return self._chat.token_delay

    @token_delay.setter
    def token_delay(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError(f"token_delay must be >= 0, got {seconds!r}")
        self._chat.token_delay = float(seconds)

    def break_stream_next(
        self, after_chunks: int = 2, *, garbage: bool = False, times: int = 1
    ) -> None:
        """Break the next ``times`` streamed answers after ``after_chunks`` content pieces.

        The connection is cut without ending the response (``garbage=False``), or an event whose
        data is not JSON is sent and the stream goes on (``garbage=True``).
        """
        if after_chunks < 0 or times < 1:
            raise ValueError("after_chunks must be >= 0 and times >= 1")
        with self._chat.lock:
            self._chat.faults.append(StreamFault(after_chunks, garbage, times))

    @property
    def finished_streams(self) -> int:
        """Streamed answers written to their end."""
        with self._chat.lock:
            return self._chat.finished

    @property
    def aborted_streams(self) -> int:
        """Streamed answers the client went away from before their end."""
        with self._chat.lock:
            return self._chat.aborted

    def wait_for_aborted_stream(self, timeout: float = 5.0) -> bool:
        """Wait until a client has abandoned a stream; ``False`` after ``timeout`` seconds."""
        return self._chat.aborted_event.wait(timeout)

    def _take_stream_fault(self) -> StreamFault | None:
        with self._chat.lock:
            if not self._chat.faults:
                return None
            pending = self._chat.faults[0]
            pending.remaining -= 1
            if pending.remaining == 0:
                self._chat.faults.popleft()
            return StreamFault(pending.after_chunks, pending.garbage, 1)

    def _stream_ended(self, *, aborted: bool) -> None:
        with self._chat.lock:
            if aborted:
                self._chat.aborted += 1
                self._chat.aborted_event.set()
            else:
                self._chat.finished += 1

    def _generation(self) -> int:
        with self._chat.lock:
            return self._chat.generation

    def _outlived_reset(self, generation: int) -> bool:
        """Whether the stub was reset since ``generation`` was read: the request then gets no
        answer (its connection is closed), so that it cannot take a fault queued for a later
        request."""
        return self._generation() != generation

    def _reset_chat(self) -> None:
        with self._chat.lock:
            self._chat.generation += 1
            self._chat.faults.clear()
            self._chat.finished = self._chat.aborted = 0
            self._chat.aborted_event.clear()
            self._chat.token_delay = 0.0


class ChunkedWriter:
    """Writes a response body in HTTP/1.1 chunks, flushed one by one."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self._handler = handler

    def send(self, data: bytes) -> None:
        """Send ``data`` as one chunk (an empty ``data`` would end the body: use :meth:`end`)."""
        if data:
            self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self._handler.wfile.flush()

    def event(self, payload: object) -> None:
        """Send one server-sent event ``data: <json>``."""
        self.send(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")

    def end(self) -> None:
        """End the chunked body."""
        self._handler.wfile.write(b"0\r\n\r\n")
        self._handler.wfile.flush()

    def cut(self) -> None:
        """Drop the connection without ending the body (a stream broken midway)."""
        self._handler.close_connection = True
        with contextlib.suppress(OSError):
            cast(socket.socket, self._handler.connection).shutdown(socket.SHUT_RDWR)
