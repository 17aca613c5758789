"""HTML with ``selectolax`` (MIT, the lexbor HTML5 parser): browser-grade tree building for broken
markup. Its tree building slows down with nesting depth, hence :data:`HTML_MAX_NESTING`. Why not
BeautifulSoup: "Document parsing libraries" in ``docs/benchmarks.md``."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from synthstack_core.extras import requires_extra
from synthstack_core.features.parsing.document import (
    _SNIFF_WINDOW,
    ParsedDocument,
    _Blocks,
    _clean_extracted,
    _normalise_newlines,
    _too_complex,
)
from synthstack_core.features.parsing.text import _bom_encoding, _decode_text

if TYPE_CHECKING:
    from selectolax.lexbor import LexborNode

HTML_MAX_NESTING = 1_024
"""Open elements one inside another; browsers stop nesting at 512."""

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
_ANY_TAG = re.compile(r"<[^<>]*>")  # linear: no lazy scan to the end of the input
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
