"""Analysis and complexity estimates, from a remote chat model when one is configured, else offline.

Offline (no key, a laptop): VADER sentiment, TextRank summary, YAKE keywords, zero-shot
classification by embeddings (:mod:`.analysis`) and the signals + nearest-examples estimator
(:mod:`.complexity`). With a remote provider (OpenAI, Anthropic, an OpenAI-compatible server) the
same fields come from the deployment's default chat model in JSON mode, validated against the
response models; an answer that does not fit is a 502 ``provider_error``. The small local chat
model is not used here: its JSON is not reliable enough to stand in for the offline analysers.

Every response names the model that produced it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import anyio
import anyio.to_thread

from synthstack_core.errors import SynthStackError
from synthstack_core.features.analysis import (
    AnalysisService,
    parse_llm_classification,
    parse_llm_keywords,
    parse_llm_sentiment,
    parse_llm_summary,
    prompt_for_classification,
    prompt_for_keywords,
    prompt_for_sentiment,
    prompt_for_summary,
    words,
)
from synthstack_core.features.complexity import (
    DEFAULT_SCALE,
    ComplexityScale,
    ComplexityService,
    parse_llm_estimate,
    prompt_for_estimate,
)
from synthstack_core.features.generation import GenerationService, usage_of
from synthstack_core.features.llm_output import PromptMessage
from synthstack_core.providers.llm import ChatCompletion, ChatMessage
from synthstack_core.schemas.analysis import (
    ClassifyRequest,
    ClassifyResponse,
    KeywordsRequest,
    KeywordsResponse,
    SentimentRequest,
    SentimentResponse,
    SummarizeRequest,
    SummarizeResponse,
    TextAnalysisRequest,
    TextAnalysisResponse,
)
from synthstack_core.schemas.complexity import (
    ComplexityEstimateRequest,
    ComplexityEstimateResponse,
)
from synthstack_core.schemas.generation import (
    AnalysisGenerateRequest,
    AnalysisGenerateResponse,
)

__all__ = ["LanguageService"]


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of ``group`` that is not a cancellation, preferring SynthStack's own."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        error = pending.pop(0)
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        else:
            leaves.append(error)
    for error in leaves:
        if isinstance(error, SynthStackError):
            return error
    return next((e for e in leaves if not isinstance(e, anyio.get_cancelled_exc_class())), group)


#: Output budget of a JSON analysis (a summary and its key points fit comfortably).
ANALYSIS_MAX_TOKENS = 1024


class LanguageService:
    """``/api/v1/analysis/*`` and ``/api/v1/complexity/estimate``: LLM or offline."""

    def __init__(
        self,
        offline: AnalysisService,
        complexity: ComplexityService,
        generation: GenerationService,
        scale: ComplexityScale = DEFAULT_SCALE,
        *,
        use_llm: bool = True,
    ) -> None:
        self.offline = offline
        self.complexity = complexity
        self.generation = generation
        self.scale = scale
        self._use_llm = use_llm

    @property
    def uses_llm(self) -> bool:
        """Whether analyses come from a remote chat model (``SYNTHSTACK_ANALYSIS_LLM=auto`` and a
        remote provider configured)."""
        return self._use_llm and self.generation.registry.remote_configured

    async def _ask(self, prompt: Sequence[PromptMessage]) -> ChatCompletion:
        """The default chat model's JSON answer to ``prompt``."""
        _, spec = self.generation.registry.resolve(None)
        return await self.generation.complete(
            [ChatMessage(role, content) for role, content in prompt],
            max_tokens=min(ANALYSIS_MAX_TOKENS, self.generation.output_limit(spec)),
            temperature=0.0,
            json_output=True,
        )

    async def sentiment(self, request: SentimentRequest) -> SentimentResponse:
        """``POST /api/v1/analysis/sentiment``."""
        if not self.uses_llm:
            return await self.offline.sentiment(request)
        answer = await self._ask(prompt_for_sentiment(request))
        return parse_llm_sentiment(answer.content, answer.model)

    async def summarize(self, request: SummarizeRequest) -> SummarizeResponse:
        """``POST /api/v1/analysis/summarize``."""
        if not self.uses_llm:
            return await self.offline.summarize(request)
        answer = await self._ask(prompt_for_summary(request))
        return await anyio.to_thread.run_sync(
            functools.partial(
                parse_llm_summary,
                answer.content,
                answer.model,
                max_words=request.max_length,
                max_sentences=request.max_sentences,
            )
        )

    async def keywords(self, request: KeywordsRequest) -> KeywordsResponse:
        """``POST /api/v1/analysis/keywords``."""
        if not self.uses_llm:
            return await self.offline.keywords(request)
        answer = await self._ask(prompt_for_keywords(request))
        response = parse_llm_keywords(answer.content, answer.model)
        response.keywords = response.keywords[: request.max_keywords]
        return response

    async def classify(self, request: ClassifyRequest) -> ClassifyResponse:
        """``POST /api/v1/analysis/classify``."""
        if not self.uses_llm:
            return await self.offline.classify(request)
        answer = await self._ask(prompt_for_classification(request))
        return parse_llm_classification(answer.content, answer.model, categories=request.categories)

    async def text(self, request: TextAnalysisRequest) -> TextAnalysisResponse:
        """``POST /api/v1/analysis/text``: the requested analyses, concurrently, with counts."""
        if not self.uses_llm:
            return await self.offline.text(request)
        results: dict[str, SentimentResponse | SummarizeResponse | KeywordsResponse] = {}

        async def sentiment() -> None:
            results["sentiment"] = await self.sentiment(SentimentRequest(text=request.text))

        async def summary() -> None:
            results["summary"] = await self.summarize(SummarizeRequest(text=request.text))

        async def keywords() -> None:
            results["keywords"] = await self.keywords(KeywordsRequest(text=request.text))

        jobs = {"sentiment": sentiment, "summary": summary, "keywords": keywords}
        refused: dict[str, SynthStackError] = {}

        async def run(name: str) -> None:
            try:
                await jobs[name]()
            except SynthStackError as error:
                # Kept, and the other analyses go on: which error answers must not depend on
                # which model answer came back first.
                refused[name] = error

        try:
            async with anyio.create_task_group() as group:
                for name in request.analyses:
                    group.start_soon(run, name)
        except BaseExceptionGroup as failed:
            # An unexpected failure (the others were cancelled): answer with it.
            raise _first_error(failed) from None
        for name in request.analyses:
            if name in refused:
                # The first refused analysis in the request's order answers.
                raise refused[name]
        counts = await self.offline.text(
            TextAnalysisRequest.model_construct(text=request.text, analyses=[])
        )
        found_sentiment = results.get("sentiment")
        found_summary = results.get("summary")
        found_keywords = results.get("keywords")
        return counts.model_copy(
            update={
                "sentiment": found_sentiment
                if isinstance(found_sentiment, SentimentResponse)
                else None,
                "summary": found_summary if isinstance(found_summary, SummarizeResponse) else None,
                "keywords": found_keywords
                if isinstance(found_keywords, KeywordsResponse)
                else None,
            }
        )

    async def generate(self, request: AnalysisGenerateRequest) -> AnalysisGenerateResponse:
        """``POST /api/v1/analysis/generate``: text from a prompt and optional context, with the
        default chat model (the local one offline)."""
        prompt = request.prompt
        if request.context:
            prompt = f"Context:\n{request.context}\n\n{request.prompt}"
        completion = await self.generation.complete(
            [ChatMessage("user", prompt)],
            model=request.model,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
        )
        return AnalysisGenerateResponse(
            content=completion.content,
            model=completion.model,
            usage=usage_of(completion),
            finish_reason=completion.finish_reason,
            word_count=len(words(completion.content)),
        )

    async def estimate(self, request: ComplexityEstimateRequest) -> ComplexityEstimateResponse:
        """``POST /api/v1/complexity/estimate``: offline, refined by the chat model if remote."""
        offline = await self.complexity.estimate(request)
        if not self.uses_llm:
            return offline
        neighbours = await self.complexity.neighbours(request)
        answer = await self._ask(prompt_for_estimate(request, neighbours, self.scale))
        return parse_llm_estimate(answer.content, offline, self.scale)
