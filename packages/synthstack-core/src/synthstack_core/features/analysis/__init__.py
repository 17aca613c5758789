"""Text analysis (``/api/v1/analysis/*``), from a remote chat model when one is configured, else
offline.

Offline (no key, a laptop): VADER sentiment, TextRank summary, YAKE keywords, zero-shot
classification by embeddings (:mod:`.offline`). With a remote provider (OpenAI, Anthropic, an
OpenAI-compatible server) the same fields come from the deployment's default chat model in JSON
mode, validated against the response models; an answer that does not fit is a 502
``provider_error``. The small local chat model is not used here: its JSON is not reliable enough
to stand in for the offline analysers.

Every response names the model that produced it.


``/analysis/generate`` always answers from a chat model (the local one offline). Complexity
estimates are refined the same way, in :mod:`synthstack_core.features.complexity`.
"""

from synthstack_core.features.analysis.offline import (
    KEYWORDS_MODEL,
    SENTIMENT_MODEL,
    SUMMARY_MODEL,
    OfflineAnalysis,
    SentenceSentiment,
    cut_to_words,
    fit_summary,
    sentiment_of,
    word_cost,
    words,
)
from synthstack_core.features.analysis.prompts import (
    parse_llm_classification,
    parse_llm_keywords,
    parse_llm_sentiment,
    parse_llm_summary,
    prompt_for_classification,
    prompt_for_keywords,
    prompt_for_sentiment,
    prompt_for_summary,
)
from synthstack_core.features.analysis.service import MODULE, AnalysisService

__all__ = [
    "KEYWORDS_MODEL",
    "MODULE",
    "SENTIMENT_MODEL",
    "SUMMARY_MODEL",
    "AnalysisService",
    "OfflineAnalysis",
    "SentenceSentiment",
    "cut_to_words",
    "fit_summary",
    "parse_llm_classification",
    "parse_llm_keywords",
    "parse_llm_sentiment",
    "parse_llm_summary",
    "prompt_for_classification",
    "prompt_for_keywords",
    "prompt_for_sentiment",
    "prompt_for_summary",
    "sentiment_of",
    "word_cost",
    "words",
]
