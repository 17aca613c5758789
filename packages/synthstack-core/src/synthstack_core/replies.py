"""What a handler may answer besides a plain model (a leaf module: features import it freely)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from pydantic import BaseModel

__all__ = ["EventStream", "RawReply", "Reply", "Result"]


@dataclass(frozen=True)
class Reply:
    """A handler's answer when it is not the operation's success status: the body and its status."""

    body: BaseModel
    status: int = 200
    #: Headers of this answer beside the ones every answer carries (``Location``...).
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RawReply:
    """A handler's answer that is not JSON (plain text, subtitles): bytes and their media type."""

    body: bytes
    media_type: str
    status: int = 200


@dataclass(frozen=True)
class EventStream:
    """A handler's answer as server-sent events: ``(event name, payload)`` pairs, produced as the
    work goes on. ``None`` instead of a pair: nothing new for a while; a comment line is sent
    (clients ignore it), which keeps idle proxies from closing the connection and lets a server
    that only notices a client gone when it writes (WSGI) notice it. The pipeline closes
    ``events`` when the client goes away."""

    events: AsyncGenerator[tuple[str, BaseModel] | None, None]


#: Everything a handler may return (a model is rendered with the operation's success status).
Result = BaseModel | Reply | RawReply | EventStream
