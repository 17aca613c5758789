"""Document parsing for ingestion: bytes of text, Markdown, HTML, PDF or DOCX to plain text.

The type comes from the content, never from trust: PDF by its ``%PDF-`` header, DOCX as a ZIP
archive holding ``word/document.xml``, HTML by a leading ``<!doctype html`` or ``<html``; anything
else that decodes as UTF-8 (or UTF-16/32 with a byte-order mark) is text, and Markdown when the file
name says so. A declared ``source_type`` is checked against the content.

Libraries, chosen by measurement against the alternatives (2 cores):

* PDF: ``pypdf`` (BSD-3-Clause, pure Python), about 2 ms a text page. It bounds decompression
  (75 MB a stream) and content-stream parsing itself, is safe to use from several threads, and kept
  the reading order of a two-column page. PDFium (``pypdfium2``) is five times faster, but PDFium may
  not be called from two threads at once, even on different documents, and it inflated a 1 MB
  bomb to 2 GB of memory; PyMuPDF is AGPL; pdfminer.six is six times slower.
* HTML: ``selectolax`` (MIT, the lexbor HTML5 parser): browser-grade tree building for broken
  markup, and the fastest candidate (1 MB page in 70 ms; BeautifulSoup 360-800 ms). Its tree
  building slows down with nesting depth, hence :data:`HTML_MAX_NESTING`.
* DOCX: the standard library (``zipfile`` and a streaming ``xml.etree`` walk), 2,000 paragraphs in
  30 ms. ``python-docx`` (65 ms) drops content controls, tracked insertions and text boxes;
  ``docx2python`` (300 ms) repeats merged cells and text boxes.
* Markdown: ``pyromark`` (MIT), bindings to pulldown-cmark (CommonMark with GitHub's tables,
  strikethrough, task lists, footnotes and alerts, and YAML front matter), read as a stream of
  events: 1 MB of hostile Markdown (``[`` or ``*a`` repeated, 166,000 table rows) in 0.2-7 s,
  71,000 separate HTML blocks (each read by the HTML parser) in 12-17 s, on 2 busy cores.
  ``markdown-it-py`` is quadratic on such input (1 MB of ``[``: 327 s; ``*a``: 35 s); ``cmarkgfm``
  is as fast but renders HTML only. The text keeps the structure the chunker reads: headings as
  ``#`` lines (plain text), code blocks fenced; links and images become their text (an image's
  alt text), lists and tables a line per item or row, HTML blocks are read as HTML is, and the
  front matter gives the title (else the first level-1 heading) but no text.

Everything is parsed from memory, no temporary file is written, and every format has a bound on the
work it may cause (pages, operators, nesting, ZIP sizes); hostile input ends in a 413 or 422 with a
stable ``code``, never in an unbounded loop. The parsers are imported on first use, so importing
SynthStack does not load them. The call is CPU-bound and synchronous: run it in a worker thread.

Error codes: ``unsupported_document_type`` (415), ``corrupt_document``, ``encrypted_document``,
``document_too_complex``, ``undecodable_text``, ``empty_document`` (422), ``document_too_long`` (413).
"""

from __future__ import annotations

import bisect
import codecs
import functools
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from synthstack_core.errors import FieldError, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from synthstack_core.extras import requires_extra

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

    from pypdf import PdfReader
    from pyromark import Markdown
    from selectolax.lexbor import LexborNode

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

SourceType = Literal["text", "markdown", "html", "pdf", "docx"]
SOURCE_TYPES: tuple[SourceType, ...] = get_args(SourceType)

PDF_MAX_PAGES = 2_000
"""A PDF with more pages is refused (413 ``document_too_long``)."""
PDF_MAX_OPERATIONS = 2_000_000
"""Content-stream operators interpreted per document (15-30 s of pypdf at worst)."""
PDF_MAX_PAGE_CHARS = 100_000
"""Text shown on one page; a dense real page has under 10,000 characters."""
DOCX_MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024
DOCX_MAX_COMPRESSION_RATIO = 100
DOCX_MAX_ENTRIES = 10_000
HTML_MAX_NESTING = 1_024
"""Open elements one inside another; browsers stop nesting at 512."""
MARKDOWN_MAX_NESTING = 1_024
"""Markdown elements (block quotes, lists, emphasis, links) open one inside another."""

_RATIO_MIN_BYTES = 64 * 1024  # members smaller than this are not judged by their ratio
_SNIFF_WINDOW = 1024

_PDF_MAGIC = b"%PDF-"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_DOCX_MAIN_PART = "word/document.xml"
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


def detect_source_type(data: bytes, filename: str | None = None) -> SourceType:
    """The type :func:`parse_document` would use for ``data`` when none is declared.

    Raises the same 415/422 errors as :func:`parse_document` for content it cannot handle.
    """
    return _resolve_type(data, None, filename)


# --------------------------------------------------------------------------- type detection


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


# --------------------------------------------------------------------------- text


_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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


# --------------------------------------------------------------------------- PDF


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


# --------------------------------------------------------------------------- DOCX

_W_NAMESPACES = frozenset(
    {
        "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
        "http://purl.oclc.org/ooxml/wordprocessingml/main",
    }
)
_MC_NAMESPACE = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"
# Subtrees whose text is not part of the document: deleted or moved-away revisions and field
# instructions. mc:Fallback (the legacy copy of what mc:Choice holds) is skipped as well.
_DOCX_SKIPPED = frozenset({"del", "moveFrom", "instrText", "delInstrText"})
_FALSE_VALUES = frozenset({"0", "false", "off"})


@dataclass
class _Paragraph:
    parts: list[str] = field(default_factory=list)
    style: str | None = None
    hidden_run: bool = False


@dataclass
class _Table:
    rows: list[list[str]] = field(default_factory=list)
    cell: list[str] | None = None

    def lines(self) -> list[str]:
        out = []
        for row in self.rows:
            line = " | ".join(cell for cell in row if cell)
            if line:
                out.append(line)
        return out


def _parse_docx(data: bytes, max_chars: int) -> ParsedDocument:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception:
        raise _corrupt("DOCX") from None
    with archive:
        _check_docx_archive(archive)
        try:
            styles = _docx_styles(archive)
            title = _docx_core_title(archive)
            blocks, title_from_style = _docx_body(archive, styles, max_chars)
        except (InvalidRequest, PayloadTooLarge):
            raise
        except Exception:
            raise _corrupt("DOCX") from None
    return ParsedDocument(text=blocks.text(), source_type="docx", title=title or title_from_style)


def _check_docx_archive(archive: zipfile.ZipFile) -> None:
    """Refuse ZIP bombs from the central directory alone, before inflating anything."""
    entries = archive.infolist()
    if len(entries) > DOCX_MAX_ENTRIES:
        raise _too_complex(f"The DOCX archive has more than {DOCX_MAX_ENTRIES:,} entries.")
    total = 0
    compressed = 0
    for entry in entries:
        total += entry.file_size
        compressed += entry.compress_size
        if entry.flag_bits & 0x1:
            raise InvalidRequest(
                "The DOCX archive is encrypted; upload it without a password.",
                code="encrypted_document",
            )
        if (
            entry.file_size >= _RATIO_MIN_BYTES
            and entry.file_size > DOCX_MAX_COMPRESSION_RATIO * max(entry.compress_size, 1)
        ):
            raise _too_complex(
                f"The DOCX archive member {entry.filename!r} is compressed more than "
                f"{DOCX_MAX_COMPRESSION_RATIO}:1 (a ZIP bomb?)."
            )
    if total > DOCX_MAX_UNCOMPRESSED_BYTES:
        raise _too_complex(
            f"The DOCX archive expands to {total:,} bytes; the limit is "
            f"{DOCX_MAX_UNCOMPRESSED_BYTES:,}."
        )
    if total >= _RATIO_MIN_BYTES and total > DOCX_MAX_COMPRESSION_RATIO * max(compressed, 1):
        raise _too_complex(
            f"The DOCX archive is compressed more than {DOCX_MAX_COMPRESSION_RATIO}:1 (a ZIP bomb?)."
        )


def _local(tag: str) -> tuple[str, str]:
    """``(namespace, local name)`` of an ElementTree tag."""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _w_attr(element: Element, name: str) -> str | None:
    for key, value in element.attrib.items():
        namespace, local = _local(key)
        if local == name and (namespace in _W_NAMESPACES or not namespace):
            return value
    return None


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        with archive.open(name) as member:
            return member.read(DOCX_MAX_UNCOMPRESSED_BYTES + 1)
    except KeyError:
        return None


def _docx_styles(archive: zipfile.ZipFile) -> dict[str, str]:
    """Paragraph style id → style name (``heading 1``, ``Title``; ids are localised, names not)."""
    from xml.etree import ElementTree

    raw = _read_member(archive, "word/styles.xml")
    if raw is None:
        return {}
    try:
        root = ElementTree.fromstring(raw)  # noqa: S314 (see _iter_events)
    except ElementTree.ParseError:
        return {}  # the text does not depend on styles
    styles: dict[str, str] = {}
    for style in root:
        if _local(style.tag)[1] != "style":
            continue
        style_id = _w_attr(style, "styleId")
        for child in style:
            if _local(child.tag)[1] == "name" and style_id:
                styles[style_id] = _w_attr(child, "val") or style_id
    return styles


def _docx_core_title(archive: zipfile.ZipFile) -> str | None:
    from xml.etree import ElementTree

    raw = _read_member(archive, "docProps/core.xml")
    if raw is None:
        return None
    try:
        element = ElementTree.fromstring(raw).find(_DC_TITLE)  # noqa: S314 (see _iter_events)
    except ElementTree.ParseError:
        return None
    if element is None or not element.text:
        return None
    return " ".join(_clean_extracted(element.text).split()) or None


def _iter_events(archive: zipfile.ZipFile) -> Iterator[tuple[str, Element]]:
    """Start/end events of the main part, each element dropped from its parent when it ends.

    ``xml.etree`` on expat >= 2.4.1 (CPython 3.11 bundles 2.5) refuses entity-expansion bombs and
    never loads external entities or DTDs, which is all ``defusedxml`` would add here; the sizes
    were bounded from the ZIP directory before this runs.
    """
    from xml.etree import ElementTree

    with archive.open(_DOCX_MAIN_PART) as stream:
        path: list[Element] = []
        for event, element in ElementTree.iterparse(stream, events=("start", "end")):  # noqa: S314
            if event == "start":
                path.append(element)
                yield event, element
                continue
            yield event, element
            path.pop()
            element.clear()
            if path and len(path[-1]) and path[-1][-1] is element:
                del path[-1][-1]


def _docx_body(
    archive: zipfile.ZipFile, styles: dict[str, str], max_chars: int
) -> tuple[_Blocks, str | None]:
    """Walk the main part as a stream: paragraphs and table rows, in document order."""
    blocks = _Blocks(max_chars)
    paragraphs: list[_Paragraph] = []
    tables: list[_Table] = []
    skip_depth = 0
    run_depth = 0
    title: str | None = None

    def emit(text: str) -> None:
        if tables and tables[-1].cell is not None:
            tables[-1].cell.append(text)
        else:
            blocks.add(text)

    for event, element in _iter_events(archive):
        namespace, name = _local(element.tag)
        if event == "start":
            if skip_depth:
                skip_depth += 1
            elif (namespace in _W_NAMESPACES and name in _DOCX_SKIPPED) or (
                namespace == _MC_NAMESPACE and name == "Fallback"
            ):
                skip_depth = 1
            elif namespace in _W_NAMESPACES:
                if name == "p":
                    paragraphs.append(_Paragraph())
                elif name == "r":
                    run_depth += 1
                    if paragraphs:
                        paragraphs[-1].hidden_run = False
                elif name == "tbl":
                    tables.append(_Table())
                elif name == "tr" and tables:
                    tables[-1].rows.append([])
                elif name == "tc" and tables:
                    tables[-1].cell = []
            continue
        if skip_depth:
            skip_depth -= 1
            continue
        if namespace not in _W_NAMESPACES:
            continue
        paragraph = paragraphs[-1] if paragraphs else None
        if name == "t" and paragraph is not None and not paragraph.hidden_run:
            paragraph.parts.append(element.text or "")
        elif name in ("tab", "br", "cr", "noBreakHyphen") and run_depth and paragraph:
            paragraph.parts.append({"tab": "\t", "noBreakHyphen": "-"}.get(name, "\n"))
        elif name == "vanish" and run_depth and paragraph is not None:
            paragraph.hidden_run = _w_attr(element, "val") not in _FALSE_VALUES
        elif name == "pStyle" and not run_depth and paragraph is not None:
            paragraph.style = _w_attr(element, "val")
        elif name == "r":
            run_depth = max(0, run_depth - 1)
        elif name == "p" and paragraph is not None:
            paragraphs.pop()
            text = _clean_extracted("".join(paragraph.parts)).strip()
            if not text:
                continue
            style_name = styles.get(paragraph.style or "", paragraph.style or "")
            if title is None and style_name.lower() == "title":
                title = " ".join(text.split())
            emit(text)
        elif name == "tc" and tables:
            table = tables[-1]
            if table.cell is not None and table.rows:
                table.rows[-1].append(" ".join(part for part in table.cell if part))
            table.cell = None
        elif name == "tbl" and tables:
            lines = tables.pop().lines()
            if tables and tables[-1].cell is not None:
                tables[-1].cell.append("; ".join(lines))
            else:
                blocks.add("\n".join(lines))
    return blocks, title


# --------------------------------------------------------------------------- HTML

_HTML_SKIPPED = frozenset(
    {
        "head", "script", "style", "noscript", "template", "svg", "math", "canvas", "iframe",
        "object", "embed", "nav", "aside", "button", "select", "textarea", "dialog",
    }
)  # fmt: skip
_HTML_PAGE_CHROME = frozenset({"header", "footer"})  # skipped outside article/main
_HTML_CONTENT = frozenset({"article", "main"})
_HTML_BLOCKS = frozenset(
    {
        "address", "article", "blockquote", "body", "caption", "dd", "details", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "ol", "p", "section",
        "summary", "table", "tbody", "tfoot", "thead", "ul", "center", "search",
    }
)  # fmt: skip
_HTML_VOID = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "frame", "keygen", "basefont", "bgsound", "image",
    }
)  # fmt: skip
_HTML_SELF_CLOSING = frozenset(
    {
        "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option",
        "optgroup", "rb", "rt", "rp", "rtc", "colgroup", "caption", "html", "head", "body",
    }
)  # fmt: skip
# Linear-time patterns only: no lazy scan that may run to the end of the input from every "<".
_HTML_TAG = re.compile(r"<(/?)([a-z][a-z0-9-]*)[^<>]*>")
_HTML_OPAQUE_START = re.compile(r"<!--|<script\b|<style\b")
_HTML_OPAQUE_END = {"<!--": "-->", "<script": "</script", "<style": "</style"}
_HTML_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([a-zA-Z0-9_.:-]+)", re.I)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_INLINE_SPACE = re.compile(r"\s+")
_SPACE_RUNS = re.compile(r"[^\S\n]+")
_SPACE_AROUND_NEWLINE = re.compile(r" *\n *")


def _decode_html(data: bytes) -> str:
    """BOM, else ``<meta charset>``, else UTF-8; undecodable → 422 ``undecodable_text``."""
    if _bom_encoding(data) is not None:
        return _decode_text(data)
    match = _HTML_META_CHARSET.search(data[:_SNIFF_WINDOW])
    if match:
        label = match.group(1).decode("ascii").lower()
        try:
            encoding = codecs.lookup(label).name
        except LookupError:
            encoding = "utf-8"
        if encoding.startswith(("utf-16", "utf-32")):
            encoding = "utf-8"  # a byte stream without a BOM is not UTF-16 (HTML Standard)
        if encoding != "utf-8":
            text = data.decode(encoding, errors="replace")
            return _normalise_newlines(text.replace("\x00", ""))
    return _decode_text(data)


def _without_opaque(lower: str) -> str:
    """Lower-cased HTML without comments, scripts and styles, whose content is not markup."""
    kept: list[str] = []
    position = 0
    while True:
        match = _HTML_OPAQUE_START.search(lower, position)
        if match is None:
            kept.append(lower[position:])
            break
        kept.append(lower[position : match.start()])
        closing = _HTML_OPAQUE_END[match.group()]
        end = lower.find(closing, match.end())
        if end < 0:
            break
        position = end + len(closing)
    return "".join(kept)


def _html_nesting(html: str) -> int:
    """An upper estimate of how deep elements nest (lexbor's tree building is O(depth) per tag)."""
    depth = 0
    deepest = 0
    for match in _HTML_TAG.finditer(_without_opaque(html.lower())):
        name = match.group(2)
        if name in _HTML_VOID or name in _HTML_SELF_CLOSING or match.group().endswith("/>"):
            continue
        if match.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


class _HtmlText:
    """Accumulates inline text into blocks; table cells on one line, separated by `` | ``."""

    def __init__(self, blocks: _Blocks) -> None:
        self.blocks = blocks
        self.parts: list[str] = []
        self.cell_pending = False  # a table cell started: separate it from the previous one
        self.line_has_text = False

    def text(self, text: str) -> None:
        text = _INLINE_SPACE.sub(" ", text)
        if not text.strip():
            if self.parts:
                self.parts.append(text)
            return
        if self.cell_pending and self.line_has_text:
            self.parts.append(" | ")
        self.cell_pending = False
        self.line_has_text = True
        self.parts.append(text)

    def newline(self) -> None:
        if self.parts:
            self.parts.append("\n")
        self.cell_pending = False
        self.line_has_text = False

    def end_row(self) -> None:
        if self.line_has_text:
            self.newline()
        self.cell_pending = False

    def flush(self) -> None:
        joined = _SPACE_RUNS.sub(" ", "".join(self.parts))
        self.parts = []
        self.cell_pending = False
        self.line_has_text = False
        self.blocks.add(_SPACE_AROUND_NEWLINE.sub("\n", joined))


def _parse_html(data: bytes, max_chars: int) -> ParsedDocument:
    html = _decode_html(data)
    if _html_nesting(html) > HTML_MAX_NESTING:
        raise _too_complex(f"The HTML nests elements more than {HTML_MAX_NESTING:,} deep.")
    with requires_extra("documents", "Reading HTML", media_type="text/html"):
        from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    title_node = tree.head.css_first("title") if tree.head is not None else None
    title = " ".join(_clean_extracted(title_node.text()).split()) if title_node else ""
    blocks = _Blocks(max_chars)
    out = _HtmlText(blocks)
    first_h1: list[str] = []
    if tree.body is not None:
        _walk_html(tree.body, out, first_h1)
    out.flush()
    text = _clean_extracted(blocks.text())
    return ParsedDocument(
        text=text, source_type="html", title=title or (first_h1[0] if first_h1 else None)
    )


def _html_hidden(node: LexborNode) -> bool:
    attributes = node.attributes
    if "hidden" in attributes or (attributes.get("aria-hidden") or "").lower() == "true":
        return True
    return bool(_HIDDEN_STYLE.search(attributes.get("style") or ""))


def _walk_html(body: LexborNode, out: _HtmlText, first_h1: list[str]) -> None:
    """Depth-first over the tree without recursion (deep documents cannot overflow the stack)."""
    content_depth = 0
    # (node, None) enters a node; (node, action) runs the action when leaving it.
    stack: list[tuple[LexborNode, Callable[[], None] | None]] = [(body, None)]
    while stack:
        node, leave = stack.pop()
        if leave is not None:
            leave()
            continue
        tag = node.tag or ""
        if tag == "-text":
            out.text(node.text_content or "")
            continue
        if not node.is_element_node or tag in _HTML_SKIPPED or _html_hidden(node):
            continue
        if tag in _HTML_PAGE_CHROME and not content_depth:
            continue
        if tag == "br":
            out.newline()
            continue
        if tag == "pre":
            out.flush()
            out.blocks.add(_clean_extracted(node.text(deep=True)), preformatted=True)
            continue
        if tag in ("td", "th"):
            out.cell_pending = True
        elif tag == "tr":  # rows are lines of the table's block
            out.end_row()
            stack.append((node, out.end_row))
        elif tag in _HTML_BLOCKS:
            out.flush()
            if tag == "h1" and not first_h1:
                stack.append((node, partial(_record_h1, node, first_h1)))
            stack.append((node, out.flush))
        if tag in _HTML_CONTENT:
            content_depth += 1

            def leave_content() -> None:
                nonlocal content_depth
                content_depth -= 1

            stack.append((node, leave_content))
        children = []
        child = node.child
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend((child, None) for child in reversed(children))


def _record_h1(node: LexborNode, first_h1: list[str]) -> None:
    text = " ".join(_clean_extracted(node.text(deep=True)).split())
    if text and not first_h1:
        first_h1.append(text)


# --------------------------------------------------------------------------- Markdown

_FRONT_MATTER_MAX_CHARS = 64 * 1024
"""A longer block between ``---`` lines is text, not front matter (PyYAML is pure Python here)."""
# Lines of the text that the chunker would read as Markdown structure (chunking._ATX, _FENCE,
# _SETEXT) although they are text: an escaped "\\# not a heading", a line of "---" in a list.
_MARKDOWN_LOOKALIKE = re.compile(r"^(?=#{1,6}(?:[ \t]|$)|`{3}|~{3}|=+[ \t]*$|-+[ \t]*$)", re.M)
_CODE_FENCE_RUN = re.compile(r"^ {0,3}(`{3,})", re.MULTILINE)
_LINE_BREAK_TAG = re.compile(r"<br\b", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[^<>]*>")  # linear: no lazy scan to the end of the input


@functools.cache
def _markdown_parser() -> Markdown:
    """CommonMark with GitHub's tables, strikethrough, task lists, footnotes and alerts
    (``> [!NOTE]``), and YAML front matter (pulldown-cmark's metadata blocks)."""
    with requires_extra("documents", "Reading Markdown", media_type="text/markdown"):
        from pyromark import Markdown, Options

    return Markdown(
        options=Options.ENABLE_TABLES
        | Options.ENABLE_FOOTNOTES
        | Options.ENABLE_STRIKETHROUGH
        | Options.ENABLE_TASKLISTS
        | Options.ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options.ENABLE_GFM
    )


def _inline_text(parts: list[str]) -> str:
    joined = _SPACE_RUNS.sub(" ", "".join(parts))
    return _SPACE_AROUND_NEWLINE.sub("\n", joined).strip()


def _front_matter(block: str) -> tuple[bool, str | None]:
    """Whether a block between ``---`` lines at the top is front matter (a YAML mapping), and
    its ``title``. Anything else there (a rule, a paragraph, a rule) is the author's text."""
    if len(block) > _FRONT_MATTER_MAX_CHARS:
        return False, None
    import yaml

    try:
        data = yaml.safe_load(block)
    except Exception:  # any YAMLError, and RecursionError on absurd nesting
        return False, None
    if not isinstance(data, dict):
        return False, None
    title = data.get("title")
    if not isinstance(title, str):
        return True, None
    return True, " ".join(_clean_extracted(title).split()) or None


def _code_block(code: str, info: str) -> str:
    """A code block fenced anew: the chunker finds no heading in it; its language is kept."""
    longest = max((len(run) for run in _CODE_FENCE_RUN.findall(code)), default=0)
    fence = "`" * max(3, longest + 1)
    language = info.split()[0] if info.split() else ""
    if "`" in language:
        language = ""
    return f"{fence}{language}\n{code.rstrip()}\n{fence}"


class _MarkdownText:
    """Markdown events (pulldown-cmark's, through ``pyromark``) to blocks of plain text.

    Leaf blocks (paragraphs, headings, list items, table rows) become lines; a list or a table is
    one block of lines (an item or a row a line), anything else a block of its own.
    """

    def __init__(self, max_chars: int) -> None:
        self.blocks = _Blocks(max_chars)
        self.lines: list[str] = []  # of the list or table being read
        self.groups = 0  # lists and tables open
        self.parts: list[str] = []  # inline text of the current leaf block
        self.prefix = ""  # "3. " before the first line of an ordered list item
        self.numbers: list[int | None] = []  # the next number of each open list (None: bullets)
        self.row: list[str] | None = None
        self.raw: list[str] | None = None  # code, HTML or front matter being collected
        self.code_info = ""  # a fenced code block's info string: its language
        self.first_h1: list[str] = []
        self.front_matter_title: str | None = None
        self.started = False  # anything before a metadata block makes it text, not front matter

    def emit(self, text: str, *, verbatim: bool = False) -> None:
        if not text:
            return
        if not verbatim:
            text = _MARKDOWN_LOOKALIKE.sub("\\\\", text)
        if self.groups:
            self.lines.append(text)
        else:
            self.blocks.add(text)

    def end_leaf(self) -> None:
        text = _inline_text(self.parts)
        self.parts = []
        if text:
            self.emit(self.prefix + text)
            self.prefix = ""

    def end_group(self) -> None:
        if self.lines:
            self.blocks.add("\n".join(self.lines))
        self.lines = []

    def start(self, tag: str, value: Any) -> None:
        if tag in ("Emphasis", "Strong", "Strikethrough", "Link", "Image"):
            return  # their text is the text; an image's is its alt text
        if tag != "MetadataBlock":
            self.started = True
        self.end_leaf()
        if tag in ("List", "Table"):
            self.groups += 1
            if tag == "List":
                self.numbers.append(value if isinstance(value, int) else None)
        elif tag == "Item":
            self.prefix = ""
            if self.numbers and self.numbers[-1] is not None:
                number = self.numbers[-1]
                self.prefix = f"{number}. "
                self.numbers[-1] = number + 1
        elif tag in ("TableHead", "TableRow"):
            self.row = []
        elif tag in ("CodeBlock", "HtmlBlock", "MetadataBlock"):
            self.raw = []
            if tag == "CodeBlock":
                self.code_info = str(value.get("Fenced", "")) if isinstance(value, dict) else ""

    def end(self, tag: str, value: object, html: Callable[[str], list[str]]) -> None:
        if tag in ("Emphasis", "Strong", "Strikethrough", "Link", "Image"):
            return
        if tag == "Heading":
            heading = " ".join(_inline_text(self.parts).split())
            self.parts = []
            level = int(str(value)[1:])  # "H1" … "H6"
            if heading and level == 1 and not self.first_h1:
                self.first_h1.append(heading)
            self.emit("#" * level + " " + heading if heading else "", verbatim=True)
        elif tag == "TableCell":
            if self.row is not None:
                self.row.append(" ".join(_inline_text(self.parts).split()))
            self.parts = []
        elif tag in ("TableHead", "TableRow"):
            self.emit(" | ".join(cell for cell in self.row or () if cell))
            self.row = None
        elif tag == "CodeBlock":
            code = _clean_extracted("".join(self.raw or ()))
            self.raw = None
            if code.strip():
                self.end_group()
                self.blocks.add(_code_block(code, self.code_info), preformatted=True)
        elif tag == "HtmlBlock":
            fragment = "".join(self.raw or ())
            self.raw = None
            for block in html(fragment):
                self.emit(block)
        elif tag == "MetadataBlock":
            text = "".join(self.raw or ())
            self.raw = None
            is_front_matter, title = (False, None) if self.started else _front_matter(text)
            if is_front_matter:
                self.front_matter_title = title
            else:  # further down, or not YAML: the author's text after all
                self.emit(_inline_text([text]))
            self.started = True
        else:
            self.end_leaf()
            if tag in ("List", "Table"):
                self.groups -= 1
                if tag == "List" and self.numbers:
                    self.numbers.pop()
                if not self.groups:
                    self.end_group()


def _parse_markdown(text: str, max_chars: int) -> ParsedDocument:
    """Markdown as text: headings as ``#`` lines (the chunker's sections), code fenced, links
    and images as their text, lists and tables a line per item or row; HTML as HTML."""
    out = _MarkdownText(max_chars)

    def html(fragment: str) -> list[str]:
        return _html_fragment(fragment, max_chars, out.first_h1)

    depth = 0
    for event in cast("Iterator[str | dict[str, Any]]", _markdown_parser().events(text)):
        if isinstance(event, str):  # SoftBreak, HardBreak, Rule
            if event == "SoftBreak":
                out.parts.append(" ")
            elif event == "HardBreak":
                out.parts.append("\n")
            else:
                out.end_leaf()
            continue
        ((kind, value),) = event.items()
        if kind in ("Start", "End"):
            tag, payload = (value, None) if isinstance(value, str) else next(iter(value.items()))
            if kind == "Start":
                depth += 1
                if depth > MARKDOWN_MAX_NESTING:
                    raise _too_complex(
                        f"The Markdown nests elements more than {MARKDOWN_MAX_NESTING:,} deep."
                    )
                out.start(tag, payload)
            else:
                depth -= 1
                out.end(tag, payload, html)
        elif kind in ("Text", "Html") and out.raw is not None:
            out.raw.append(value)
        elif kind in ("Text", "Code"):
            out.parts.append(value)
        elif kind == "InlineHtml" and _LINE_BREAK_TAG.match(value):
            out.parts.append("\n")
        # Other events carry no text: InlineHtml tags, FootnoteReference, TaskListMarker.
    out.end_leaf()
    out.end_group()
    title = out.front_matter_title or (out.first_h1[0] if out.first_h1 else None)
    return ParsedDocument(
        text=_clean_extracted(out.blocks.text()), source_type="markdown", title=title
    )


def _html_fragment(fragment: str, max_chars: int, first_h1: list[str]) -> list[str]:
    """The text blocks of HTML inside Markdown, read as an HTML document is."""
    if not _ANY_TAG.sub("", _without_opaque(fragment.lower())).strip():
        return []  # tags only: "<details>", "</div>", an image, a comment
    if _html_nesting(fragment) > HTML_MAX_NESTING:
        raise _too_complex(f"The HTML nests elements more than {HTML_MAX_NESTING:,} deep.")
    with requires_extra("documents", "Reading HTML", media_type="text/html"):
        from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(fragment)
    blocks = _Blocks(max_chars)
    if tree.body is not None:
        out = _HtmlText(blocks)
        _walk_html(tree.body, out, first_h1)
        out.flush()
    return [_clean_extracted(block) for block in blocks.blocks]
