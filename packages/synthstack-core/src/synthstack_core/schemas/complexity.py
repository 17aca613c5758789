"""Models of task complexity: estimate a task, analyse a merged change, the scale and adjustments.

Field names and shapes are those of the existing gateway (snake_case).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from synthstack_core.schemas.common import AS_INTEGER, RequestModel, ResponseModel, Text

__all__ = [
    "ComplexityAdjustmentRequest",
    "ComplexityAdjustmentResponse",
    "ComplexityAnalysisRequest",
    "ComplexityAnalysisResponse",
    "ComplexityEstimateRequest",
    "ComplexityEstimateResponse",
    "ComplexityLevel",
    "ComplexityLevelInfo",
    "ComplexityScaleResponse",
    "PullRequestMetrics",
]


def _blank_is_none(value: Any) -> Any:
    # The gateway sends "" for a field left empty in its form: that is no value, not an error.
    if isinstance(value, str) and not value.strip():
        return None
    return value


#: "" (or only blanks): the gateway's way of leaving a field empty, taken as absent.
Blank = Literal[""]

#: A level of the scale: 1 (Trivial) to 5 (Epic).
ComplexityLevel = Annotated[int, Field(ge=1, le=5), AS_INTEGER]
ShortText = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]
Count = Annotated[int, Field(ge=0, le=1_000_000_000), AS_INTEGER]
Hours = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1)]


class ComplexityEstimateRequest(RequestModel):
    """A task to estimate before the work starts."""

    title: ShortText
    description: Text | Blank | None = None
    issue_type: Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[^\x00]*$")] = "task"
    labels: Annotated[list[ShortText], Field(max_length=50)] | None = None
    milestone: ShortText | Blank | None = None
    project_context: Text | Blank | None = None
    related_files: Annotated[list[ShortText], Field(max_length=1000)] | None = None

    _blank_text = field_validator("description", "milestone", "project_context", mode="before")(
        _blank_is_none
    )


class ComplexityEstimateResponse(ResponseModel):
    """The estimated level, what it is worth, and why."""

    complexity_score: ComplexityLevel
    complexity_name: str
    estimated_hours: float = Field(ge=0, description="The midpoint of the level's hour range.")
    estimated_points: int = Field(ge=0)
    factors: list[str] = Field(description="The signals that moved the estimate, in words.")
    reasoning: str
    confidence: Probability


class ComplexityAnalysisRequest(RequestModel):
    """A merged change, and optionally the estimate made before the work."""

    lines_added: Count
    lines_removed: Count
    files_changed: Count
    commits: Count | None = None
    time_to_merge_hours: Hours | None = None
    review_comments: Count | None = None
    pr_description: Text | Blank | None = None
    pre_complexity_score: ComplexityLevel | None = None
    pre_estimated_hours: Hours | None = None
    pre_reasoning: Text | Blank | None = None

    _blank_text = field_validator("pr_description", "pre_reasoning", mode="before")(_blank_is_none)


class PullRequestMetrics(ResponseModel):
    """The change's numbers and the level each signal points to (1.0-5.0, before rounding)."""

    lines_added: int
    lines_removed: int
    lines_changed: int
    files_changed: int
    commits: int | None
    review_comments: int | None
    time_to_merge_hours: float | None
    size_level: float
    files_level: float
    commits_level: float | None
    review_level: float | None
    time_level: float | None
    computed_level: float = Field(description="The weighted mean of the signal levels.")


class ComplexityAnalysisResponse(ResponseModel):
    """The level the change turned out to be, and how it compares with the estimate."""

    actual_complexity: ComplexityLevel
    complexity_name: str
    actual_points: int = Field(ge=0)
    metrics: PullRequestMetrics
    accuracy_score: Probability | None = Field(
        description="1 when the estimate had the actual level, 0 when it was four levels off; "
        "null without an estimate."
    )
    point_adjustment: int = Field(
        description="Points added to (or, when negative, taken from) the estimate's points."
    )
    adjustment_reason: str
    analysis: str


class ComplexityLevelInfo(ResponseModel):
    """One level of the scale."""

    level: ComplexityLevel
    name: str
    min_hours: float = Field(ge=0)
    max_hours: float = Field(gt=0)
    points: int = Field(ge=1)


class ComplexityScaleResponse(ResponseModel):
    """The five levels, from Trivial to Epic."""

    levels: list[ComplexityLevelInfo]


class ComplexityAdjustmentRequest(RequestModel):
    """The level estimated before the work and the level it turned out to be."""

    pre_level: ComplexityLevel
    actual_level: ComplexityLevel


class ComplexityAdjustmentResponse(ResponseModel):
    """How the estimate's points change: ``points(pre_level) * multiplier`` is awarded."""

    multiplier: float = Field(ge=0)
    bonus_percent: float = Field(description="(multiplier - 1) * 100; negative is a reduction.")
    reason: str
