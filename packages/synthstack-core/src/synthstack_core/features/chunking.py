"""Token-aware recursive splitting of a document into chunks for retrieval (RAG ingestion).

``split_text`` cuts a text into chunks of at most ``chunk_size`` tokens, counted by a pluggable
``TokenCounter`` (the embedding model's own tokenizer, :mod:`.token_counters`), each chunk repeating about
``chunk_overlap`` tokens of the previous one. Every chunk carries its exact character span in the
original text (``text[chunk.start:chunk.end] == chunk.text``), so a search hit can be highlighted
and cited in the source document.

How it works
------------
1. **Break points.** Every position where a chunk may end gets a *strength*, the level of the
   recursive hierarchy that would split there:

   ====================  ================================================================
   section               before a Markdown heading (ATX ``#`` … ``######`` or a setext
                         underline; H1 is stronger than H2, …; not inside fenced code). The
                         break after a heading line counts as a space: a heading stays with
                         the text it introduces
   paragraph             a blank line, a form feed or U+2029, and the start of a PDF page
   line                  a single line break (for ``pdf``, hard-wrapped lines rank *below*
                         sentence ends: a PDF line break is usually just layout)
   sentence              ``.``, ``!``, ``?`` or an ellipsis (maybe followed by a closing quote
                         or bracket) then whitespace; the CJK full stop, exclamation and
                         question marks with or without whitespace after
   space                 any other whitespace
   punctuation           after ``, ; : ) ] } > | & / =`` (and their CJK fullwidth forms)
                         inside a run of more than 32 non-space characters (minified JSON,
                         URLs, CSV rows, CJK text without spaces)
   hard                  a character cut inside such a run, never inside a grapheme cluster
                         (combining marks, ZWJ emoji sequences, flags) nor a CRLF — unless a
                         single cluster is itself over ``chunk_size``
   ====================  ================================================================

   Whitespace-separated break points are placed at the *start* of the whitespace run, so the
   units between consecutive break points are "leading whitespace + word": the way cl100k's
   pre-tokenizer groups them (`` world``), which keeps the sum of the units' token counts very
   close to the count of their concatenation.

2. **Units.** The text is tiled by the units between consecutive break points; runs longer than 32
   characters are cut (punctuation first, then hard cuts) so that no unit is large. Each distinct
   unit is counted once (memoised), giving a prefix sum ``P`` with which the (estimated) tokens of
   any span of units are ``P[e] - P[s]``: no text is counted twice while planning, so planning is
   linear in the text. A unit alone over the budget (an emoji run with a tiny ``chunk_size``) is
   split further into grapheme clusters, and those into code points.

3. **Chunks.** From the end of the previous chunk (``covered``), the next chunk starts ``about
   chunk_overlap`` tokens earlier, at the first word boundary whose tail fits the overlap (never
   before the previous chunk's start, nor, in Markdown, across a heading: a section starts fresh).
   Its end is the *strongest* break point that keeps the chunk within ``chunk_size``, the latest
   one among equally strong ones: sections are kept whole when they fit, else split at paragraphs,
   else at lines, sentences, words, and characters as the last resort — the recursive splitter's
   order, found with one binary search per strength level. Below a section, a break is taken only
   once the chunk is at least half full (:data:`MIN_FILL`), so a short paragraph — a title above
   its abstract — is packed with the sentences after it rather than left as a chunk of its own. If
   even the first new unit does not fit behind the overlap, the overlap shrinks.

4. **Verification.** BPE counts are only approximately additive, so every chunk is counted again
   for real (after stripping its surrounding whitespace). If it overshoots, the chunk is planned
   again with the budget lowered by the excess; a single unit that still overshoots is split
   finer. The reported ``token_count`` is that real count, always ``<= chunk_size``.

Guarantees: the splitter always terminates and advances (each chunk starts after the previous
chunk's start and ends after its end); every chunk fits; the chunks cover every non-whitespace
character; no chunk is empty or whitespace only; an empty or whitespace-only text gives ``[]``.
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

from synthstack_core.features.token_counters import (
    Cl100kTokenCounter,
    TokenCounter,
    WordPieceTokenCounter,
)

__all__ = [
    "MIN_CHUNK_SIZE",
    "SOURCE_TYPES",
    "Chunk",
    "Cl100kTokenCounter",
    "SourceType",
    "TokenCounter",
    "WordPieceTokenCounter",
    "split_text",
    "validate_chunk_params",
]

SourceType = Literal["text", "markdown", "html", "pdf", "docx"]
#: The source types ``split_text`` accepts.
SOURCE_TYPES: Final[tuple[str, ...]] = get_args(SourceType)
#: The smallest ``chunk_size`` accepted, in tokens.
MIN_CHUNK_SIZE: Final = 16


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk: its position among the chunks, its text and where that text is in the original.

    ``text == original[start:end]`` exactly; ``token_count`` is the counter's count of ``text``;
    ``page`` is the 1-based page of ``start`` when page breaks were given, else ``None``.
    """

    index: int
    text: str
    start: int
    end: int
    token_count: int
    page: int | None = None


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def validate_chunk_params(chunk_size: int, chunk_overlap: int) -> None:
    """Raise ``ValueError`` unless ``chunk_size >= 16`` and ``0 <= chunk_overlap < chunk_size / 2``.

    Call it before any expensive work (parsing an upload) to reject a request early.
    """
    for name, value in (("chunk_size", chunk_size), ("chunk_overlap", chunk_overlap)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}.")
    if chunk_size < MIN_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be at least {MIN_CHUNK_SIZE} tokens, got {chunk_size}.")
    if chunk_overlap < 0:
        raise ValueError(f"chunk_overlap must not be negative, got {chunk_overlap}.")
    if 2 * chunk_overlap >= chunk_size:
        raise ValueError(
            f"chunk_overlap must be less than half of chunk_size ({chunk_size}), "
            f"got {chunk_overlap}."
        )


# --------------------------------------------------------------------------------------------
# Break points
# --------------------------------------------------------------------------------------------

# Strengths, weakest first. Headings take _SECTION + (6 - level): H6 = 7 … H1 = 12.
_HARD: Final = 0
_PUNCT: Final = 1
_SPACE: Final = 2
_WRAP: Final = 3  # a single line break in a PDF
_SENTENCE: Final = 4
_LINE: Final = 5
_PARAGRAPH: Final = 6
_SECTION: Final = 7
_END: Final = 13

#: A chunk ends at a paragraph, line, sentence or word break only once it holds at least this share
#: of ``chunk_size`` (sections and the end of the text excepted): no tiny chunk of a title alone.
MIN_FILL: Final = 0.5

#: Runs of non-space characters longer than this are cut into units (punctuation, then hard cuts).
_MAX_UNIT: Final = 32

_WS_RUN = re.compile(r"\s+")
_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\x85\u2028]")
_CJK_STOPS: Final = (
    "\u3002\uff01\uff1f\uff61"  # ideographic full stop, fullwidth ! ?, halfwidth stop
)
_SENTENCE_END = frozenset(".!?\u2026\u203c\u2047\u2048\u2049" + _CJK_STOPS)
# Closing quotes and brackets that may follow a sentence terminator (ASCII, typographic, CJK).
_CLOSING: Final = "\"')]}\u00bb\u201d\u2019\u300d\u300f\uff09\u3011\u3015\u3009\u300b"
_CLOSERS = frozenset(_CLOSING)
_CJK_SENTENCE = re.compile(f"[{re.escape(_CJK_STOPS)}]+[{re.escape(_CLOSING)}]*(?=\\S)")
# Cut after these inside long runs; the CJK ones are the fullwidth comma, semicolon and colon,
# the ideographic comma and closing brackets.
_PUNCT_CUT = re.compile(
    "[" + re.escape(",;:)]}>|&/=\uff0c\u3001\uff1b\uff1a\uff09\u300d\u300f\u3011") + "]"
)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
_ATX = re.compile(r"^ {0,3}(#{1,6})(?=[ \t]|\r?$)", re.MULTILINE)
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*\r?$", re.MULTILINE)
_ZWJ: Final = "\u200d"


def _ends_sentence(text: str, pos: int) -> bool:
    """Whether the text before ``pos`` ends a sentence (terminator, maybe a closing quote)."""
    before = text[pos - 1]
    if before in _SENTENCE_END:
        return True
    return before in _CLOSERS and pos >= 2 and text[pos - 2] in _SENTENCE_END


def _whitespace_breaks(text: str, pdf: bool) -> dict[int, int]:
    """Break points at the start of every whitespace run, with the run's strength."""
    points: dict[int, int] = {}
    line = _WRAP if pdf else _LINE
    for match in _WS_RUN.finditer(text):
        start = match.start()
        if start == 0:
            continue
        run = match.group()
        if run == " ":
            points[start] = _SENTENCE if _ends_sentence(text, start) else _SPACE
            continue
        if "\f" in run or "\u2029" in run:
            points[start] = _PARAGRAPH
            continue
        breaks = len(_LINE_BREAK.findall(run))
        if breaks >= 2:
            points[start] = _PARAGRAPH
        elif breaks == 1 and line > _SENTENCE:
            points[start] = line
        else:
            floor = line if breaks else _SPACE
            points[start] = max(floor, _SENTENCE if _ends_sentence(text, start) else _SPACE)
    return points


def _run_start(text: str, pos: int) -> int:
    """The start of the whitespace run that ends at ``pos`` (``pos`` itself if there is none)."""
    while pos > 0 and text[pos - 1].isspace():
        pos -= 1
    return pos


def _fenced_regions(text: str) -> list[tuple[int, int]]:
    """Character ranges of fenced code blocks (``` or ~~~), where ``#`` is not a heading."""
    regions: list[tuple[int, int]] = []
    opened: tuple[str, int, int] | None = None
    for match in _FENCE.finditer(text):
        fence = match.group(1)
        if opened is None:
            opened = (fence[0], len(fence), match.start())
        elif fence[0] == opened[0] and len(fence) >= opened[1]:
            regions.append((opened[2], match.end()))
            opened = None
    if opened is not None:
        regions.append((opened[2], len(text)))
    return regions


def _heading_breaks(text: str) -> tuple[dict[int, int], list[int]]:
    """Section break points before each Markdown heading (ATX and setext), not in fenced code.

    Also returns the break points right after each heading line: those are demoted to plain
    spaces, so that a heading stays with the text it introduces instead of ending a chunk alone.
    """
    fences = _fenced_regions(text)
    fence_starts = [start for start, _ in fences]

    def in_fence(pos: int) -> bool:
        i = bisect.bisect_right(fence_starts, pos) - 1
        return i >= 0 and pos < fences[i][1]

    sections: dict[int, int] = {}
    after: list[int] = []

    def add(line_start: int, last_line_start: int, level: int) -> None:
        if in_fence(line_start):
            return
        pos = _run_start(text, line_start)
        if pos > 0:
            sections[pos] = max(sections.get(pos, 0), _SECTION + 6 - level)
        line_end = text.find("\n", last_line_start)
        if line_end > 0:
            after.append(_run_start(text, line_end))

    for match in _ATX.finditer(text):
        add(match.start(), match.start(), len(match.group(1)))
    for match in _SETEXT.finditer(text):
        underline = match.start()
        if underline < 2:
            continue
        title_start = text.rfind("\n", 0, underline - 1) + 1
        if text[title_start : underline - 1].strip():
            add(title_start, underline, 1 if match.group(1)[0] == "=" else 2)
    return sections, after


def _break_points(text: str, source_type: str, page_starts: Sequence[int]) -> dict[int, int]:
    """Every natural break point of ``text`` (position -> strength), before unit cutting."""
    points = _whitespace_breaks(text, pdf=source_type == "pdf")
    for match in _CJK_SENTENCE.finditer(text):
        points[match.end()] = max(points.get(match.end(), 0), _SENTENCE)
    if source_type == "markdown":
        sections, after_headings = _heading_breaks(text)
        for pos in after_headings:
            if pos in points:
                points[pos] = _SPACE
        for pos, strength in sections.items():
            points[pos] = max(points.get(pos, 0), strength)
    for page_start in page_starts:
        pos = _run_start(text, page_start) if text[page_start - 1].isspace() else page_start
        if 0 < pos < len(text):
            points[pos] = max(points.get(pos, 0), _PARAGRAPH)
    return points


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _cut_allowed(text: str, pos: int, lo: int = 0) -> bool:
    """Whether cutting before ``text[pos]`` keeps grapheme clusters (and CRLF) whole.

    A simplification of Unicode's extended grapheme clusters: no cut before a combining mark,
    a variation selector, an emoji skin-tone modifier or a tag character, none on either side of a
    zero-width joiner, none inside a regional-indicator pair (a flag), none between CR and LF.
    Regional indicators are paired counting from ``lo`` (an earlier cut), which bounds the scan.
    """
    char, before = text[pos], text[pos - 1]
    if (before == "\r" and char == "\n") or char == _ZWJ or before == _ZWJ:
        return False
    code = ord(char)
    if 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:
        return False
    if unicodedata.category(char)[0] == "M":
        return False
    if _is_regional_indicator(char) and _is_regional_indicator(before):
        run = 0
        while pos - run - 1 >= lo and _is_regional_indicator(text[pos - run - 1]):
            run += 1
        return run % 2 == 0
    return True


def _hard_cuts(text: str, start: int, end: int) -> list[int]:
    """Cut positions in ``(start, end)`` every ``_MAX_UNIT`` characters, at cluster boundaries."""
    cuts: list[int] = []
    pos = start + _MAX_UNIT
    while pos < end:
        cut = pos
        for candidate in itertools.chain(
            range(pos, min(end, pos + 8)), range(pos - 1, max(start, pos - 8), -1)
        ):
            if _cut_allowed(text, candidate, start):
                cut = candidate
                break
        cuts.append(cut)
        start = cut
        pos = cut + _MAX_UNIT
    return cuts


def _long_unit_cuts(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cuts (position, strength) inside a unit longer than ``_MAX_UNIT`` characters.

    A unit is leading whitespace then a run of non-space characters. A long whitespace part is
    cut off and cut hard; a long run is cut after punctuation, and pieces still too long are cut
    hard.
    """
    cuts: list[tuple[int, int]] = []
    ws = _WS_RUN.match(text, start, end)
    word = ws.end() if ws else start
    if word - start > _MAX_UNIT:
        cuts.extend((pos, _HARD) for pos in _hard_cuts(text, start, word))
        if word < end:
            cuts.append((word, _HARD))
    if end - word > _MAX_UNIT:
        last = word
        for match in _PUNCT_CUT.finditer(text, word, end):
            pos = match.end()
            if pos >= end:
                break
            cuts.extend((cut, _HARD) for cut in _hard_cuts(text, last, pos))
            cuts.append((pos, _PUNCT))
            last = pos
        cuts.extend((cut, _HARD) for cut in _hard_cuts(text, last, end))
    return cuts


# --------------------------------------------------------------------------------------------
# The splitter
# --------------------------------------------------------------------------------------------


class _Splitter:
    """State of one ``split_text`` call: units, their prefix sums, and the chunking loop."""

    def __init__(
        self,
        text: str,
        *,
        chunk_size: int,
        chunk_overlap: int,
        counter: TokenCounter,
        source_type: str,
        page_starts: Sequence[int],
    ) -> None:
        self.text = text
        self.chunk_size = chunk_size
        self.overlap = chunk_overlap
        self.counter = counter
        self.overhead = max(0, counter.count(""))
        self.budget = chunk_size - self.overhead
        if self.budget < 1:
            raise ValueError(
                f"chunk_size {chunk_size} leaves no room: the token counter adds "
                f"{self.overhead} tokens to every text."
            )
        self._memo: dict[str, int] = {}

        points = _break_points(text, source_type, page_starts)
        n = len(text)
        bounds = [0]
        strengths = [_END]
        for pos in sorted(points):
            if 0 < pos < n:
                bounds.append(pos)
                strengths.append(points[pos])
        bounds.append(n)
        strengths.append(_END)

        # Cut long units, count every unit, and split any unit that alone exceeds the budget.
        self.bounds: list[int] = [0]
        self.strengths: list[int] = [_END]
        self.costs: list[int] = []
        for k in range(1, len(bounds)):
            start, end = bounds[k - 1], bounds[k]
            cuts = _long_unit_cuts(text, start, end) if end - start > _MAX_UNIT else []
            cuts.append((end, strengths[k]))
            for pos, strength in cuts:
                self._append_unit(self.bounds[-1], pos, strength)
        self._index()

    # -- units -----------------------------------------------------------------------------

    def _cost(self, start: int, end: int) -> int:
        """Estimated tokens of a unit: its count without the counter's per-text overhead."""
        piece = self.text[start:end]
        cost = self._memo.get(piece)
        if cost is None:
            cost = max(0, self.counter.count(piece) - self.overhead)
            self._memo[piece] = cost
        return cost

    def _append_unit(self, start: int, end: int, strength: int) -> None:
        """Append the unit ``[start, end)``, split into clusters / code points while too big."""
        cost = self._cost(start, end)
        if cost > self.budget:
            for sub_start, sub_end in self._finer(start, end):
                sub_cost = self._cost(sub_start, sub_end)
                if sub_cost > self.budget and sub_end - sub_start > 1:
                    for point in range(sub_start + 1, sub_end + 1):
                        self._push(point, _HARD, self._cost(point - 1, point))
                else:
                    self._push(sub_end, _HARD, sub_cost)
            self.strengths[-1] = strength
            return
        self._push(end, strength, cost)

    def _push(self, end: int, strength: int, cost: int) -> None:
        self.bounds.append(end)
        self.strengths.append(strength)
        self.costs.append(cost)

    def _finer(self, start: int, end: int) -> list[tuple[int, int]]:
        """``[start, end)`` split at grapheme-cluster boundaries, else at every code point."""
        cuts = [pos for pos in range(start + 1, end) if _cut_allowed(self.text, pos, start)]
        if not cuts:
            cuts = list(range(start + 1, end))
        edges = [start, *cuts, end]
        return list(itertools.pairwise(edges))

    def _refine(self, k: int) -> None:
        """Split unit ``k`` (whose real count overshoots on its own) finer, or give up."""
        start, end = self.bounds[k], self.bounds[k + 1]
        pieces = self._finer(start, end)
        if len(pieces) == 1:
            if end - start > 1:
                pieces = [(pos, pos + 1) for pos in range(start, end)]
            else:
                raise ValueError(
                    f"The token counter gives more than chunk_size={self.chunk_size} tokens "
                    f"for the single character {self.text[start:end]!r}."
                )
        self.bounds[k + 1 : k + 1] = [sub_end for _, sub_end in pieces[:-1]]
        self.strengths[k + 1 : k + 1] = [_HARD] * (len(pieces) - 1)
        self.costs[k : k + 1] = [self._cost(a, b) for a, b in pieces]
        self._index()

    def _index(self) -> None:
        """Prefix sums, first non-space position of each unit, and break points by strength."""
        text, bounds = self.text, self.bounds
        n, m = len(text), len(self.costs)
        self.prefix = [0, *itertools.accumulate(self.costs)]
        first_char = [n] * (m + 1)
        for k in range(m - 1, -1, -1):
            start = bounds[k]
            if not text[start].isspace():
                first_char[k] = start
                continue
            piece = text[start : bounds[k + 1]]
            stripped = len(piece) - len(piece.lstrip())
            first_char[k] = start + stripped if stripped < len(piece) else first_char[k + 1]
        self.first_char = first_char
        by_strength: dict[int, list[int]] = {}
        for k in range(1, m + 1):
            by_strength.setdefault(self.strengths[k], []).append(k)
        self.levels = [by_strength[s] for s in sorted(by_strength, reverse=True)]
        self.sections = sorted(
            k for s, ks in by_strength.items() if _SECTION <= s < _END for k in ks
        )

    # -- planning ----------------------------------------------------------------------------

    def _align(self, k: int, covered: int, prev_start: int) -> int:
        """The first unit boundary from ``k`` that starts a word after the previous chunk's start.

        Falls back to the first boundary after the previous start (inside a long run), then to
        ``covered`` (no overlap).
        """
        fallback = covered
        for j in range(k, covered):
            if self.first_char[j] <= prev_start:
                continue
            if self.strengths[j] >= _SPACE:
                return j
            fallback = min(fallback, j)
        return fallback

    def _plan(
        self, covered: int, prev_s: int, prev_start: int, budget: int
    ) -> tuple[int, int] | None:
        """Units ``[s, e)`` of the next chunk, or ``None`` if the first new unit exceeds ``budget``."""
        prefix = self.prefix
        if prefix[covered + 1] - prefix[covered] > budget:
            return None
        s = covered
        if self.overlap and prev_s >= 0:
            lo = prev_s + 1
            if self.sections:
                i = bisect.bisect_right(self.sections, covered) - 1
                if i >= 0:
                    lo = max(lo, self.sections[i])
            if lo < covered:
                k = bisect.bisect_left(prefix, prefix[covered] - self.overlap, lo, covered)
                s = self._align(k, covered, prev_start)
        if prefix[covered + 1] - prefix[s] > budget:
            k = bisect.bisect_left(prefix, prefix[covered + 1] - budget, s, covered)
            s = self._align(k, covered, prev_start)
        last = bisect.bisect_right(prefix, prefix[s] + budget, covered + 1) - 1
        # Below a section, a break is taken only if the chunk is at least MIN_FILL full: a short
        # paragraph (a title above its abstract) is packed with what follows instead of
        # becoming a chunk of its own.
        filled = prefix[s] + int(budget * MIN_FILL)
        strongest: int | None = None
        for level in self.levels:
            i = bisect.bisect_right(level, last) - 1
            if i >= 0 and level[i] > covered:
                e = level[i]
                if self.strengths[e] >= _SECTION or prefix[e] >= filled:
                    return s, e
                strongest = e if strongest is None else strongest
        # Nothing both fits and fills (large units around a small budget): the strongest break.
        if strongest is None:  # pragma: no cover - `last` itself is a boundary after `covered`
            raise AssertionError("unreachable: every boundary has a strength")
        return s, strongest

    def run(self) -> list[tuple[int, int, int]]:
        """The chunks as ``(start, end, token_count)``, verified with real counts."""
        text, prefix = self.text, self.prefix
        chunks: list[tuple[int, int, int]] = []
        covered, prev_s, prev_start = 0, -1, -1
        while covered < len(self.costs) and self.first_char[covered] < len(text):
            budget = self.budget
            while True:
                planned = self._plan(covered, prev_s, prev_start, budget)
                s, e = planned if planned is not None else (covered, covered + 1)
                if self.first_char[covered] >= self.bounds[e]:
                    covered = e  # nothing but whitespace is new: skip it
                    break
                start = self.first_char[s]
                end = start + len(text[start : self.bounds[e]].rstrip())
                tokens = self.counter.count(text[start:end])
                if tokens <= self.chunk_size:
                    chunks.append((start, end, tokens))
                    covered, prev_s, prev_start = e, s, start
                    break
                if planned is None or (s, e) == (covered, covered + 1):
                    self._refine(covered)
                    prefix = self.prefix
                    budget = self.budget
                else:
                    excess = max(1, tokens - self.chunk_size)
                    budget = min(budget, prefix[e] - prefix[s]) - excess
        return chunks


def split_text(
    text: str,
    *,
    chunk_size: int,
    chunk_overlap: int,
    counter: TokenCounter,
    source_type: SourceType = "text",
    page_breaks: Sequence[int] | None = None,
) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``chunk_size`` tokens (see the module docstring).

    ``chunk_overlap`` tokens (about, at most) of each chunk are repeated at the start of the next.
    ``source_type`` picks the break-point rules: Markdown headings for ``markdown``; PDF line breaks
    rank below sentence ends. ``page_breaks`` are the character offsets where pages start (page 1
    starts at 0 whether listed or not); each chunk gets the page of its start — with overlap, that
    can be the page before its new text. Page starts are preferred break points. Raises
    ``ValueError`` for invalid sizes, an unknown source type or out-of-range page breaks.
    """
    validate_chunk_params(chunk_size, chunk_overlap)
    if source_type not in SOURCE_TYPES:
        raise ValueError(
            f"source_type must be one of {', '.join(SOURCE_TYPES)}; got {source_type!r}."
        )
    page_starts: list[int] = []
    if page_breaks is not None:
        for offset in page_breaks:
            if isinstance(offset, bool) or not isinstance(offset, int):
                raise ValueError(f"page_breaks must be integers, got {offset!r}.")
            if not 0 <= offset <= len(text):
                raise ValueError(f"page break {offset} is outside the text (0..{len(text)}).")
        page_starts = sorted({offset for offset in page_breaks if 0 < offset < len(text)})
    # Page numbers count every listed page, empty ones too (several pages may start at one offset).
    numbered = sorted(page_breaks or ())
    if not numbered or numbered[0] != 0:
        numbered.insert(0, 0)
    if not text or text.isspace():
        return []
    splitter = _Splitter(
        text,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        counter=counter,
        source_type=source_type,
        page_starts=page_starts,
    )
    return [
        Chunk(
            index=i,
            text=text[start:end],
            start=start,
            end=end,
            token_count=tokens,
            page=None if page_breaks is None else bisect.bisect_right(numbered, start),
        )
        for i, (start, end, tokens) in enumerate(splitter.run())
    ]
