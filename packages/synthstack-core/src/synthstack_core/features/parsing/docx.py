"""DOCX with the standard library (``zipfile`` and a streaming ``xml.etree`` walk); ZIP bombs are
refused from the archive's central directory before anything is inflated. Why not
``python-docx`` or ``docx2python``: "Document parsing libraries" in ``docs/benchmarks.md``."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from synthstack_core.errors import InvalidRequest, PayloadTooLarge
from synthstack_core.features.parsing.document import (
    ParsedDocument,
    _Blocks,
    _clean_extracted,
    _corrupt,
    _too_complex,
)

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

DOCX_MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024
DOCX_MAX_COMPRESSION_RATIO = 100
DOCX_MAX_ENTRIES = 10_000
_RATIO_MIN_BYTES = 64 * 1024  # members smaller than this are not judged by their ratio
_DOCX_MAIN_PART = "word/document.xml"

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
