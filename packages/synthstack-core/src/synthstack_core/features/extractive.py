"""Extractive answers: the retrieved sentences that best answer a question, each cited.

With no language model, an answer must still be grounded and must never invent a sentence. Each
retrieved chunk is cut into sentences (with their exact character spans); every sentence is scored
by the cosine similarity of its embedding to the question's, plus the share of the question's
content words it contains, plus a small bonus for the chunk's retrieval rank. The best few
sentences, each followed by ``[n]`` for its source, make the answer; a question nothing answers gets
an empty one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Candidate", "Selected", "select_sentences", "sentence_spans"]

_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])[\"')\]]*\s+|\n\s*\n|\n(?=#)")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
        "may",
        "might",
        "must",
        "not",
        "no",
        "yes",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "me",
        "my",
        "our",
        "your",
        "their",
    ]
)
#: Sentences shorter than this carry no answer (headings, list markers, stray fragments).
MIN_SENTENCE_CHARS = 20
MAX_SENTENCES = 3
MAX_ANSWER_CHARS = 900
#: Below this combined score nothing is said: an empty answer beats an irrelevant one.
MIN_SCORE = 0.25


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved chunk: its source number, text and span in the chunk."""

    source_index: int
    chunk_rank: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Selected:
    """A chosen sentence with its score."""

    candidate: Candidate
    score: float


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, whitespace trimmed, exact offsets."""
    spans: list[tuple[int, int]] = []
    position = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((position, match.start()))
        position = match.end()
    spans.append((position, len(text)))
    trimmed: list[tuple[int, int]] = []
    for start, end in spans:
        piece = text[start:end]
        stripped = piece.strip()
        if not stripped:
            continue
        lead = len(piece) - len(piece.lstrip())
        trimmed.append((start + lead, start + lead + len(stripped)))
    return trimmed


def _content_words(text: str) -> set[str]:
    return {w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in _STOP_WORDS}


def select_sentences(
    question: str,
    question_vector: npt.NDArray[np.float32],
    candidates: Sequence[Candidate],
    vectors: npt.NDArray[np.float32],
) -> list[Selected]:
    """The best sentences for ``question``, best first (see the module docstring)."""
    if not candidates:
        return []
    wanted = _content_words(question)
    similarity = vectors @ question_vector
    scored: list[Selected] = []
    for row, candidate in enumerate(candidates):
        words = _content_words(candidate.text)
        overlap = len(wanted & words) / len(wanted) if wanted else 0.0
        score = float(similarity[row]) + 0.3 * overlap + 0.05 / (1 + candidate.chunk_rank)
        scored.append(Selected(candidate, score))
    scored.sort(key=lambda s: (-s.score, s.candidate.source_index, s.candidate.start))
    best = scored[0].score
    if best < MIN_SCORE:
        return []
    chosen: list[Selected] = []
    seen: list[set[str]] = []
    length = 0
    for item in scored:
        if item.score < max(MIN_SCORE, 0.6 * best) or len(chosen) == MAX_SENTENCES:
            break
        words = _content_words(item.candidate.text)
        if any(len(words & other) >= 0.8 * max(1, len(words)) for other in seen):
            continue  # a near-duplicate (overlapping chunks repeat sentences)
        if chosen and length + len(item.candidate.text) > MAX_ANSWER_CHARS:
            break
        chosen.append(item)
        seen.append(words)
        length += len(item.candidate.text)
    return chosen
