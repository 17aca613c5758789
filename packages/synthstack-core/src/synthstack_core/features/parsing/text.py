"""Plain text: UTF-8 (a byte-order mark optional), or UTF-16/UTF-32 with a byte-order mark."""

from __future__ import annotations

import codecs

from synthstack_core.errors import InvalidRequest
from synthstack_core.features.parsing.document import (
    _normalise_newlines,
)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _bom_encoding(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def _decode_text(data: bytes) -> str:
    """UTF-8 (BOM optional), or UTF-16/UTF-32 with a BOM; newlines as ``\\n``, no NULs."""
    encoding = _bom_encoding(data) or "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise InvalidRequest(
            "The text is not valid UTF-8 (or UTF-16 with a byte-order mark).",
            code="undecodable_text",
        ) from None
    return _normalise_newlines(text.replace("\x00", ""))
