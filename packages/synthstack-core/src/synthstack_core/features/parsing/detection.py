"""The type of a document, from its content (never from trust): PDF by its ``%PDF-`` header,
DOCX as a ZIP archive holding ``word/document.xml``, HTML by a leading ``<!doctype html`` or
``<html``; anything else that decodes is text, and Markdown or HTML when the file name says so. A
declared type is checked against the content."""

from __future__ import annotations

import io
import re
import zipfile

from synthstack_core.errors import InvalidRequest, UnsupportedMediaType
from synthstack_core.features.parsing.document import (
    _SNIFF_WINDOW,
    SourceType,
)
from synthstack_core.features.parsing.docx import _DOCX_MAIN_PART
from synthstack_core.features.parsing.text import _bom_encoding, _decode_text

_PDF_MAGIC = b"%PDF-"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_BINARY_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"RIFF", "a RIFF file (audio, video or WebP)"),
    (b"OggS", "an Ogg file"),
    (b"fLaC", "a FLAC file"),
    (b"ID3", "an MP3 file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"(\xb5/\xfd", "a zstd archive"),
    (b"7z\xbc\xaf'\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "an executable"),
    (b"\x00asm", "a WebAssembly module"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"wOFF", "a font"),
    (b"wOF2", "a font"),
)

_HTML_SNIFF = re.compile(r"\A\ufeff?\s*<(?:!doctype\s+html|html[\s>])", re.IGNORECASE)
_MARKDOWN_EXTENSIONS = (".md", ".markdown", ".mdown", ".mkd", ".mkdn")
_HTML_EXTENSIONS = (".html", ".htm", ".xhtml")
_TEXT_EXTENSIONS = (".txt", ".text", ".csv", ".tsv", ".log", ".rst", ".json", ".xml", ".yaml")


def detect_source_type(data: bytes, filename: str | None = None) -> SourceType:
    """The type :func:`parse_document` would use for ``data`` when none is declared.

    Raises the same 415/422 errors as :func:`parse_document` for content it cannot handle.
    """
    return _resolve_type(data, None, filename)


def _is_pdf(data: bytes) -> bool:
    """``%PDF-`` first (after blank bytes), or in the first KiB of a file that ends like a PDF."""
    if data[:_SNIFF_WINDOW].lstrip(b"\x00\t\n\r\f ").startswith(_PDF_MAGIC):
        return True
    return _PDF_MAGIC in data[:_SNIFF_WINDOW] and b"%%EOF" in data[-_SNIFF_WINDOW:]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _sniff_binary(data: bytes) -> tuple[str, str] | None:
    """``(kind, description)`` for binary content: kind is pdf, docx, zip, encrypted or binary."""
    if _is_pdf(data):
        return "pdf", "a PDF document"
    if data.startswith(_ZIP_MAGICS):
        if _zip_has_member(data, _DOCX_MAIN_PART):
            return "docx", "a DOCX document"
        return "zip", "a ZIP archive that is not a DOCX document"
    if data.startswith(_OLE_MAGIC) and _OLE_ENCRYPTED_PACKAGE in data:
        return "encrypted", "a password-protected Office document"
    if data.startswith((b"{\\rtf", _OLE_MAGIC)):
        return "binary", "an RTF or legacy Office document (.doc, .xls, .ppt)"
    for magic, description in _BINARY_MAGICS:
        # Several signatures are printable ("ID3", "RIFF"): a text may start with them.
        if data.startswith(magic) and not _is_utf8(data):
            return "binary", description
    if data[4:8] == b"ftyp" and not _is_utf8(data):
        return "binary", "an MP4/QuickTime/HEIF file"
    return None


def _zip_has_member(data: bytes, name: str) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.getinfo(name)
    except KeyError:
        return False
    except Exception:
        # A broken archive: it may well be a DOCX (its first entry says so).
        return b"[Content_Types].xml" in data[:200] or b"word/" in data[:200]
    return True


def _extension(filename: str | None) -> str:
    if not filename:
        return ""
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot >= 0 else ""


def _resolve_type(data: bytes, declared: SourceType | None, filename: str | None) -> SourceType:
    sniffed = _sniff_binary(data)
    if sniffed is not None and sniffed[0] == "encrypted":
        raise InvalidRequest(
            "The document is password-protected; upload it without a password.",
            code="encrypted_document",
        )
    ext = _extension(filename)
    if declared in ("pdf", "docx"):
        if sniffed is None or sniffed[0] != declared:
            raise _not_a(declared, sniffed[1] if sniffed else "text or unknown data")
        return declared
    if sniffed is not None:
        if declared is not None:
            raise InvalidRequest(
                f"The content was declared as {declared} but it is {sniffed[1]}.",
                code="corrupt_document",
            )
        if sniffed[0] == "pdf":
            return "pdf"
        if sniffed[0] == "docx":
            return "docx"
        raise UnsupportedMediaType(
            f"Unsupported document type: the content is {sniffed[1]}. "
            "Supported: plain text, Markdown, HTML, PDF and DOCX.",
            code="unsupported_document_type",
        )
    if declared is not None:
        return declared
    if ext in (".pdf", ".docx"):
        raise _not_a("pdf" if ext == ".pdf" else "docx", "text or unknown data")
    head = data[:_SNIFF_WINDOW].decode(_bom_encoding(data) or "utf-8", errors="ignore")
    if _HTML_SNIFF.match(head):
        return "html"
    if ext in _MARKDOWN_EXTENSIONS:
        return "markdown"
    if ext in _HTML_EXTENSIONS:
        return "html"
    if ext not in _TEXT_EXTENSIONS:
        try:
            _decode_text(data)
        except InvalidRequest:
            raise UnsupportedMediaType(
                "Unsupported document type: the content is neither PDF, DOCX, HTML nor "
                "UTF-8/UTF-16 text.",
                code="unsupported_document_type",
            ) from None
    return "text"


def _not_a(kind: str, found: str) -> InvalidRequest:
    return InvalidRequest(
        f"The content is not a valid {kind.upper()} document (it is {found}).",
        code="corrupt_document",
    )
