"""Keyset pagination cursors: the ``(created_at, id)`` of a page's last row, opaque to callers
(URL-safe base64 of JSON). Documents and jobs page newest first by that pair."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime

from synthstack_core.errors import FieldError, InvalidRequest

__all__ = ["decode_cursor", "encode_cursor"]


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    """The cursor of the page after the row created at ``created_at`` with id ``row_id``."""
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """``(created_at, id)`` of ``cursor``; a 422 ``cursor_invalid`` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = json.loads(raw)
        return datetime.fromisoformat(created_at), uuid.UUID(row_id)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(
            "The cursor is not one this service gave out.",
            errors=[FieldError(("query", "cursor"), "Invalid cursor", "cursor_invalid")],
        ) from exc
