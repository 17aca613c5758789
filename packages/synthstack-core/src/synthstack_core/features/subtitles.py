"""Subtitles from a transcript: SubRip (``.srt``) and WebVTT (``.vtt``).

A segment becomes one or more cues: its text is wrapped at :data:`MAX_LINE_CHARS` characters
per line, at most :data:`MAX_LINES` lines a cue, and a segment too long for one cue is split
into several (at word timestamps when the transcript has them, otherwise in proportion to the
characters of each part). Cues are numbered from 1, never overlap, never go backwards and last
at least a millisecond.

Escaping: WebVTT cue text escapes ``&``, ``<`` and ``>`` (so ``-->`` cannot end up in a cue);
SubRip has no escape mechanism, so a ``-->`` in the text is written ``->``. Whitespace runs
(newlines included) collapse to one space, so no text can make a blank line that ends a cue.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from synthstack_core.providers.transcription import TranscriptSegment, TranscriptWord

__all__ = ["MAX_LINES", "MAX_LINE_CHARS", "Cue", "render_srt", "render_vtt", "subtitle_cues"]

#: The usual broadcast limit for a subtitle line.
MAX_LINE_CHARS = 42
MAX_LINES = 2
_MIN_CUE_SECONDS = 0.001
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Cue:
    """One subtitle: when it shows and its lines (plain text, not escaped)."""

    start: float
    end: float
    lines: tuple[str, ...]


def _wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap; a word longer than ``width`` stays whole on its own line."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines


def _split_times(
    segment: TranscriptSegment,
    parts: list[list[str]],
    words: Sequence[TranscriptWord],
) -> list[tuple[float, float]]:
    """Start and end of each part of a segment."""
    start, end = segment.start, max(segment.end, segment.start)
    if len(parts) == 1:
        return [(start, end)]
    counts = [sum(len(line.split(" ")) for line in part) for part in parts]
    inside = [w for w in words if start - 0.01 <= w.start <= end + 0.01]
    if len(inside) == sum(counts):  # the segment's words, one for one: cut at their times
        times: list[tuple[float, float]] = []
        index = 0
        for count in counts:
            first, last = inside[index], inside[index + count - 1]
            times.append((first.start, last.end))
            index += count
        return [
            (times[i][0] if i else start, times[i + 1][0] if i + 1 < len(times) else end)
            for i in range(len(times))
        ]
    sizes = [sum(len(line) for line in part) for part in parts]
    total = sum(sizes) or 1
    bounds = [start]
    for size in sizes:
        bounds.append(bounds[-1] + (end - start) * size / total)
    bounds[-1] = end
    return [(bounds[i], bounds[i + 1]) for i in range(len(parts))]


def subtitle_cues(
    segments: Sequence[TranscriptSegment],
    words: Sequence[TranscriptWord] | None = None,
    *,
    max_line_chars: int = MAX_LINE_CHARS,
    max_lines: int = MAX_LINES,
) -> list[Cue]:
    """The cues of a transcript's segments (empty segments are left out)."""
    cues: list[Cue] = []
    previous_end = 0.0
    for segment in segments:
        text = _SPACES.sub(" ", segment.text).strip()
        if not text:
            continue
        lines = _wrap(text, max_line_chars)
        parts = [lines[i : i + max_lines] for i in range(0, len(lines), max_lines)]
        for (start, end), part in zip(
            _split_times(segment, parts, words or ()), parts, strict=True
        ):
            start = max(start, previous_end, 0.0)
            end = max(end, start + _MIN_CUE_SECONDS)
            cues.append(Cue(start, end, tuple(part)))
            previous_end = end
    return cues


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_times(cue: Cue, separator: str) -> tuple[str, str]:
    start = _timestamp(cue.start, separator)
    end = _timestamp(cue.end, separator)
    if end == start:  # a cue shorter than the millisecond the format can write
        end = _timestamp(cue.start + _MIN_CUE_SECONDS, separator)
    return start, end


def render_srt(cues: Sequence[Cue]) -> str:
    """SubRip: ``n``, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, the lines, a blank line."""
    blocks = []
    for number, cue in enumerate(cues, start=1):
        start, end = _cue_times(cue, ",")
        text = "\n".join(line.replace("-->", "->") for line in cue.lines)
        blocks.append(f"{number}\n{start} --> {end}\n{text}\n")
    return "\n".join(blocks)


def _vtt_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT: the ``WEBVTT`` header, then numbered cues with ``HH:MM:SS.mmm`` times."""
    blocks = ["WEBVTT\n"]
    for number, cue in enumerate(cues, start=1):
        start, end = _cue_times(cue, ".")
        text = "\n".join(_vtt_escape(line) for line in cue.lines)
        blocks.append(f"{number}\n{start} --> {end}\n{text}\n")
    return "\n".join(blocks)
