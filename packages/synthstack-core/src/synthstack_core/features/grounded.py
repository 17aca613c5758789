"""Generated answers grounded in numbered sources, and their citations.

The model is given the retrieved chunks numbered ``[1]..[n]`` and told to answer only from them,
citing each claim as ``[n]``. Its answer is then checked, never trusted:

* a marker that names no retrieved source (``[7]`` with five sources, ``[0]``) is removed from the
  answer and cites nothing;
* each remaining marker becomes a citation of its source, quoting the sentence of that source that
  shares the most words with the answer's sentence carrying the marker (its exact span in the
  document), so a reader can check the claim against the text;
* an answer that cites nothing keeps no citations (the sources are still returned).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from synthstack_core.features.extractive import sentence_spans
from synthstack_core.providers.llm import ChatMessage

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "GroundedCitation",
    "SourceText",
    "check_citations",
    "grounded_messages",
]

DEFAULT_SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources you are given. Cite every claim with "
    "the number of its source in square brackets, like [1] or [2][3]. If the sources do not "
    "contain the answer, say that you cannot answer from them. Do not use outside knowledge."
)

_MARKER = re.compile(r"\[(\d{1,3})\]")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
#: Characters of source text given to the model per token of its context window (about 4 per
#: token, with room left for the question, the instructions and the answer).
_CHARS_PER_CONTEXT_TOKEN = 2


@dataclass(frozen=True)
class SourceText:
    """A retrieved chunk as the model sees it: its number, label and text."""

    index: int
    source: str
    content: str


@dataclass(frozen=True)
class GroundedCitation:
    """A checked citation: the source number and the quoted sentence's span in that chunk."""

    index: int
    start: int
    end: int
    quote: str


def grounded_messages(
    question: str,
    sources: Sequence[SourceText],
    *,
    system_prompt: str | None,
    context_window: int,
    max_tokens: int,
) -> list[ChatMessage]:
    """The conversation that asks the model to answer ``question`` from ``sources``.

    Source texts are shortened evenly so that all of them fit the model's context window.
    """
    budget = max(200, (context_window - max_tokens) * _CHARS_PER_CONTEXT_TOKEN)
    share = max(100, budget // max(1, len(sources)))
    blocks = []
    for source in sources:
        text = source.content if len(source.content) <= share else source.content[:share] + " …"
        blocks.append(f"[{source.index}] ({source.source})\n{text}")
    numbered = "\n\n".join(blocks) if blocks else "(no sources were found)"
    instructions = system_prompt.strip() if system_prompt else DEFAULT_SYSTEM_PROMPT
    return [
        ChatMessage("system", instructions),
        ChatMessage("user", f"Sources:\n\n{numbered}\n\nQuestion: {question}"),
    ]


def _words(text: str) -> set[str]:
    return {word.lower() for word in _WORD.findall(text)}


def _answer_sentence(answer: str, position: int) -> str:
    """The sentence of ``answer`` that holds ``position`` (markers removed)."""
    for start, end in sentence_spans(answer):
        if start <= position <= end:
            return _MARKER.sub("", answer[start:end])
    return _MARKER.sub("", answer)


def check_citations(
    answer: str, sources: Sequence[SourceText]
) -> tuple[str, list[GroundedCitation]]:
    """The answer without markers that name no source, and the citations of the others (in order
    of first appearance, one per source and quoted sentence)."""
    by_index = {source.index: source for source in sources}

    def keep(match: re.Match[str]) -> str:
        return match.group(0) if int(match.group(1)) in by_index else ""

    cleaned = _MARKER.sub(keep, answer)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned).strip()
    citations: list[GroundedCitation] = []
    seen: set[tuple[int, int, int]] = set()
    for match in _MARKER.finditer(cleaned):
        source = by_index[int(match.group(1))]
        claim = _words(_answer_sentence(cleaned, match.start()))
        best: tuple[float, int, int] | None = None
        for start, end in sentence_spans(source.content):
            words = _words(source.content[start:end])
            if not words:
                continue
            overlap = len(claim & words) / (len(words) ** 0.5)
            if best is None or overlap > best[0]:
                best = (overlap, start, end)
        if best is None:
            continue
        _, start, end = best
        key = (source.index, start, end)
        if key in seen:
            continue
        seen.add(key)
        citations.append(GroundedCitation(source.index, start, end, source.content[start:end]))
    return cleaned, citations
