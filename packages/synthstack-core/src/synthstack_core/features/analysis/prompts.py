"""The chat-model path of text analysis: prompts, and the checking of a model's answers."""

from __future__ import annotations

from collections.abc import Sequence

from synthstack_core.errors import ProviderError
from synthstack_core.features.llm_output import PromptMessage, json_object, validated
from synthstack_core.schemas.analysis import (
    Classification,
    ClassifyRequest,
    ClassifyResponse,
    KeywordsRequest,
    KeywordsResponse,
    SentimentRequest,
    SentimentResponse,
    SummarizeRequest,
    SummarizeResponse,
)

__all__ = [
    "parse_llm_classification",
    "parse_llm_keywords",
    "parse_llm_sentiment",
    "parse_llm_summary",
    "prompt_for_classification",
    "prompt_for_keywords",
    "prompt_for_sentiment",
    "prompt_for_summary",
]

from synthstack_core.features.analysis.offline import fit_summary, sentences_of

_JSON_ONLY = "Answer with one JSON object and nothing else."


def prompt_for_sentiment(request: SentimentRequest) -> list[PromptMessage]:
    """A prompt asking a chat model for the sentiment of ``request.text`` as JSON."""
    aspects = (
        ' and "aspects": a list of {"text": an opinionated sentence quoted from the text, '
        '"sentiment": "positive"|"negative"|"neutral", "score": -1..1}'
        if request.include_aspects
        else ""
    )
    return [
        (
            "system",
            "You judge the sentiment of texts. "
            + _JSON_ONLY
            + ' Keys: "sentiment": "positive"|"negative"|"neutral"|"mixed" (mixed when parts '
            'carry strong opposite opinions), "score": -1 (most negative) to 1 (most positive), '
            '"confidence": 0 to 1' + aspects + ".",
        ),
        ("user", request.text),
    ]


def parse_llm_sentiment(content: str, model: str) -> SentimentResponse:
    """A chat model's JSON answer to :func:`prompt_for_sentiment`, checked; ``model`` names it."""
    data = json_object(content, what="sentiment")
    return validated(SentimentResponse, {**data, "model": model}, what="sentiment")


def prompt_for_summary(request: SummarizeRequest) -> list[PromptMessage]:
    """A prompt asking for a summary of at most ``max_length`` words (and ``max_sentences``
    sentences) and its key points."""
    sentences = (
        f" in at most {request.max_sentences} sentences"
        if request.max_sentences is not None
        else ""
    )
    return [
        (
            "system",
            "You summarise texts faithfully, adding nothing that the text does not say. "
            + _JSON_ONLY
            + f' Keys: "summary": at most {request.max_length} words{sentences}; "key_points": '
            "a list of the text's main points, most important first, one short sentence each.",
        ),
        ("user", request.text),
    ]


def parse_llm_summary(
    content: str, model: str, *, max_words: int, max_sentences: int | None
) -> SummarizeResponse:
    """A chat model's JSON answer to :func:`prompt_for_summary`, checked; its summary is held to
    the budgets (its leading sentences that fit, :func:`fit_summary`)."""
    data = json_object(content, what="summary")
    response = validated(SummarizeResponse, {**data, "model": model}, what="summary")
    if not response.summary.strip():
        raise ProviderError("The language model's summary is empty.")
    sentences = sentences_of(response.summary)
    response.summary = " ".join(
        text for _, text in fit_summary(sentences, max_words, max_sentences, skip=False)
    )
    return response


def prompt_for_keywords(request: KeywordsRequest) -> list[PromptMessage]:
    """A prompt asking for at most ``max_keywords`` keywords with relevance scores."""
    return [
        (
            "system",
            "You extract the key words and phrases of texts, as they appear in the text. "
            + _JSON_ONLY
            + f' Keys: "keywords": at most {request.max_keywords} objects '
            '{"keyword": a word or phrase, "score": relevance from 0 to 1, higher is better}.',
        ),
        ("user", request.text),
    ]


def parse_llm_keywords(content: str, model: str) -> KeywordsResponse:
    """A chat model's JSON answer to :func:`prompt_for_keywords`, checked, best first."""
    data = json_object(content, what="keywords")
    response = validated(KeywordsResponse, {**data, "model": model}, what="keywords")
    response.keywords.sort(key=lambda k: -k.score)
    return response


def prompt_for_classification(request: ClassifyRequest) -> list[PromptMessage]:
    """A prompt asking to score the text against the request's categories."""
    rule = (
        "score each category on its own, from 0 to 1"
        if request.multi_label
        else "share a confidence of 1 among the categories"
    )
    listed = "\n".join(f"- {category}" for category in request.categories)
    return [
        (
            "system",
            "You classify texts into the categories given. "
            + _JSON_ONLY
            + ' Keys: "classifications": a list of {"category": exactly as given, '
            f'"confidence": 0 to 1}}, one per category; {rule}.',
        ),
        ("user", f"Categories:\n{listed}\n\nText:\n{request.text}"),
    ]


def parse_llm_classification(
    content: str, model: str, *, categories: Sequence[str] | None = None
) -> ClassifyResponse:
    """A chat model's JSON answer to :func:`prompt_for_classification`, checked, sorted.

    With ``categories`` (the request's), an unknown or repeated category is unusable, and a
    category the model left out is added with confidence 0.
    """
    data = json_object(content, what="classification")
    response = validated(ClassifyResponse, {**data, "model": model}, what="classification")
    if categories is not None:
        wanted = {" ".join(c.split()).casefold(): c for c in categories}
        given: dict[str, Classification] = {}
        for item in response.classifications:
            key = " ".join(item.category.split()).casefold()
            if key not in wanted or key in given:
                raise ProviderError(
                    "The language model's classification names a category that was not asked "
                    "for, or names one twice."
                )
            given[key] = Classification(category=wanted[key], confidence=item.confidence)
        response.classifications = [
            given.get(key, Classification(category=category, confidence=0.0))
            for key, category in wanted.items()
        ]
    response.classifications.sort(key=lambda c: -c.confidence)
    return response
