"""Text analysis with the real libraries (VADER, sumy, pysbd, YAKE) and the real local embedding model."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from synthstack_core.errors import InvalidRequest, ProviderError
from synthstack_core.features.analysis import (
    KEYWORDS_MODEL,
    SENTIMENT_MODEL,
    SUMMARY_MODEL,
    AnalysisService,
    SentenceSentiment,
    cut_to_words,
    fit_summary,
    parse_llm_classification,
    parse_llm_keywords,
    parse_llm_sentiment,
    parse_llm_summary,
    prompt_for_classification,
    prompt_for_keywords,
    prompt_for_sentiment,
    prompt_for_summary,
    sentiment_of,
    word_cost,
    words,
)
from synthstack_core.features.analysis import offline as offline_module
from synthstack_core.features.analysis.offline import MAX_RANKED_SENTENCES
from synthstack_core.features.embeddings import EmbeddingModelRegistry, EmbeddingService
from synthstack_core.providers.local_onnx import LOCAL_MODEL, LocalOnnxEmbeddingProvider
from synthstack_core.schemas.analysis import (
    ClassifyRequest,
    KeywordsRequest,
    SentimentRequest,
    SummarizeRequest,
    TextAnalysisRequest,
)
from synthstack_core.schemas.common import Limits
from synthstack_core.stores.cache import MemoryCache
from synthstack_core.validation import validate_data

LIMITS = Limits()

ARTICLE = (
    "Solar power is growing fast around the world. "
    "The cost of solar panels fell by ninety percent over the last decade. "
    "Many countries now install more solar power than coal power. "
    "My neighbour painted his fence green last weekend. "
    "Storage remains the main challenge for solar power at night. "
    "Cheaper batteries help solar power grow further."
)


@pytest.fixture(scope="module")
def analysis() -> AnalysisService:
    embeddings = EmbeddingService(
        EmbeddingModelRegistry([LocalOnnxEmbeddingProvider()], LOCAL_MODEL.id),
        MemoryCache(1000),
        limits=LIMITS,
        ttl_seconds=60,
    )
    return AnalysisService(embeddings, LIMITS)


async def _sentiment(service: AnalysisService, text: str, aspects: bool = False) -> Any:
    request = validate_data(SentimentRequest, {"text": text, "include_aspects": aspects}, LIMITS)
    return await service.sentiment(request)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I absolutely love this product. It works wonderfully and support was great!", "positive"),
        ("This was the worst purchase I have ever made. It broke after a day. Awful.", "negative"),
        ("The meeting is on Tuesday at 3 pm in room 4.", "neutral"),
        (
            "The battery life of this phone is amazing. However, the camera is terrible and blurry.",
            "mixed",
        ),
    ],
)
async def test_sentiment_labels(analysis: AnalysisService, text: str, label: str) -> None:
    result = await _sentiment(analysis, text)
    assert result.sentiment == label
    assert result.model == SENTIMENT_MODEL
    assert -1 <= result.score <= 1 and 0 <= result.confidence <= 1
    assert result.aspects is None
    if label == "positive":
        assert result.score > 0.5
    if label == "negative":
        assert result.score < -0.5


async def test_one_mild_complaint_in_praise_is_positive_not_mixed(
    analysis: AnalysisService,
) -> None:
    result = await _sentiment(
        analysis, "Great food. Great staff. Lovely view. The parking was a bit annoying."
    )
    assert result.sentiment == "positive"


async def test_aspects_are_the_opinionated_sentences(analysis: AnalysisService) -> None:
    text = (
        "The battery life is excellent. The box is blue. "
        "The screen is dim and the speakers are horrible."
    )
    result = await _sentiment(analysis, text, aspects=True)
    assert [(a.text, a.sentiment) for a in result.aspects] == [
        ("The battery life is excellent.", "positive"),
        ("The screen is dim and the speakers are horrible.", "negative"),
    ]
    assert result.aspects[0].score > 0 > result.aspects[1].score


def test_confidence_is_monotone() -> None:
    agreeing = [SentenceSentiment("a", 0.6), SentenceSentiment("b", 0.7)]
    split = [SentenceSentiment("a", 0.6), SentenceSentiment("b", -0.2)]
    weak = sentiment_of(0.3, agreeing)
    strong = sentiment_of(0.8, agreeing)
    assert weak[0] == strong[0] == "positive" and strong[1] > weak[1]
    disagreeing = sentiment_of(0.3, split)
    assert disagreeing[0] == "positive" and disagreeing[1] < weak[1]


async def _summarize(analysis: AnalysisService, **fields: Any) -> Any:
    return await analysis.summarize(validate_data(SummarizeRequest, fields, LIMITS))


def _in_text_order(text: str, points: list[str]) -> str:
    return " ".join(sorted(points, key=text.index))


async def test_summary_keeps_order_and_sentence_bound(analysis: AnalysisService) -> None:
    result = await _summarize(analysis, text=ARTICLE, max_sentences=2)
    assert result.model == SUMMARY_MODEL
    assert len(result.key_points) == 2
    assert "fence" not in result.summary
    assert result.summary == _in_text_order(ARTICLE, result.key_points)
    # The default budget, 100 words, holds the whole article (56 words): every sentence.
    everything = await _summarize(analysis, text=ARTICLE)
    assert len(everything.key_points) == 6 and word_cost(everything.summary) == 56


async def test_summary_is_the_best_sentences_that_fit_the_word_budget(
    analysis: AnalysisService,
) -> None:
    ranking = (await _summarize(analysis, text=ARTICLE, max_length=1000)).key_points
    assert sorted(ranking) == sorted(ARTICLE.replace(". ", ".\n").splitlines())
    for budget in (10, 17, 20, 25, 33, 55):
        result = await _summarize(analysis, text=ARTICLE, max_length=budget)
        assert word_cost(result.summary) <= budget
        expected: list[str] = []
        for sentence in ranking:  # down the ranking, each sentence that still fits
            if sum(map(word_cost, expected)) + word_cost(sentence) <= budget:
                expected.append(sentence)
        assert result.key_points == expected, budget
        assert result.summary == _in_text_order(ARTICLE, expected)
    # 17 words: the best sentence (10 words) leaves 7, too few for the second (8) but enough for
    # the third (7): a sentence that does not fit is passed over, and the ranking goes on.
    assert [word_cost(sentence) for sentence in ranking[:3]] == [10, 8, 7]
    seventeen = await _summarize(analysis, text=ARTICLE, max_length=17)
    assert seventeen.key_points == [ranking[0], ranking[2]]
    assert word_cost(seventeen.summary) == 17
    both = await _summarize(analysis, text=ARTICLE, max_length=25, max_sentences=1)
    assert both.key_points == ranking[:1]


async def test_a_sentence_longer_than_the_budget_is_cut_at_a_word(
    analysis: AnalysisService,
) -> None:
    long_sentence = " ".join(f"word{i}" for i in range(40)) + "."
    result = await _summarize(analysis, text=long_sentence, max_length=10)
    assert result.summary == " ".join(f"word{i}" for i in range(10)) + "\u2026"
    assert word_cost(result.summary) == 10 and result.key_points == [result.summary]


def test_word_cost_counts_words_and_tokens() -> None:
    assert word_cost("The U.S. troops left.") == 5  # words: The U S troops left
    assert word_cost("Prices rose 5 - 10 % today") == 7  # tokens; words: 5
    assert word_cost("") == 0


def test_cut_to_words() -> None:
    text = "First, second; third: fourth fifth sixth."
    assert cut_to_words(text, 6) == text
    assert cut_to_words(text, 3) == "First, second; third\u2026"
    assert cut_to_words(text, 2) == "First, second\u2026"
    assert cut_to_words("U.S.A. is big", 2) == "U.S\u2026"
    glued = "_".join(["w"] * 30)  # one token, thirty words
    assert cut_to_words(glued, 10) == "_".join(["w"] * 10) + "\u2026"
    for limit in range(1, 12):
        assert word_cost(cut_to_words(ARTICLE, limit)) <= limit


def test_fit_summary_skips_or_stops() -> None:
    sentences = ["One two three four five.", "Six seven eight nine ten eleven.", "Twelve."]
    assert fit_summary(sentences, 7, None, skip=True) == [(0, sentences[0]), (2, "Twelve.")]
    assert fit_summary(sentences, 7, None, skip=False) == [(0, sentences[0])]
    assert fit_summary(sentences, 100, 2, skip=True) == [(0, sentences[0]), (1, sentences[1])]
    assert fit_summary(sentences, 3, None, skip=True) == [(2, "Twelve.")]
    assert fit_summary(sentences, 3, None, skip=False) == [(0, "One two three\u2026")]
    assert fit_summary(sentences[:2], 3, None, skip=True) == [(0, "One two three\u2026")]
    assert fit_summary([], 10, None, skip=True) == []


async def test_summary_never_looks_up_nltk_data(
    analysis: AnalysisService, monkeypatch: pytest.MonkeyPatch
) -> None:
    nltk_data = importlib.import_module("nltk.data")
    looked_up: list[str] = []

    def refuse(resource: str, *args: object, **kwargs: object) -> None:
        looked_up.append(resource)
        raise LookupError(f"NLTK data was looked up: {resource}")

    monkeypatch.setattr(nltk_data, "find", refuse)
    monkeypatch.setattr(nltk_data, "load", refuse)
    text = "Another text. It has sentences that were never summarised before. Quite new ones."
    result = await analysis.summarize(validate_data(SummarizeRequest, {"text": text}, LIMITS))
    assert result.key_points and looked_up == []


#: The worst cases under the limits (20,000 characters): one sentence repeated 6,666 times, and
#: 5,000 distinct ones (the most a 20,000-character text can hold with a word each).
REPEATED = "a. " * 6666
DISTINCT = " ".join(f"w{i}." for i in range(5000))[:19999]


@pytest.mark.parametrize("text", [REPEATED, DISTINCT], ids=["repeated", "distinct"])
async def test_the_summary_costs_a_bounded_amount_of_work(
    analysis: AnalysisService, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """Counted, not timed: the sentence splitter pulls each match of a sentence in the text once
    (pysbd's own search restarts from the start of the text for every sentence: 22 s of CPU for
    the repeated case), and TextRank compares at most MAX_RANKED_SENTENCES sentences pairwise."""
    text_rank = importlib.import_module("sumy.summarizers.text_rank").TextRankSummarizer
    edges = 0
    rate_edge = text_rank._rate_sentences_edge

    def counted_edge(*args: Any) -> Any:
        nonlocal edges
        edges += 1
        return rate_edge(*args)

    matches = 0
    finditer = offline_module.re.finditer

    def counted_finditer(*args: Any, **kwargs: Any) -> Any:
        def pulled() -> Any:
            nonlocal matches
            for match in finditer(*args, **kwargs):
                matches += 1
                yield match

        return pulled()

    monkeypatch.setattr(text_rank, "_rate_sentences_edge", staticmethod(counted_edge))
    monkeypatch.setattr(offline_module.re, "finditer", counted_finditer)
    request = validate_data(SummarizeRequest, {"text": text, "max_length": 20}, LIMITS)
    assert len(request.text) < LIMITS.max_text_chars
    result = await analysis.summarize(request)
    assert result.key_points
    bound = MAX_RANKED_SENTENCES
    assert edges <= bound * (bound + 1) // 2
    # Linear: the regular expressions (pysbd's and the splitter's) pull fewer matches than the
    # text has characters (pysbd's own search would pull 22 million for the repeated case).
    assert matches <= len(text)
    assert len(offline_module.sentences_of(text)) > bound


@pytest.mark.parametrize(
    "text",
    [
        ARTICLE,
        'Dr. Smith went home. He said: "Hi!" Then... nothing? Yes.\n\nNew para e.g. this one.',
        "aaa. aaa. aa. a a. aaa.  Spaces   after.\n",
        " ".join(f"Sentence {i % 7} is here." for i in range(300)),
    ],
)
def test_sentences_are_those_of_pysbd(text: str) -> None:
    pysbd = importlib.import_module("pysbd")
    expected = [s.strip() for s in pysbd.Segmenter(language="en", clean=False).segment(text)]
    assert offline_module.sentences_of(text) == [s for s in expected if s]


async def test_a_long_text_is_ranked_among_its_central_sentences(
    analysis: AnalysisService,
) -> None:
    """Over MAX_RANKED_SENTENCES sentences, the summary comes from the sentences sharing the
    most words with the rest (the text's topic), not from filler."""
    topic = [f"Solar power and storage batteries cut costs in town{i}." for i in range(40)]
    filler = [f"Item{i} xq{i} zv{i}." for i in range(MAX_RANKED_SENTENCES)]
    text = " ".join(filler[:100] + topic + filler[100:])
    result = await _summarize(analysis, text=text, max_sentences=3)
    assert len(result.key_points) == 3
    assert all("Solar power" in point for point in result.key_points)


async def test_keywords_order_and_bounds(analysis: AnalysisService) -> None:
    request = validate_data(KeywordsRequest, {"text": ARTICLE, "max_keywords": 5}, LIMITS)
    result = await analysis.keywords(request)
    assert result.model == KEYWORDS_MODEL
    assert 1 <= len(result.keywords) <= 5
    scores = [k.score for k in result.keywords]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)
    assert any("solar" in k.keyword.lower() for k in result.keywords[:3])
    one = await analysis.keywords(
        validate_data(KeywordsRequest, {"text": ARTICLE, "max_keywords": 1}, LIMITS)
    )
    assert len(one.keywords) == 1


async def test_classify_single_label(analysis: AnalysisService) -> None:
    request = validate_data(
        ClassifyRequest,
        {
            "text": "The striker scored twice in the final minutes and the team won the cup.",
            "categories": ["politics", "sports", "cooking", "technology"],
        },
        LIMITS,
    )
    result = await analysis.classify("test-tenant", request)
    assert result.model == LOCAL_MODEL.id
    assert result.classifications[0].category == "sports"
    assert sum(c.confidence for c in result.classifications) == pytest.approx(1, abs=1e-6)
    confidences = [c.confidence for c in result.classifications]
    assert confidences == sorted(confidences, reverse=True)
    assert {c.category for c in result.classifications} == set(request.categories)


async def test_classify_multi_label(analysis: AnalysisService) -> None:
    request = validate_data(
        ClassifyRequest,
        {
            "text": "Preheat the oven and whisk the eggs with sugar before folding in the flour.",
            "categories": ["Cooking", "finance", "sports"],
            "multi_label": True,
        },
        LIMITS,
    )
    result = await analysis.classify("test-tenant", request)
    assert result.classifications[0].category == "Cooking"
    assert result.classifications[0].confidence > 0.5
    assert all(c.confidence < 0.5 for c in result.classifications[1:])


async def test_text_runs_the_requested_analyses(analysis: AnalysisService) -> None:
    everything = await analysis.text(validate_data(TextAnalysisRequest, {"text": ARTICLE}, LIMITS))
    assert everything.sentence_count == 6
    assert everything.character_count == len(ARTICLE)
    assert everything.word_count == len(ARTICLE.split())
    assert everything.sentiment and everything.summary and everything.keywords
    only = await analysis.text(
        validate_data(TextAnalysisRequest, {"text": ARTICLE, "analyses": ["keywords"]}, LIMITS)
    )
    assert only.keywords and only.sentiment is None and only.summary is None


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (SentimentRequest, {"text": ""}, "text"),
        (KeywordsRequest, {"text": "x", "max_keywords": 0}, "max_keywords"),
        (KeywordsRequest, {"text": "x", "max_keywords": 51}, "max_keywords"),
        (ClassifyRequest, {"text": "x", "categories": ["Sports", " sports "]}, "categories"),
        (ClassifyRequest, {"text": "x", "categories": []}, "categories"),
        (ClassifyRequest, {"text": "x", "categories": ["  "]}, "categories"),
        (TextAnalysisRequest, {"text": "x", "analyses": ["topics"]}, "analyses"),
        (TextAnalysisRequest, {"text": "x", "analyses": ["summary", "summary"]}, "analyses"),
        (SummarizeRequest, {"text": "x", "max_length": 9}, "max_length"),
        (SummarizeRequest, {"text": "x", "max_length": 1001}, "max_length"),
        (SummarizeRequest, {"text": "x", "max_sentences": 0}, "max_sentences"),
        (SummarizeRequest, {"text": "x", "max_sentences": 21}, "max_sentences"),
        (SentimentRequest, {"text": "x" * (LIMITS.max_text_chars + 1)}, "text"),
    ],
)
def test_invalid_requests(model: Any, data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_data(model, data, LIMITS)
    assert caught.value.errors and all(e.loc[0] == field for e in caught.value.errors)


# --- The LLM path -------------------------------------------------------------------------------


def test_prompts_ask_for_json_and_carry_the_text() -> None:
    text = "Some text to analyse."
    prompts = [
        prompt_for_sentiment(SentimentRequest(text=text, include_aspects=True)),
        prompt_for_summary(SummarizeRequest(text=text, max_length=50, max_sentences=2)),
        prompt_for_keywords(KeywordsRequest(text=text, max_keywords=4)),
        prompt_for_classification(ClassifyRequest(text=text, categories=["a", "b"])),
    ]
    for messages in prompts:
        assert [role for role, _ in messages] == ["system", "user"]
        assert "JSON" in messages[0][1] and text in messages[1][1]
    assert "aspects" in prompts[0][0][1]
    assert "at most 50 words in at most 2 sentences" in prompts[1][0][1]
    unbounded = prompt_for_summary(SummarizeRequest(text=text))[0][1]
    assert "at most 100 words;" in unbounded and "sentences;" not in unbounded


def test_parse_llm_sentiment() -> None:
    content = (
        '```json\n{"sentiment": "negative", "score": -0.7, "confidence": 0.9, "extra": 1}\n```'
    )
    result = parse_llm_sentiment(content, "gpt-x")
    assert (result.sentiment, result.score, result.model) == ("negative", -0.7, "gpt-x")
    for bad in [
        "I think it is negative.",
        '{"sentiment": "angry", "score": -0.7, "confidence": 0.9}',
        '{"sentiment": "negative", "score": -3, "confidence": 0.9}',
        '{"sentiment": "negative"}',
        "[1, 2]",
    ]:
        with pytest.raises(ProviderError):
            parse_llm_sentiment(bad, "gpt-x")


def test_parse_llm_summary() -> None:
    good = json.dumps({"summary": "Solar grows.", "key_points": ["Solar grows."]})
    parsed = parse_llm_summary("Here you go: " + good, "m", max_words=100, max_sentences=None)
    assert parsed.summary == "Solar grows."
    for bad in ['{"summary": "  ", "key_points": []}', '{"key_points": "x"}', "{not json}"]:
        with pytest.raises(ProviderError):
            parse_llm_summary(bad, "m", max_words=100, max_sentences=None)


def test_an_llm_summary_is_held_to_the_budgets() -> None:
    """A chat model may write more than asked: its leading sentences that fit are kept."""
    summary = (
        "Solar power grows fast worldwide. Panels cost ninety percent less than a decade ago. "
        "Storage at night remains the main challenge for the whole industry."
    )
    content = json.dumps({"summary": summary, "key_points": ["Solar grows."]})

    def fitted(max_words: int, max_sentences: int | None) -> str:
        return parse_llm_summary(
            content, "m", max_words=max_words, max_sentences=max_sentences
        ).summary

    assert fitted(100, None) == summary
    two = "Solar power grows fast worldwide. Panels cost ninety percent less than a decade ago."
    assert fitted(20, None) == two  # 5 + 9 words; the third (11) would pass 20
    assert fitted(100, 2) == two
    assert fitted(13, None) == "Solar power grows fast worldwide."  # stops at the first misfit
    assert fitted(10, 1) == "Solar power grows fast worldwide."
    long_first = json.dumps({"summary": " ".join(["word"] * 30) + ".", "key_points": []})
    cut = parse_llm_summary(long_first, "m", max_words=10, max_sentences=None).summary
    assert cut == " ".join(["word"] * 10) + "\u2026" and len(words(cut)) == 10


def test_parse_llm_keywords() -> None:
    good = json.dumps(
        {"keywords": [{"keyword": "a", "score": 0.2}, {"keyword": "b", "score": 0.9}]}
    )
    assert [k.keyword for k in parse_llm_keywords(good, "m").keywords] == ["b", "a"]
    for bad in ['{"keywords": ["a", "b"]}', '{"keywords": [{"keyword": "a", "score": 2}]}']:
        with pytest.raises(ProviderError) as caught:
            parse_llm_keywords(bad, "m")
        assert "keywords" in caught.value.detail


def test_parse_llm_classification() -> None:
    good = json.dumps({"classifications": [{"category": "sports ", "confidence": 0.8}]})
    result = parse_llm_classification(good, "m", categories=["Politics", "Sports"])
    assert [(c.category, c.confidence) for c in result.classifications] == [
        ("Sports", 0.8),
        ("Politics", 0.0),
    ]
    with pytest.raises(ProviderError):
        parse_llm_classification(
            json.dumps({"classifications": [{"category": "weather", "confidence": 0.5}]}),
            "m",
            categories=["Politics", "Sports"],
        )
    with pytest.raises(ProviderError):
        parse_llm_classification('{"classifications": [{"category": "x"}]}', "m")
