"""The complexity service: estimates (refined by a chat model when one is remote), analysis of a
merged change, the scale and point adjustments."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import anyio
import anyio.to_thread
import numpy as np
import numpy.typing as npt
from pydantic import Field

from synthstack_core.errors import ProviderError
from synthstack_core.features.complexity.estimator import (
    DEFAULT_SCALE,
    ComplexityEstimator,
    ComplexityScale,
    Neighbour,
    level_from_score,
    load_examples,
    round_half_up,
    task_text,
)
from synthstack_core.features.embeddings import EmbeddingService
from synthstack_core.features.generation import GenerationService
from synthstack_core.features.llm_output import PromptMessage, json_object, validated
from synthstack_core.registry import Module, Stack, operation
from synthstack_core.schemas.common import ResponseModel
from synthstack_core.schemas.complexity import (
    ComplexityAdjustmentRequest,
    ComplexityAdjustmentResponse,
    ComplexityAnalysisRequest,
    ComplexityAnalysisResponse,
    ComplexityEstimateRequest,
    ComplexityEstimateResponse,
    ComplexityLevel,
    ComplexityScaleResponse,
    PullRequestMetrics,
)

__all__ = ["MODULE", "ComplexityService", "parse_llm_estimate", "prompt_for_estimate"]

# --- Analysis of a merged change ----------------------------------------------------------------

# (value, level) anchors; between two anchors the level is linear in log(1 + value).
_LINES = ((10, 1.0), (50, 2.0), (200, 3.0), (600, 4.0), (1500, 5.0))
_FILES = ((1, 1.0), (3, 2.0), (8, 3.0), (20, 4.0), (50, 5.0))
_COMMITS = ((1, 1.0), (3, 2.0), (6, 3.0), (12, 4.0), (25, 5.0))
_REVIEWS = ((0, 1.0), (3, 2.0), (8, 3.0), (15, 4.0), (30, 5.0))
_MERGE_HOURS = ((2, 1.0), (8, 2.0), (24, 3.0), (72, 4.0), (168, 5.0))
_WEIGHTS = {"size": 0.45, "files": 0.25, "commits": 0.1, "review": 0.1, "time": 0.1}


def _level_on(value: float, anchors: tuple[tuple[float, float], ...]) -> float:
    if value <= anchors[0][0]:
        return anchors[0][1]
    for (low, low_level), (high, high_level) in itertools.pairwise(anchors):
        if value <= high:
            span = math.log1p(high) - math.log1p(low)
            return (
                low_level + (high_level - low_level) * (math.log1p(value) - math.log1p(low)) / span
            )
    return anchors[-1][1]


def _adjust(scale: ComplexityScale, pre: int, actual: int) -> tuple[int, float, float]:
    pre_points = scale.level(pre).points
    adjustment = round_half_up(scale.adjustment_share * (scale.level(actual).points - pre_points))
    multiplier = (pre_points + adjustment) / pre_points
    return adjustment, round(multiplier, 4), round((multiplier - 1) * 100, 2)


def _adjustment_reason(scale: ComplexityScale, pre: int, actual: int, adjustment: int) -> str:
    pre_name, actual_name = scale.level(pre).name, scale.level(actual).name
    if pre == actual:
        return f"Estimated right ({actual_name}): the estimate's points stand."
    steps = abs(actual - pre)
    levels = f"{steps} level{'s' if steps > 1 else ''}"
    share = f"{scale.adjustment_share:.0%}"
    if actual > pre:
        return (
            f"Under-estimated by {levels} ({pre_name} -> {actual_name}): {share} of the "
            f"difference in points is added ({adjustment:+d} points)."
        )
    return (
        f"Over-estimated by {levels} ({pre_name} -> {actual_name}): {share} of the "
        f"difference in points is taken off ({adjustment:+d} points)."
    )


# --- The service --------------------------------------------------------------------------------


class ComplexityService:
    """Estimates, change analysis, the scale and point adjustments."""

    def __init__(
        self,
        embeddings: EmbeddingService,
        scale: ComplexityScale = DEFAULT_SCALE,
        *,
        embedding_model: str | None = None,
        generation: GenerationService | None = None,
        use_llm: bool = False,
    ) -> None:
        self._embeddings = embeddings
        self._scale = scale
        self._generation = generation
        self._use_llm = use_llm
        self._model = embedding_model
        self._estimator: ComplexityEstimator | None = None
        self._lock = anyio.Lock()

    async def estimator(self) -> ComplexityEstimator:
        """The estimator over every labelled example, embedded once on first use."""
        async with self._lock:
            if self._estimator is None:
                examples = await anyio.to_thread.run_sync(load_examples)
                texts = [task_text(e.as_request()) for e in examples]
                # The labelled examples are the service's own texts, not a tenant's.
                result = await self._embeddings.embed(texts, tenant=None, model=self._model)
                self._estimator = ComplexityEstimator(examples, result.vectors, self._scale)
            return self._estimator

    async def _vector(
        self, request: ComplexityEstimateRequest, tenant: str
    ) -> npt.NDArray[np.float32]:
        result = await self._embeddings.embed(
            [task_text(request)], tenant=tenant, model=self._model
        )
        vector: npt.NDArray[np.float32] = result.vectors[0]
        return vector

    async def neighbours(
        self, request: ComplexityEstimateRequest, *, tenant: str
    ) -> list[Neighbour]:
        """The labelled examples closest to ``tenant``'s task (for :func:`prompt_for_estimate`)."""
        estimator = await self.estimator()
        return estimator.neighbours(await self._vector(request, tenant))

    @property
    def uses_llm(self) -> bool:
        """Whether estimates are refined by a remote chat model (``SYNTHSTACK_ANALYSIS_LLM=auto``
        and a remote provider configured)."""
        return (
            self._use_llm
            and self._generation is not None
            and self._generation.registry.remote_configured
        )

    async def estimate_offline(
        self, request: ComplexityEstimateRequest, *, tenant: str
    ) -> ComplexityEstimateResponse:
        """Estimate ``tenant``'s task offline: signals plus nearest labelled examples."""
        estimator = await self.estimator()
        return estimator.estimate(request, await self._vector(request, tenant))

    @operation("complexity-estimate")
    async def estimate(
        self, tenant: str, body: ComplexityEstimateRequest
    ) -> ComplexityEstimateResponse:
        """``POST /api/v1/complexity/estimate``: offline, refined by the chat model if remote."""
        offline = await self.estimate_offline(body, tenant=tenant)
        if self._generation is None or not self.uses_llm:
            return offline
        neighbours = await self.neighbours(body, tenant=tenant)
        answer = await self._generation.ask_json(prompt_for_estimate(body, neighbours, self._scale))
        return parse_llm_estimate(answer.content, offline, self._scale)

    @operation("complexity-analyze")
    async def analyze(self, body: ComplexityAnalysisRequest) -> ComplexityAnalysisResponse:
        """The level a merged change turned out to be, and the settlement with its estimate."""
        scale = self._scale
        effective_lines = body.lines_added + body.lines_removed / 2
        levels: dict[str, float | None] = {
            "size": _level_on(effective_lines, _LINES),
            "files": _level_on(body.files_changed, _FILES),
            "commits": None if body.commits is None else _level_on(body.commits, _COMMITS),
            "review": None
            if body.review_comments is None
            else _level_on(body.review_comments, _REVIEWS),
            "time": None
            if body.time_to_merge_hours is None
            else _level_on(body.time_to_merge_hours, _MERGE_HOURS),
        }
        present = {name: value for name, value in levels.items() if value is not None}
        total = sum(_WEIGHTS[name] for name in present)
        computed = sum(_WEIGHTS[name] * value for name, value in present.items()) / total
        actual = level_from_score(computed)
        info = scale.level(actual)
        metrics = PullRequestMetrics(
            lines_added=body.lines_added,
            lines_removed=body.lines_removed,
            lines_changed=body.lines_added + body.lines_removed,
            files_changed=body.files_changed,
            commits=body.commits,
            review_comments=body.review_comments,
            time_to_merge_hours=body.time_to_merge_hours,
            size_level=round(present["size"], 3),
            files_level=round(present["files"], 3),
            commits_level=_rounded(levels["commits"]),
            review_level=_rounded(levels["review"]),
            time_level=_rounded(levels["time"]),
            computed_level=round(computed, 3),
        )
        pre = body.pre_complexity_score
        if pre is None and body.pre_estimated_hours is not None:
            pre = scale.level_for_hours(body.pre_estimated_hours)
        summary = (
            f"The change adds {body.lines_added} and removes {body.lines_removed} lines "
            f"in {body.files_changed} file{'s' if body.files_changed != 1 else ''}; "
            "its signals (" + ", ".join(f"{n} {v:.1f}" for n, v in present.items()) + ") "
            f"average {computed:.2f}: {info.name} (level {actual})."
        )
        if pre is None:
            return ComplexityAnalysisResponse(
                actual_complexity=actual,
                complexity_name=info.name,
                actual_points=info.points,
                metrics=metrics,
                accuracy_score=None,
                point_adjustment=0,
                adjustment_reason="No estimate was given: nothing to adjust.",
                analysis=summary,
            )
        adjustment, _, _ = _adjust(scale, pre, actual)
        accuracy = round(1 - abs(pre - actual) / 4, 4)
        estimated = f" It was estimated {scale.level(pre).name} (level {pre})"
        estimated += "." if pre == actual else f", {abs(pre - actual)} level(s) off."
        return ComplexityAnalysisResponse(
            actual_complexity=actual,
            complexity_name=info.name,
            actual_points=info.points,
            metrics=metrics,
            accuracy_score=accuracy,
            point_adjustment=adjustment,
            adjustment_reason=_adjustment_reason(scale, pre, actual, adjustment),
            analysis=summary + estimated,
        )

    @operation("complexity-scale")
    async def scale(self) -> ComplexityScaleResponse:
        """The five levels of the scale."""
        return ComplexityScaleResponse(levels=list(self._scale.levels))

    @operation("complexity-adjustment")
    async def adjustment(self, body: ComplexityAdjustmentRequest) -> ComplexityAdjustmentResponse:
        """How an estimate's points change once the actual level is known (rule: module doc)."""
        adjustment, multiplier, bonus = _adjust(self._scale, body.pre_level, body.actual_level)
        return ComplexityAdjustmentResponse(
            multiplier=multiplier,
            bonus_percent=bonus,
            reason=_adjustment_reason(self._scale, body.pre_level, body.actual_level, adjustment),
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --- The LLM refinement: prompt and the checking of answers -------------------------------------


def prompt_for_estimate(
    request: ComplexityEstimateRequest,
    neighbours: Sequence[Neighbour],
    scale: ComplexityScale = DEFAULT_SCALE,
) -> list[PromptMessage]:
    """A prompt asking a chat model to estimate a task, given the scale and similar past tasks."""
    levels = "\n".join(
        f"{i.level} {i.name}: {i.min_hours:g}-{i.max_hours:g} hours" for i in scale.levels
    )
    examples = "\n".join(
        f"- {n.example.title} -> level {n.example.level} ({scale.level(n.example.level).name})"
        for n in neighbours
    )
    task = [f"Title: {request.title}", f"Type: {request.issue_type}"]
    if request.labels:
        task.append("Labels: " + ", ".join(request.labels))
    if request.milestone:
        task.append(f"Milestone: {request.milestone}")
    if request.related_files:
        task.append("Related files: " + ", ".join(request.related_files[:50]))
    if request.project_context:
        task.append(f"Project context: {request.project_context}")
    if request.description:
        task.append(f"Description:\n{request.description}")
    return [
        (
            "system",
            "You estimate the complexity of software tasks on this scale:\n"
            + levels
            + "\nAnswer with one JSON object and nothing else. Keys: "
            '"complexity_score": an integer from 1 to 5; "factors": a list of short reasons; '
            '"reasoning": one or two sentences; "confidence": 0 to 1.',
        ),
        (
            "user",
            ("Similar past tasks and their levels:\n" + examples + "\n\n" if examples else "")
            + "Task:\n"
            + "\n".join(task),
        ),
    ]


class _LLMEstimate(ResponseModel):
    complexity_score: ComplexityLevel
    factors: list[str] | None = None
    reasoning: str = Field(min_length=1)
    confidence: float | None = Field(None, ge=0, le=1)


def parse_llm_estimate(
    content: str,
    offline_estimate: ComplexityEstimateResponse,
    scale: ComplexityScale = DEFAULT_SCALE,
) -> ComplexityEstimateResponse:
    """A chat model's answer to :func:`prompt_for_estimate`, checked and put on the scale.

    The level, factors and reasoning come from the model; name, hours and points from the scale.
    Without its own confidence the offline one is used; either loses 0.15 for each level the
    model's answer is away from the offline estimate.
    """
    data = json_object(content, what="estimate")
    answer = validated(_LLMEstimate, data, what="estimate")
    if not answer.reasoning.strip():
        raise ProviderError("The language model's estimate has no reasoning.")
    level = answer.complexity_score
    info = scale.level(level)
    confidence = answer.confidence if answer.confidence is not None else offline_estimate.confidence
    distance = abs(level - offline_estimate.complexity_score)
    return ComplexityEstimateResponse(
        complexity_score=level,
        complexity_name=info.name,
        estimated_hours=scale.hours(level),
        estimated_points=info.points,
        factors=[f for f in (answer.factors or []) if f.strip()] or offline_estimate.factors,
        reasoning=answer.reasoning.strip(),
        confidence=round(max(0.0, confidence - 0.15 * distance), 4),
    )


def build(stack: Stack) -> ComplexityService:
    """The default scale; the chat model refines estimates unless analyses are set offline."""
    return ComplexityService(
        stack.service(EmbeddingService),
        DEFAULT_SCALE,
        generation=stack.service(GenerationService),
        use_llm=stack.settings.analysis_llm == "auto",
    )


MODULE = Module("complexity", ComplexityService, build)
