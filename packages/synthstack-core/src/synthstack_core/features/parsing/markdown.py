"""Markdown with ``pyromark`` (MIT), bindings to pulldown-cmark (CommonMark with GitHub's tables,
strikethrough, task lists, footnotes and alerts, and YAML front matter), read as a stream of
events, in time linear in the input. The text keeps the structure the chunker reads: headings as
``#`` lines (plain text), code blocks fenced; links and images become their text (an image's alt
text), lists and tables a line per item or row, HTML blocks are read as HTML is, and the front
matter gives the title (else the first level-1 heading) but no text. Why not ``markdown-it-py``
or ``cmarkgfm``: "Document parsing libraries" in ``docs/benchmarks.md``."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from synthstack_core.extras import requires_extra
from synthstack_core.features.parsing.document import (
    ParsedDocument,
    _Blocks,
    _clean_extracted,
    _too_complex,
)
from synthstack_core.features.parsing.html import (
    _SPACE_AROUND_NEWLINE,
    _SPACE_RUNS,
    _html_fragment,
)

if TYPE_CHECKING:
    from pyromark import Markdown

MARKDOWN_MAX_NESTING = 1_024
"""Markdown elements (block quotes, lists, emphasis, links) open one inside another."""

_FRONT_MATTER_MAX_CHARS = 64 * 1024
"""A longer block between ``---`` lines is text, not front matter (PyYAML is pure Python here)."""
# Lines of the text that the chunker would read as Markdown structure (chunking._ATX, _FENCE,
# _SETEXT) although they are text: an escaped "\\# not a heading", a line of "---" in a list.
_MARKDOWN_LOOKALIKE = re.compile(r"^(?=#{1,6}(?:[ \t]|$)|`{3}|~{3}|=+[ \t]*$|-+[ \t]*$)", re.M)
_CODE_FENCE_RUN = re.compile(r"^ {0,3}(`{3,})", re.MULTILINE)
_LINE_BREAK_TAG = re.compile(r"<br\b", re.IGNORECASE)


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
