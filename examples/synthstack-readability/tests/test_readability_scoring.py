"""The counts and scores of :mod:`synthstack_readability.scoring`."""

from __future__ import annotations

import pytest

from synthstack_readability.scoring import estimate_syllables, score, syllables


@pytest.mark.parametrize(
    ("word", "count"),
    [("the", 1), ("readability", 5), ("table", 2), ("fire", 2), ("hour", 2), ("don't", 1)],
)
def test_the_dictionary_counts_vowel_sounds(word: str, count: int) -> None:
    assert syllables(word) == (count, False)


@pytest.mark.parametrize(
    ("word", "count"),
    [("make", 1), ("table", 2), ("whale", 1), ("free", 1), ("banana", 3), ("café", 2), ("zzz", 1)],
)
def test_the_spelling_rule(word: str, count: int) -> None:
    assert estimate_syllables(word) == count


def test_a_word_the_dictionary_lacks_is_estimated() -> None:
    assert syllables("Frobnicatorize") == (5, True)


def test_the_formulas() -> None:
    # 9 words, 2 sentences, 10 syllables (every word one syllable, "happy" two).
    result = score("The cat sat on the mat. It was happy!")
    assert (result.sentences, result.words, result.syllables) == (2, 9, 10)
    assert result.syllables_estimated == 0
    words_per_sentence, syllables_per_word = 9 / 2, 10 / 9
    assert result.flesch_reading_ease == round(
        206.835 - 1.015 * words_per_sentence - 84.6 * syllables_per_word, 2
    )
    assert result.flesch_kincaid_grade == round(
        0.39 * words_per_sentence + 11.8 * syllables_per_word - 15.59, 2
    )


def test_harder_prose_scores_lower() -> None:
    easy = score("The cat sat on the mat. The dog ran to the park.")
    hard = score(
        "Notwithstanding considerable methodological heterogeneity, the investigators "
        "demonstrated statistically significant improvements in comprehension."
    )
    assert easy.flesch_reading_ease is not None and hard.flesch_reading_ease is not None
    assert easy.flesch_reading_ease > 90 > 0 > hard.flesch_reading_ease
    assert hard.flesch_kincaid_grade is not None and hard.flesch_kincaid_grade > 16


def test_sentences_end_at_marks_and_need_words() -> None:
    assert score("One. Two! Three? Four… five").sentences == 5
    assert score("Wait... what?!").sentences == 2
    assert score("no mark at all").sentences == 1
    assert score("... !!! Hello ???").sentences == 1


def test_numbers_and_punctuation_are_not_words() -> None:
    result = score("In 2024, 3.5% grew.")
    assert (result.words, result.sentences) == (2, 2)  # "In" / "grew" ("3." ends a sentence)


def test_a_text_without_words_has_no_score() -> None:
    result = score("1234 !!! ---")
    assert (result.words, result.sentences, result.syllables) == (0, 0, 0)
    assert result.flesch_reading_ease is None and result.flesch_kincaid_grade is None
