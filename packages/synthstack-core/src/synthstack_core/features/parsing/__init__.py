"""Document parsing for ingestion: bytes of text, Markdown, HTML, PDF or DOCX to plain text.

The type comes from the content, never from trust (:mod:`.detection`): PDF by its ``%PDF-``
header, DOCX as a ZIP archive holding ``word/document.xml``, HTML by a leading ``<!doctype html``
or ``<html``; anything else that decodes as UTF-8 (or UTF-16/32 with a byte-order mark) is text,
and Markdown when the file name says so. A declared ``source_type`` is checked against the content.

One parser per format: :mod:`.text`, :mod:`.markdown`, :mod:`.html`, :mod:`.pdf`, :mod:`.docx`;
what they share (the parsed document, its blocks, the errors) is in :mod:`.document`. The
libraries were chosen by measurement against the alternatives: "Document parsing libraries" in
``docs/benchmarks.md``.

Everything is parsed from memory, no temporary file is written, and every format has a bound on the
work it may cause (pages, operators, nesting, ZIP sizes); hostile input ends in a 413 or 422 with a
stable ``code``, never in an unbounded loop. The parsers are imported on first use, so importing
SynthStack does not load them. The call is CPU-bound and synchronous: run it in a worker thread.

Error codes: ``unsupported_document_type`` (415), ``corrupt_document``, ``encrypted_document``,
``document_too_complex``, ``undecodable_text``, ``empty_document`` (422), ``document_too_long`` (413).
"""

from __future__ import annotations

from synthstack_core.errors import FieldError, InvalidRequest
from synthstack_core.features.parsing.detection import _resolve_type, detect_source_type
from synthstack_core.features.parsing.document import (
    SOURCE_TYPES,
    ParsedDocument,
    SourceType,
    _check_length,
)
from synthstack_core.features.parsing.docx import (
    DOCX_MAX_COMPRESSION_RATIO,
    DOCX_MAX_ENTRIES,
    DOCX_MAX_UNCOMPRESSED_BYTES,
    _parse_docx,
)
from synthstack_core.features.parsing.html import HTML_MAX_NESTING, _parse_html
from synthstack_core.features.parsing.markdown import MARKDOWN_MAX_NESTING, _parse_markdown
from synthstack_core.features.parsing.pdf import (
    PDF_MAX_OPERATIONS,
    PDF_MAX_PAGE_CHARS,
    PDF_MAX_PAGES,
    _parse_pdf,
)
from synthstack_core.features.parsing.text import _decode_text

__all__ = [
    "DOCX_MAX_COMPRESSION_RATIO",
    "DOCX_MAX_ENTRIES",
    "DOCX_MAX_UNCOMPRESSED_BYTES",
    "HTML_MAX_NESTING",
    "MARKDOWN_MAX_NESTING",
    "PDF_MAX_OPERATIONS",
    "PDF_MAX_PAGES",
    "PDF_MAX_PAGE_CHARS",
    "SOURCE_TYPES",
    "ParsedDocument",
    "SourceType",
    "detect_source_type",
    "parse_document",
]


def parse_document(
    data: bytes,
    *,
    source_type: SourceType | None = None,
    filename: str | None = None,
    max_chars: int,
) -> ParsedDocument:
    """Extract the text of a document held in memory.

    ``source_type`` is checked against the content (a "pdf" that is not one is a 422
    ``corrupt_document``); without it the type is detected from the content, with ``filename``
    as a hint for Markdown and HTML. Raises :class:`UnsupportedMediaType` (415
    ``unsupported_document_type``) for content of another kind, :class:`InvalidRequest` (422) for
    corrupt, encrypted, over-complex, undecodable or empty documents, and
    :class:`PayloadTooLarge` (413 ``document_too_long``) when the text would exceed ``max_chars``
    characters (or a PDF has more than :data:`PDF_MAX_PAGES` pages).
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    if source_type is not None and source_type not in SOURCE_TYPES:
        message = f"Unknown source_type {source_type!r}; expected one of {', '.join(SOURCE_TYPES)}."
        raise InvalidRequest(
            message, errors=[FieldError(loc=("source_type",), msg=message, type="enum")]
        )
    kind = _resolve_type(data, source_type, filename)
    if kind == "pdf":
        parsed = _parse_pdf(data, max_chars)
    elif kind == "docx":
        parsed = _parse_docx(data, max_chars)
    elif kind == "html":
        parsed = _parse_html(data, max_chars)
    else:
        text = _decode_text(data)
        _check_length(len(text), max_chars)
        if kind == "markdown":
            parsed = _parse_markdown(text, max_chars)
        else:
            parsed = ParsedDocument(text=text, source_type=kind)
    _check_length(len(parsed.text), max_chars)
    if not parsed.text.strip():
        raise InvalidRequest("The document contains no text.", code="empty_document")
    return parsed
