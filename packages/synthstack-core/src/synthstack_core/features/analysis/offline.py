"""Text analysis offline: sentiment (VADER), summary (TextRank), keywords (YAKE), zero-shot classes.

Every library ships its data in its wheel; none is imported before the first call, and each is set
up once per process (:class:`_Toolkit`). CPU work runs in a worker thread.

Sentences are cut by ``pysbd`` everywhere (counts, sentiment aspects, summary), and words are matched
by one regular expression (:func:`words`), so NLTK's tokenizer, which needs a data download, is never
used.

**Sentiment.** ``score`` is VADER's compound score of the whole text. Each sentence also gets its
compound score; a sentence is *opinionated* when ``|s| >= 0.05`` (VADER's own neutral band) and
*strong* when ``|s| >= 0.5``. The text is ``mixed`` when it has a strong positive and a strong
negative sentence and the weaker side weighs at least a third of the stronger side (each side's
weight is the sum of its strong sentences' ``|s|``): one mild complaint in a rave stays positive.
Otherwise the label follows the score (``>= 0.05`` positive, ``<= -0.05`` negative, else neutral).
``confidence = (strength + agreement) / 2``, increasing in both:

* positive / negative: strength ``|score|``; agreement is the share of opinionated sentences with
  the label's sign (1 when no sentence is opinionated);
* neutral: strength ``1 - |score| / 0.05``; agreement is the share of sentences that are not
  opinionated;
* mixed: strength is the balance of the two sides (weaker weight / stronger weight); agreement is
  the share of opinionated sentences that are strong.

``aspects`` are the opinionated sentences, in the text's order, each with its own score.

**Summary.** ``max_length`` is a budget of words (10-1000, default 100) and ``max_sentences``, when
given, of sentences (1-20). Sentences are ranked by TextRank (``sumy``; English stop words and
Snowball stems), which compares every pair: a text of more than ``MAX_RANKED_SENTENCES`` distinct
sentences is first narrowed to that many by a linear centrality (:func:`_central`), so the cost is
bounded whatever the text (``bench/summary_cost.py``). Going down the ranking, a sentence is
taken when it fits in what is left of both budgets and passed over when it does not, so the
summary is the best sentences that fit, in the text's order, and ``key_points`` lists the same
sentences best first. A sentence costs the larger of its :func:`words` and its
whitespace-separated tokens, so the summary exceeds ``max_length`` by neither count. Only when no
sentence fits is the best one cut after its last word that does, and ended with "…". A chat
model's summary is held to the same budgets: its leading sentences that fit (:func:`fit_summary`).

**Keywords.** YAKE (n-grams up to 3 words, its English stop words) scores a candidate ``h > 0``,
lower is better. The answer's ``score`` is ``1 / (1 + h)``: in ``(0, 1]``, higher is better, and
keywords come best first.

**Classification.** Each category is embedded twice, as itself and as "This text is about
<category>.", and the two unit vectors are averaged; ``c`` is the cosine of the text with it. Single
label: ``softmax(20 * c)`` over the categories (sums to 1). Multi label: each category on its own,
``sigmoid(25 * (c - 0.12))``: with all-MiniLM-L6-v2, texts sit at cosines of about 0.15-0.30 to
the category they belong to and below 0.10 to the others, so 0.12 is the even point and 0.25 gives
0.96. Both constants were set by hand on a dozen text/category pairs, not fitted on a data set.
Texts beyond the embedding model's input length (256 word pieces locally) are classified by their
beginning.
"""

from __future__ import annotations

import importlib
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import numpy as np

from synthstack_core.extras import requires_extra
from synthstack_core.features.embeddings import EmbeddingService
from synthstack_core.schemas.analysis import (
    DEFAULT_KEYWORDS,
    DEFAULT_SUMMARY_WORDS,
    AspectSentiment,
    Classification,
    ClassifyRequest,
    ClassifyResponse,
    Keyword,
    KeywordsRequest,
    KeywordsResponse,
    SentimentLabel,
    SentimentRequest,
    SentimentResponse,
    SummarizeRequest,
    SummarizeResponse,
    TextAnalysisRequest,
    TextAnalysisResponse,
)
from synthstack_core.schemas.common import Limits

__all__ = [
    "KEYWORDS_MODEL",
    "SENTIMENT_MODEL",
    "SUMMARY_MODEL",
    "OfflineAnalysis",
    "SentenceSentiment",
    "cut_to_words",
    "fit_summary",
    "sentences_of",
    "sentiment_of",
    "word_cost",
    "words",
]

SENTIMENT_MODEL = "vader-3.3.2"
SUMMARY_MODEL = "textrank:sumy-0.13.0"
KEYWORDS_MODEL = "yake-0.7.3"

NEUTRAL_BAND = 0.05
STRONG = 0.5
MIXED_BALANCE = 1 / 3
SOFTMAX_SCALE = 20.0
SIGMOID_SLOPE = 25.0
SIGMOID_CENTER = 0.12
CATEGORY_TEMPLATE = "This text is about {}."
#: The most (distinct) sentences TextRank ranks: its graph has one edge per pair. A text of more
#: is first narrowed to that many by a linear centrality (:func:`_central`).
MAX_RANKED_SENTENCES = 300

_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
_TOKEN = re.compile(r"\S+")
#: Ends a sentence that had to be cut to fit a summary's word budget.
CUT_MARK = "\u2026"

T = TypeVar("T")


def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters and digits, with inner apostrophes and hyphens."""
    return _WORD.findall(text)


def word_cost(text: str) -> int:
    """What ``text`` costs of a summary's word budget: the larger of its :func:`words` and its
    whitespace-separated tokens ("U.S." is two words and one token, "5 - 10" two words and three
    tokens), so a summary within budget is within it by either count."""
    return max(len(words(text)), len(text.split()))


def cut_to_words(text: str, limit: int) -> str:
    """``text`` itself when it costs at most ``limit`` (:func:`word_cost`); else its beginning, cut
    after the last word that fits and ended with "…"."""
    if word_cost(text) <= limit:
        return text
    end = 0
    spent = 0  # words and tokens add up token by token: no word spans whitespace
    counted_words = 0
    for token in _TOKEN.finditer(text):
        counted_words += len(words(token.group()))
        spent = max(counted_words, spent + 1)
        if spent > limit:
            break
        end = token.end()
    if end == 0:  # the first token alone holds more words than the limit ("a_b_c_...")
        end = list(_WORD.finditer(text))[limit - 1].end()
    return text[:end].rstrip(",;:") + CUT_MARK


def fit_summary(
    sentences: Sequence[str], max_words: int, max_sentences: int | None, *, skip: bool
) -> list[tuple[int, str]]:
    """The sentences, as ``(position in sentences, text)``, that fit in ``max_words`` words and at
    most ``max_sentences`` sentences, taken in the order given.

    With ``skip`` a sentence that does not fit is passed over and later ones may still be taken
    (the best sentences that fit, from a ranking); without, taking stops at the first that does not
    fit (the leading sentences of a summary). When none fits, the first is cut to ``max_words``
    (:func:`cut_to_words`).
    """
    chosen: list[tuple[int, str]] = []
    left = max_words
    for position, sentence in enumerate(sentences):
        if max_sentences is not None and len(chosen) >= max_sentences:
            break
        cost = word_cost(sentence)
        if cost <= left:
            chosen.append((position, sentence))
            left -= cost
        elif not skip:
            break
    if not chosen and sentences:
        chosen = [(0, cut_to_words(sentences[0], max_words))]
    return chosen


#: What needs the extra ``analysis`` (a 501 naming it when it is not installed).
_OFFLINE_ANALYSIS = "Offline text analysis (sentences, sentiment, summaries, keywords)"


class _Toolkit:
    """The analysis libraries, imported and set up once per process on first use.

    They ship no type information, so they are imported by name and used as ``Any``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segmenter: Any = None
        self._vader: Any = None
        self._textrank: Any = None
        self._sumy_dom: Any = None
        self._yake: Any = None
        self._yake_stop_words: set[str] | None = None

    @staticmethod
    def _quietly(load: Callable[[], T]) -> T:
        # pysbd and sumy have invalid escape sequences in regex literals: Python warns when it
        # compiles them, which a strict warning filter turns into a SyntaxError.
        with warnings.catch_warnings(), requires_extra("analysis", _OFFLINE_ANALYSIS):
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", SyntaxWarning)
            return load()

    def sentences(self, text: str) -> list[str]:
        """The sentences of ``text`` (pysbd, English rules), stripped, without empty ones."""
        with self._lock:
            if self._segmenter is None:
                pysbd = self._quietly(lambda: importlib.import_module("pysbd"))
                self._segmenter = pysbd.Segmenter(language="en", clean=False)
        parts = _segment(self._segmenter, text)
        return [part.strip() for part in parts if part.strip()]

    def vader(self) -> Any:
        """VADER's analyser (its lexicon comes from the wheel)."""
        with self._lock:
            if self._vader is None:
                with requires_extra("analysis", _OFFLINE_ANALYSIS):
                    vader = importlib.import_module("vaderSentiment.vaderSentiment")
                self._vader = vader.SentimentIntensityAnalyzer()
            return self._vader

    def textrank(self) -> tuple[Any, Any]:
        """sumy's TextRank summarizer (English stop words, Snowball stems) and its DOM module."""
        with self._lock:
            if self._textrank is None:

                def load() -> tuple[Any, Any]:
                    dom = importlib.import_module("sumy.models.dom")
                    stemmers = importlib.import_module("sumy.nlp.stemmers")
                    text_rank = importlib.import_module("sumy.summarizers.text_rank")
                    utils = importlib.import_module("sumy.utils")
                    summarizer = text_rank.TextRankSummarizer(stemmers.Stemmer("english"))
                    summarizer.stop_words = utils.get_stop_words("english")
                    return summarizer, dom

                self._textrank, self._sumy_dom = self._quietly(load)
            return self._textrank, self._sumy_dom

    def keyword_extractor(self, top: int) -> Any:
        """A YAKE extractor for ``top`` keywords (a fresh one: it caches per document)."""
        with self._lock:
            if self._yake is None:
                self._yake = self._quietly(lambda: importlib.import_module("yake"))
                self._yake_stop_words = self._yake.KeywordExtractor(lan="en").stopword_set
        return self._yake.KeywordExtractor(
            lan="en", n=3, dedup_lim=0.9, top=top, stopwords=self._yake_stop_words
        )


_TOOLKIT = _Toolkit()


def _segment(segmenter: Any, text: str) -> list[str]:
    """What ``segmenter.segment(text)`` returns (``clean=False``), in linear time.

    pysbd 0.3.4 finds each sentence in the original text with a fresh ``re.finditer`` from the
    start, taking the first match that ends after the previous sentence: quadratic in the number
    of sentences (``"a. " * 6666``, 20,000 characters, took 22 s of CPU). Here each distinct
    sentence keeps its own iterator, advanced only forward: the end of the previous sentence
    never decreases, so a match passed over once would be passed over again, and the result is
    the same sentence for sentence.
    """
    if not text:
        return []
    processed: list[str] = segmenter.processor(text).process()
    iterators: dict[str, Iterator[re.Match[str]]] = {}
    current: dict[str, re.Match[str] | None] = {}
    found: list[str] = []
    prior_end = 0
    for sentence in processed:
        matches = iterators.get(sentence)
        if matches is None:
            matches = iterators[sentence] = re.finditer(rf"{re.escape(sentence)}\s*", text)
            current[sentence] = next(matches, None)
        match = current[sentence]
        while match is not None and match.end() <= prior_end:
            match = next(matches, None)
        current[sentence] = match
        if match is not None:
            found.append(match.group())
            prior_end = match.end()
    return found


def sentences_of(text: str) -> list[str]:
    """The sentences of ``text`` (``pysbd``, set up once per process; blocking)."""
    return _TOOLKIT.sentences(text)


class _WordTokenizer:
    """What sumy asks of a tokenizer, without NLTK: sentences by pysbd, words by a regex."""

    language = "english"

    @staticmethod
    def to_sentences(text: str) -> tuple[str, ...]:
        return tuple(_TOOLKIT.sentences(text))

    @staticmethod
    def to_words(text: str) -> tuple[str, ...]:
        return tuple(words(text))


@dataclass(frozen=True)
class SentenceSentiment:
    """A sentence and its VADER compound score."""

    text: str
    score: float


def _label(score: float) -> SentimentLabel:
    if score >= NEUTRAL_BAND:
        return "positive"
    if score <= -NEUTRAL_BAND:
        return "negative"
    return "neutral"


def sentiment_of(
    score: float, sentences: Sequence[SentenceSentiment]
) -> tuple[SentimentLabel, float]:
    """The label and confidence of a text from its compound score and its sentences' scores.

    The rules are in this module's docstring.
    """
    opinionated = [s.score for s in sentences if abs(s.score) >= NEUTRAL_BAND]
    positive = sum(s for s in opinionated if s >= STRONG)
    negative = -sum(s for s in opinionated if s <= -STRONG)
    if positive > 0 and negative > 0:
        balance = min(positive, negative) / max(positive, negative)
        if balance >= MIXED_BALANCE:
            strong = sum(1 for s in opinionated if abs(s) >= STRONG)
            return "mixed", _clip01((balance + strong / len(opinionated)) / 2)
    label = _label(score)
    if label == "neutral":
        strength = 1 - abs(score) / NEUTRAL_BAND
        agreement = 1 - len(opinionated) / len(sentences) if sentences else 1.0
    else:
        sign = 1 if label == "positive" else -1
        strength = abs(score)
        agreement = (
            sum(1 for s in opinionated if s * sign > 0) / len(opinionated) if opinionated else 1.0
        )
    return label, _clip01((strength + agreement) / 2)


def _clip01(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 4)


def _sentiment(
    text: str, include_aspects: bool, split: Sequence[str] | None = None
) -> SentimentResponse:
    vader = _TOOLKIT.vader()
    score = float(vader.polarity_scores(text)["compound"])
    sentences = [
        SentenceSentiment(s, float(vader.polarity_scores(s)["compound"]))
        for s in (_TOOLKIT.sentences(text) if split is None else split)
    ]
    label, confidence = sentiment_of(score, sentences)
    aspects = None
    if include_aspects:
        aspects = [
            AspectSentiment(text=s.text, sentiment=_label(s.score), score=s.score)
            for s in sentences
            if abs(s.score) >= NEUTRAL_BAND
        ]
    return SentimentResponse(
        sentiment=label, score=score, confidence=confidence, aspects=aspects, model=SENTIMENT_MODEL
    )


def _summary(
    text: str, max_words: int, max_sentences: int | None, split: Sequence[str] | None = None
) -> SummarizeResponse:
    summarizer, dom = _TOOLKIT.textrank()
    sentences = _TOOLKIT.sentences(text) if split is None else list(split)
    if not sentences:
        return SummarizeResponse(summary="", key_points=[], model=SUMMARY_MODEL)
    tokenizer = _WordTokenizer()
    # sumy keys ratings by sentence text, so a repeated sentence shares one rating: keep its first.
    first = {text: index for index, text in reversed(list(enumerate(sentences)))}
    distinct = sorted(first.values())
    # TextRank's graph: every sentence (repeats too) as it always was, up to the bound; beyond it,
    # the most central distinct sentences.
    if len(sentences) <= MAX_RANKED_SENTENCES:
        nodes = list(range(len(sentences)))
    else:
        nodes = _central(sentences, distinct, summarizer, MAX_RANKED_SENTENCES)
    document = dom.ObjectDocumentModel(
        [dom.Paragraph([dom.Sentence(sentences[i], tokenizer) for i in nodes])]
    )
    ratings = summarizer.rate_sentences(document)
    node_of = {index: node for node, index in enumerate(nodes)}
    ranked = sorted(
        ((sentences[index], index) for index in distinct if index in node_of),
        key=lambda item: (-float(ratings[document.sentences[node_of[item[1]]]]), item[1]),
    )
    chosen = [
        (taken, ranked[rank][1])
        for rank, taken in fit_summary(
            [text for text, _ in ranked], max_words, max_sentences, skip=True
        )
    ]
    in_order = sorted(chosen, key=lambda item: item[1])
    return SummarizeResponse(
        summary=" ".join(text for text, _ in in_order),
        key_points=[text for text, _ in chosen],
        model=SUMMARY_MODEL,
    )


def _central(
    sentences: Sequence[str], indices: Sequence[int], summarizer: Any, count: int
) -> list[int]:
    """The ``count`` sentences (of ``indices``) that share the most words with the rest of the
    text, in the text's order: TextRank's candidates when there are too many for its quadratic
    graph. Linear: a sentence scores the mean, over its distinct non-stop words, of how many other
    sentences hold the word; earlier sentences win ties."""
    stop_words = summarizer.stop_words
    bags = [
        {w for w in (word.lower() for word in words(sentences[i])) if w not in stop_words}
        for i in indices
    ]
    frequency: dict[str, int] = {}
    for bag in bags:
        for word in bag:
            frequency[word] = frequency.get(word, 0) + 1
    scores = [sum(frequency[word] - 1 for word in bag) / len(bag) if bag else 0.0 for bag in bags]
    best = sorted(range(len(indices)), key=lambda k: (-scores[k], k))[:count]
    return sorted(indices[k] for k in best)


def _keywords(text: str, top: int) -> KeywordsResponse:
    extractor = _TOOLKIT.keyword_extractor(top)
    found = extractor.extract_keywords(text)
    keywords = [
        Keyword(keyword=str(keyword), score=round(1 / (1 + max(0.0, float(h))), 6))
        for keyword, h in found[:top]
    ]
    keywords.sort(key=lambda k: -k.score)
    return KeywordsResponse(keywords=keywords, model=KEYWORDS_MODEL)


class OfflineAnalysis:
    """Offline text analysis; classification uses the embedding model."""

    def __init__(self, embeddings: EmbeddingService, limits: Limits) -> None:
        self._embeddings = embeddings
        self._limits = limits

    async def text(self, request: TextAnalysisRequest) -> TextAnalysisResponse:
        """Counts of the text and the requested analyses, run concurrently."""
        results: dict[str, SentimentResponse | SummarizeResponse | KeywordsResponse] = {}
        # The text is split into sentences once, for the count and for every analysis.
        sentences = await anyio.to_thread.run_sync(_TOOLKIT.sentences, request.text)

        # Each analysis with its request's defaults (the text is already validated).
        work: dict[str, Callable[[], SentimentResponse | SummarizeResponse | KeywordsResponse]]
        work = {
            "sentiment": lambda: _sentiment(request.text, False, sentences),
            "summary": lambda: _summary(request.text, DEFAULT_SUMMARY_WORDS, None, sentences),
            "keywords": lambda: _keywords(request.text, DEFAULT_KEYWORDS),
        }

        async def run(name: str) -> None:
            results[name] = await anyio.to_thread.run_sync(work[name])

        async with anyio.create_task_group() as group:
            for name in request.analyses:
                group.start_soon(run, name)
        sentiment = results.get("sentiment")
        summary = results.get("summary")
        keywords = results.get("keywords")
        return TextAnalysisResponse(
            word_count=len(words(request.text)),
            character_count=len(request.text),
            sentence_count=len(sentences),
            sentiment=sentiment if isinstance(sentiment, SentimentResponse) else None,
            summary=summary if isinstance(summary, SummarizeResponse) else None,
            keywords=keywords if isinstance(keywords, KeywordsResponse) else None,
        )

    async def sentiment(self, request: SentimentRequest) -> SentimentResponse:
        """The sentiment of the text (and of its opinionated sentences with ``include_aspects``)."""
        return await anyio.to_thread.run_sync(_sentiment, request.text, request.include_aspects)

    async def summarize(self, request: SummarizeRequest) -> SummarizeResponse:
        """An extractive summary of at most ``max_length`` words (and ``max_sentences``)."""
        return await anyio.to_thread.run_sync(
            _summary, request.text, request.max_length, request.max_sentences
        )

    async def keywords(self, request: KeywordsRequest) -> KeywordsResponse:
        """At most ``max_keywords`` keywords, most relevant first."""
        return await anyio.to_thread.run_sync(_keywords, request.text, request.max_keywords)

    async def classify(self, request: ClassifyRequest, *, tenant: str) -> ClassifyResponse:
        """Zero-shot classification of ``tenant``'s text by embedding similarity (calibration:
        module docstring)."""
        categories = request.categories
        texts = [
            request.text,
            *categories,
            *(CATEGORY_TEMPLATE.format(c.strip()) for c in categories),
        ]
        result = await self._embeddings.embed(texts, tenant=tenant)
        vectors = result.vectors.astype(np.float64)
        count = len(categories)
        prototypes = vectors[1 : 1 + count] + vectors[1 + count :]
        prototypes /= np.maximum(np.linalg.norm(prototypes, axis=1, keepdims=True), 1e-12)
        cosines = prototypes @ vectors[0]
        if request.multi_label:
            confidences = 1 / (1 + np.exp(-SIGMOID_SLOPE * (cosines - SIGMOID_CENTER)))
        else:
            exponents = np.exp(SOFTMAX_SCALE * (cosines - cosines.max()))
            confidences = exponents / exponents.sum()
        ranked = sorted(
            zip(categories, confidences.tolist(), strict=True), key=lambda item: -item[1]
        )
        return ClassifyResponse(
            classifications=[
                Classification(category=category, confidence=min(1.0, max(0.0, confidence)))
                for category, confidence in ranked
            ],
            model=result.model.id,
        )
