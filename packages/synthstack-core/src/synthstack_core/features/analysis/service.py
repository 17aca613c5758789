"""The analysis service: ``/api/v1/analysis/*``, from a remote chat model or offline."""

from __future__ import annotations

import functools

import anyio
import anyio.to_thread

from synthstack_core.errors import SynthStackError
from synthstack_core.features.analysis.offline import OfflineAnalysis, words
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
from synthstack_core.features.embeddings import EmbeddingService
from synthstack_core.features.generation import GenerationService, usage_of
from synthstack_core.providers.llm import ChatMessage
from synthstack_core.registry import Module, Stack, operation
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
from synthstack_core.schemas.common import Limits
from synthstack_core.schemas.generation import (
    AnalysisGenerateRequest,
    AnalysisGenerateResponse,
)

__all__ = ["MODULE", "AnalysisService"]


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


class AnalysisService:
    """``/api/v1/analysis/*``: from the default chat model when it is remote, else offline
    (:class:`OfflineAnalysis`); ``/analysis/generate`` always from a chat model."""

    def __init__(
        self,
        embeddings: EmbeddingService,
        limits: Limits,
        *,
        generation: GenerationService | None = None,
        use_llm: bool = False,
    ) -> None:
        self.offline = OfflineAnalysis(embeddings, limits)
        self._generation = generation
        self._use_llm = use_llm

    @property
    def generation(self) -> GenerationService:
        """The chat models (absent in an offline-only service built without them)."""
        if self._generation is None:
            raise RuntimeError("this analysis service was built without chat models")
        return self._generation

    @property
    def uses_llm(self) -> bool:
        """Whether analyses come from a remote chat model (``SYNTHSTACK_ANALYSIS_LLM=auto`` and a
        remote provider configured)."""
        return (
            self._use_llm
            and self._generation is not None
            and self._generation.registry.remote_configured
        )

    @operation("analysis-sentiment")
    async def sentiment(self, body: SentimentRequest) -> SentimentResponse:
        """``POST /api/v1/analysis/sentiment``."""
        if not self.uses_llm:
            return await self.offline.sentiment(body)
        answer = await self.generation.ask_json(prompt_for_sentiment(body))
        return parse_llm_sentiment(answer.content, answer.model)

    @operation("analysis-summarize")
    async def summarize(self, body: SummarizeRequest) -> SummarizeResponse:
        """``POST /api/v1/analysis/summarize``."""
        if not self.uses_llm:
            return await self.offline.summarize(body)
        answer = await self.generation.ask_json(prompt_for_summary(body))
        return await anyio.to_thread.run_sync(
            functools.partial(
                parse_llm_summary,
                answer.content,
                answer.model,
                max_words=body.max_length,
                max_sentences=body.max_sentences,
            )
        )

    @operation("analysis-keywords")
    async def keywords(self, body: KeywordsRequest) -> KeywordsResponse:
        """``POST /api/v1/analysis/keywords``."""
        if not self.uses_llm:
            return await self.offline.keywords(body)
        answer = await self.generation.ask_json(prompt_for_keywords(body))
        response = parse_llm_keywords(answer.content, answer.model)
        response.keywords = response.keywords[: body.max_keywords]
        return response

    @operation("analysis-classify")
    async def classify(self, tenant: str, body: ClassifyRequest) -> ClassifyResponse:
        """``POST /api/v1/analysis/classify``."""
        if not self.uses_llm:
            return await self.offline.classify(body, tenant=tenant)
        answer = await self.generation.ask_json(prompt_for_classification(body))
        return parse_llm_classification(answer.content, answer.model, categories=body.categories)

    @operation("analysis-text")
    async def text(self, body: TextAnalysisRequest) -> TextAnalysisResponse:
        """``POST /api/v1/analysis/text``: the requested analyses, concurrently, with counts."""
        if not self.uses_llm:
            return await self.offline.text(body)
        results: dict[str, SentimentResponse | SummarizeResponse | KeywordsResponse] = {}

        async def sentiment() -> None:
            results["sentiment"] = await self.sentiment(SentimentRequest(text=body.text))

        async def summary() -> None:
            results["summary"] = await self.summarize(SummarizeRequest(text=body.text))

        async def keywords() -> None:
            results["keywords"] = await self.keywords(KeywordsRequest(text=body.text))

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
                for name in body.analyses:
                    group.start_soon(run, name)
        except BaseExceptionGroup as failed:
            # An unexpected failure (the others were cancelled): answer with it.
            raise _first_error(failed) from None
        for name in body.analyses:
            if name in refused:
                # The first refused analysis in the request's order answers.
                raise refused[name]
        counts = await self.offline.text(
            TextAnalysisRequest.model_construct(text=body.text, analyses=[])
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

    @operation("analysis-generate")
    async def generate(self, body: AnalysisGenerateRequest) -> AnalysisGenerateResponse:
        """``POST /api/v1/analysis/generate``: text from a prompt and optional context, with the
        default chat model (the local one offline)."""
        prompt = body.prompt
        if body.context:
            prompt = f"Context:\n{body.context}\n\n{body.prompt}"
        completion = await self.generation.complete(
            [ChatMessage("user", prompt)],
            model=body.model,
            max_tokens=body.max_tokens,
            temperature=body.temperature,
        )
        return AnalysisGenerateResponse(
            content=completion.content,
            model=completion.model,
            usage=usage_of(completion),
            finish_reason=completion.finish_reason,
            word_count=len(words(completion.content)),
        )


def build(stack: Stack) -> AnalysisService:
    """Offline analysers, and the chat models unless ``SYNTHSTACK_ANALYSIS_LLM`` says offline."""
    return AnalysisService(
        stack.service(EmbeddingService),
        stack.limits,
        generation=stack.service(GenerationService),
        use_llm=stack.settings.analysis_llm == "auto",
    )


MODULE = Module("analysis", AnalysisService, build)
