"""PDF, with ``pypdf`` (BSD-3-Clause, pure Python): it bounds decompression (75 MB a stream) and
content-stream parsing itself, is safe to use from several threads, and kept the reading order of
a two-column page. Why not PDFium, PyMuPDF or pdfminer.six: "Document parsing libraries" in
``docs/benchmarks.md``."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

from synthstack_core.errors import InvalidRequest, PayloadTooLarge
from synthstack_core.extras import requires_extra
from synthstack_core.features.parsing.document import (
    ParsedDocument,
    _check_length,
    _clean_extracted,
    _corrupt,
    _too_complex,
)

if TYPE_CHECKING:
    from pypdf import PdfReader

PDF_MAX_PAGES = 2_000
"""A PDF with more pages is refused (413 ``document_too_long``)."""
PDF_MAX_OPERATIONS = 2_000_000
"""Content-stream operators interpreted per document (15-30 s of pypdf at worst)."""
PDF_MAX_PAGE_CHARS = 100_000
"""Text shown on one page; a dense real page has under 10,000 characters."""

_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def _parse_pdf(data: bytes, max_chars: int) -> ParsedDocument:
    with requires_extra("documents", "Reading PDF", media_type="application/pdf"):
        from pypdf import PasswordType, PdfReader
        from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                # A PDF locked by an owner password only (printing, copying) opens without one.
                unlocked = reader.decrypt("") != PasswordType.NOT_DECRYPTED
            except (DependencyError, NotImplementedError):
                unlocked = False
            if not unlocked:
                raise InvalidRequest(
                    "The PDF is password-protected; upload it without a password.",
                    code="encrypted_document",
                )
        page_count = len(reader.pages)
        if page_count > PDF_MAX_PAGES:
            raise PayloadTooLarge(
                f"The PDF has {page_count:,} pages; at most {PDF_MAX_PAGES:,} are accepted.",
                code="document_too_long",
            )
        title = _pdf_title(reader)
        operations = 0
        page_chars = 0
        total = 0

        def count_operation(op: Any, args: Any, cm: Any, tm: Any) -> None:
            # Counted before pypdf runs the operator: its cost grows faster than linearly with
            # the text of one run, so the text is measured from the operands, not the output.
            nonlocal operations, page_chars
            operations += 1
            if operations > PDF_MAX_OPERATIONS:
                raise _too_complex(
                    f"The PDF needs more than {PDF_MAX_OPERATIONS:,} drawing operations."
                )
            if op in _PDF_TEXT_OPERATORS:
                page_chars += _pdf_operand_chars(args)
                if page_chars > PDF_MAX_PAGE_CHARS:
                    raise _too_complex(
                        f"A page of the PDF shows over {PDF_MAX_PAGE_CHARS:,} characters."
                    )

        parts: list[str] = []
        breaks: list[int] = []
        pending = 0  # pages without text, waiting for the offset of the next text
        for page in reader.pages:
            page_chars = 0
            raw = page.extract_text(visitor_operand_before=count_operation)
            text = _clean_pdf_page(raw or "")
            if not text:
                pending += 1
                continue
            if parts:
                total += 2
            breaks.extend([total] * (pending + 1))
            pending = 0
            parts.append(text)
            total += len(text)
            _check_length(total, max_chars)
        breaks.extend([total] * pending)
    except (InvalidRequest, PayloadTooLarge):
        raise
    except LimitReachedError:  # pypdf's own bounds: inflated sizes, tokens, page tree, forms
        raise _too_complex(
            "The PDF exceeds a size or structure limit (a stream that inflates too far, "
            "too many objects or operators)."
        ) from None
    except (FileNotDecryptedError, DependencyError):
        # DependencyError: AES encryption without the ``cryptography`` package, which pypdf
        # meets while trying the empty password.
        raise InvalidRequest(
            "The PDF is password-protected; upload it without a password.",
            code="encrypted_document",
        ) from None
    except Exception:  # pypdf raises many kinds on malformed input (and RecursionError)
        raise _corrupt("PDF") from None
    return ParsedDocument(
        text="\n\n".join(parts), source_type="pdf", page_breaks=tuple(breaks), title=title
    )


_PDF_TEXT_OPERATORS = frozenset({b"Tj", b"TJ", b"'", b'"'})


def _pdf_operand_chars(operands: Any) -> int:
    """Bytes of the strings a text-showing operator draws (arrays of ``TJ`` included)."""
    count = 0
    for operand in operands if isinstance(operands, list) else ():
        if isinstance(operand, list):
            count += _pdf_operand_chars(operand)
        elif isinstance(operand, str | bytes):
            count += len(operand)
    return count


def _pdf_title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:
        return None
    if not isinstance(title, str):
        return None
    title = " ".join(_clean_extracted(title).split())
    return title or None


def _clean_pdf_page(text: str) -> str:
    text = _clean_extracted(text)
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()
