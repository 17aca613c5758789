"""What every parser shares: the parsed document, its blocks of text, the cleaning of extracted
text, and the errors a parser raises."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Literal, get_args

from synthstack_core.errors import InvalidRequest, PayloadTooLarge

SourceType = Literal["text", "markdown", "html", "pdf", "docx"]
SOURCE_TYPES: tuple[SourceType, ...] = get_args(SourceType)

_SNIFF_WINDOW = 1024
_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ParsedDocument:
    """The plain text of a document, its type and, for PDFs, where each page starts.

    ``page_breaks[i]`` is the offset in ``text`` where page ``i + 1`` starts (a page without text
    starts where the next one does); it is empty for every other type. Blocks (paragraphs,
    headings, table rows grouped per table, pages) are separated by a blank line.
    """

    text: str
    source_type: SourceType
    page_breaks: tuple[int, ...] = ()
    title: str | None = None

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding the character at ``offset``; ``None`` if not paginated."""
        if not self.page_breaks:
            return None
        return max(1, bisect.bisect_right(self.page_breaks, offset))


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _clean_extracted(text: str) -> str:
    """Extracted text: ``\\n`` newlines, no control characters or lone surrogates."""
    text = _normalise_newlines(text)
    text = _CONTROL_CHARS.sub("", text)
    return _SURROGATES.sub("\ufffd", text)


def _check_length(length: int, max_chars: int) -> None:
    if length > max_chars:
        raise PayloadTooLarge(
            f"The document's text is longer than the limit of {max_chars:,} characters.",
            code="document_too_long",
        )


def _too_complex(detail: str) -> InvalidRequest:
    return InvalidRequest(detail, code="document_too_complex")


def _corrupt(label: str) -> InvalidRequest:
    return InvalidRequest(
        f"The {label} document is damaged or malformed and cannot be read.",
        code="corrupt_document",
    )


class _Blocks:
    """Blank-line separated blocks, with a running length checked against ``max_chars``."""

    def __init__(self, max_chars: int) -> None:
        self.blocks: list[str] = []
        self.length = 0
        self.max_chars = max_chars

    def add(self, block: str, *, preformatted: bool = False) -> None:
        block = block.strip("\n").rstrip() if preformatted else block.strip()
        if not block.strip():
            return
        self.length += len(block) + (2 if self.blocks else 0)
        _check_length(self.length, self.max_chars)
        self.blocks.append(block)

    def text(self) -> str:
        return "\n\n".join(self.blocks)
