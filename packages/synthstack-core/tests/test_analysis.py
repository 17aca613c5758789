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
    parse_llm_classification,
    parse_llm_keywords,
    parse_llm_sentiment,
    parse_llm_summary,
    prompt_for_classification,
    prompt_for_keywords,
    prompt_for_sentiment,
    prompt_for_summary,
    sentiment_of,
)
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


async def test_summary_keeps_order_and_bound(analysis: AnalysisService) -> None:
    request = validate_data(SummarizeRequest, {"text": ARTICLE, "max_length": 2}, LIMITS)
    result = await analysis.summarize(request)
    assert result.model == SUMMARY_MODEL
    assert len(result.key_points) == 2
    assert "fence" not in result.summary
    positions = [ARTICLE.index(point) for point in result.key_points]
    assert result.summary == " ".join(
        p for _, p in sorted(zip(positions, result.key_points, strict=True))
    )
    longer = await analysis.summarize(validate_data(SummarizeRequest, {"text": ARTICLE}, LIMITS))
    assert len(longer.key_points) == 3
    everything = await analysis.summarize(
        validate_data(SummarizeRequest, {"text": ARTICLE, "max_length": 20}, LIMITS)
    )
    assert len(everything.key_points) == 6


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
    result = await analysis.classify(request)
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
    result = await analysis.classify(request)
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
        (SummarizeRequest, {"text": "x", "max_length": 21}, "max_length"),
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
        prompt_for_summary(SummarizeRequest(text=text, max_length=2)),
        prompt_for_keywords(KeywordsRequest(text=text, max_keywords=4)),
        prompt_for_classification(ClassifyRequest(text=text, categories=["a", "b"])),
    ]
    for messages in prompts:
        assert [role for role, _ in messages] == ["system", "user"]
        assert "JSON" in messages[0][1] and text in messages[1][1]
    assert "aspects" in prompts[0][0][1] and "2 sentences" in prompts[1][0][1]


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
    assert parse_llm_summary("Here you go: " + good, "m").summary == "Solar grows."
    for bad in ['{"summary": "  ", "key_points": []}', '{"key_points": "x"}', "{not json}"]:
        with pytest.raises(ProviderError):
            parse_llm_summary(bad, "m")


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
