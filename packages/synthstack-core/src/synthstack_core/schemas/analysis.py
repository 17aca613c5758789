"""Models of text analysis: sentiment, summary, keywords, zero-shot classification and all at once."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from synthstack_core.schemas.common import AS_INTEGER, RequestModel, ResponseModel, Text

__all__ = [
    "ALL_ANALYSES",
    "DEFAULT_KEYWORDS",
    "DEFAULT_SUMMARY_WORDS",
    "MAX_SUMMARY_SENTENCES",
    "MAX_SUMMARY_WORDS",
    "MIN_SUMMARY_WORDS",
    "AnalysisName",
    "AspectSentiment",
    "Classification",
    "ClassifyRequest",
    "ClassifyResponse",
    "Keyword",
    "KeywordsRequest",
    "KeywordsResponse",
    "SentimentLabel",
    "SentimentRequest",
    "SentimentResponse",
    "SummarizeRequest",
    "SummarizeResponse",
    "TextAnalysisRequest",
    "TextAnalysisResponse",
]

AnalysisName = Literal["sentiment", "summary", "keywords"]
SentimentLabel = Literal["positive", "negative", "neutral", "mixed"]

#: What ``TextAnalysisRequest.analyses`` runs when it is left out.
ALL_ANALYSES: tuple[AnalysisName, ...] = ("sentiment", "summary", "keywords")

#: Bounds of ``SummarizeRequest.max_length`` (a number of words) and its default.
MIN_SUMMARY_WORDS = 10
MAX_SUMMARY_WORDS = 1000
DEFAULT_SUMMARY_WORDS = 100
#: The largest ``SummarizeRequest.max_sentences``.
MAX_SUMMARY_SENTENCES = 20
#: The default of ``KeywordsRequest.max_keywords``.
DEFAULT_KEYWORDS = 10


def _unique_analyses(value: list[AnalysisName]) -> list[AnalysisName]:
    if len(set(value)) != len(value):
        raise PydanticCustomError("list_not_unique", "Each analysis may be named only once")
    return value


def _category_key(category: str) -> str:
    return " ".join(category.split()).casefold()


def _check_category(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("string_blank", "A category must not be blank")
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "String must not contain NUL characters")
    return value


def _unique_categories(value: list[str]) -> list[str]:
    seen: set[str] = set()
    for category in value:
        key = _category_key(category)
        if key in seen:
            raise PydanticCustomError(
                "list_not_unique",
                "Categories must differ once case and spacing are ignored; {category!r} repeats",
                {"category": category},
            )
        seen.add(key)
    return value


Category = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_check_category)]
Score = Annotated[float, Field(ge=-1, le=1)]
Probability = Annotated[float, Field(ge=0, le=1)]


class SentimentRequest(RequestModel):
    """Tell the sentiment of a text; optionally of each opinionated sentence too."""

    text: Text
    include_aspects: bool = False


class AspectSentiment(ResponseModel):
    """The sentiment of one opinionated sentence of the text."""

    text: str
    sentiment: Literal["positive", "negative", "neutral"]
    score: Score


class SentimentResponse(ResponseModel):
    """The sentiment of the whole text.

    ``score`` runs from -1 (most negative) to 1 (most positive); ``mixed`` means that sentences
    carry strong opposite opinions (the rule: ``features/analysis/offline.py``).
    """

    sentiment: SentimentLabel
    score: Score
    confidence: Probability
    aspects: list[AspectSentiment] | None = None
    model: str


class SummarizeRequest(RequestModel):
    """Summarise a text with its own sentences."""

    text: Text
    max_length: Annotated[int, Field(ge=MIN_SUMMARY_WORDS, le=MAX_SUMMARY_WORDS), AS_INTEGER] = (
        Field(DEFAULT_SUMMARY_WORDS, description="The most words the summary may have.")
    )
    max_sentences: Annotated[int, Field(ge=1, le=MAX_SUMMARY_SENTENCES), AS_INTEGER] | None = Field(
        None,
        description="The most sentences the summary may have; default, as many as fit in "
        "`max_length` words.",
    )


class SummarizeResponse(ResponseModel):
    """The summary (its sentences in the text's order) and its key points (best first)."""

    summary: str
    key_points: list[str]
    model: str


class KeywordsRequest(RequestModel):
    """Extract the key words and phrases of a text."""

    text: Text
    max_keywords: Annotated[int, Field(ge=1, le=50), AS_INTEGER] = DEFAULT_KEYWORDS


class Keyword(ResponseModel):
    """A key word or phrase; ``score`` is its relevance, from 0 to 1 (higher is better)."""

    keyword: str = Field(min_length=1)
    score: Probability


class KeywordsResponse(ResponseModel):
    """Keywords, most relevant first."""

    keywords: list[Keyword]
    model: str


class ClassifyRequest(RequestModel):
    """Sort a text into categories the caller names (zero-shot)."""

    text: Text
    categories: Annotated[
        list[Category],
        Field(min_length=1, max_length=50, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_unique_categories),
    ]
    multi_label: bool = Field(
        False,
        description="Score each category on its own (true) or share 1 among them (false).",
    )


class Classification(ResponseModel):
    """One category and how confidently the text belongs to it."""

    category: str
    confidence: Probability


class ClassifyResponse(ResponseModel):
    """Every requested category, most likely first."""

    classifications: list[Classification]
    model: str


class TextAnalysisRequest(RequestModel):
    """Count a text and run several analyses on it at once."""

    text: Text
    analyses: Annotated[
        list[AnalysisName],
        Field(max_length=len(ALL_ANALYSES), json_schema_extra={"uniqueItems": True}),
        AfterValidator(_unique_analyses),
    ] = Field(
        default_factory=lambda: list(ALL_ANALYSES),
        description="The analyses to run (default: all); an empty list returns the counts only.",
    )


class TextAnalysisResponse(ResponseModel):
    """Counts of the text and the result of each requested analysis."""

    word_count: int = Field(ge=0)
    character_count: int = Field(ge=0)
    sentence_count: int = Field(ge=0)
    sentiment: SentimentResponse | None = None
    summary: SummarizeResponse | None = None
    keywords: KeywordsResponse | None = None
