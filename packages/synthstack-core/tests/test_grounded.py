"""Grounded answers: the prompt given to the model and the checking of its citations."""

from __future__ import annotations

from synthstack_core.features.grounded import (
    DEFAULT_SYSTEM_PROMPT,
    SourceText,
    check_citations,
    grounded_messages,
)

SOURCES = [
    SourceText(1, "cats.md", "Cats are small felines. A cat purrs when it is content."),
    SourceText(2, "dogs.md", "Dogs bark at strangers. A dog wags its tail when happy."),
]


def test_markers_naming_no_source_are_removed_and_cite_nothing() -> None:
    answer, citations = check_citations("Cats purr when content [1]. Unicorns fly [7].", SOURCES)
    assert answer == "Cats purr when content [1]. Unicorns fly."
    assert [c.index for c in citations] == [1]


def test_each_citation_quotes_the_closest_sentence_of_its_source_exactly() -> None:
    _, citations = check_citations(
        "A dog wags its tail when happy [2], and a cat purrs when content [1].", SOURCES
    )
    by_index = {c.index: c for c in citations}
    assert by_index[2].quote == "A dog wags its tail when happy."
    assert by_index[1].quote == "A cat purrs when it is content."
    for citation in citations:
        source = SOURCES[citation.index - 1].content
        assert source[citation.start : citation.end] == citation.quote


def test_repeated_markers_cite_once_and_zero_is_not_a_source() -> None:
    answer, citations = check_citations("Cats are felines [1][1]. See [0].", SOURCES)
    assert answer == "Cats are felines [1][1]. See."
    assert len(citations) == 1 and citations[0].quote == "Cats are small felines."


def test_an_answer_without_markers_cites_nothing() -> None:
    answer, citations = check_citations("I cannot answer from these sources.", SOURCES)
    assert answer == "I cannot answer from these sources." and citations == []


def test_the_prompt_numbers_the_sources_and_fits_the_context_window() -> None:
    long_source = SourceText(3, "long.txt", "word " * 10_000)
    messages = grounded_messages(
        "Why do cats purr?",
        [*SOURCES, long_source],
        system_prompt=None,
        context_window=2048,
        max_tokens=256,
    )
    assert messages[0].role == "system" and messages[0].content == DEFAULT_SYSTEM_PROMPT
    user = messages[1].content
    assert "[1] (cats.md)\nCats are small felines." in user and "[3] (long.txt)" in user
    assert user.endswith("Question: Why do cats purr?")
    assert len(user) < (2048 - 256) * 2 + 500
    custom = grounded_messages(
        "q", SOURCES, system_prompt="Answer in French.", context_window=8192, max_tokens=64
    )
    assert custom[0].content == "Answer in French."
