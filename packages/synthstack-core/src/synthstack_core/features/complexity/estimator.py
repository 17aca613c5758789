"""Task-complexity estimates before the work: the scale, the labelled examples, the signals and
the nearest-examples estimator (see :mod:`synthstack_core.features.complexity`)."""

from __future__ import annotations

import importlib.resources
import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from synthstack_core.schemas.complexity import (
    ComplexityEstimateRequest,
    ComplexityEstimateResponse,
    ComplexityLevelInfo,
)

__all__ = [
    "DEFAULT_SCALE",
    "ComplexityEstimator",
    "ComplexityExample",
    "ComplexityScale",
    "Neighbour",
    "Signal",
    "level_from_score",
    "load_examples",
    "round_half_up",
    "task_signals",
    "task_text",
]

K_NEIGHBOURS = 7
NEIGHBOUR_TEMPERATURE = 0.1
NEIGHBOUR_WEIGHT = 0.6
NEUTRAL_LEVEL = 3.0
MAX_CONFIDENCE = 0.9


def level_from_score(score: float) -> int:
    """The level of a computed score: halves round up (2.5 is 3), clipped to 1..5."""
    # Round away float noise first, so that 2.4999999999 (a mean that is 2.5) is a half.
    return min(5, max(1, math.floor(round(score, 6) + 0.5)))


def round_half_up(value: float) -> int:
    return math.floor(round(value, 6) + 0.5)


class ComplexityScale(BaseModel):
    """The five levels (name, hour range, points) and how far adjustments move towards actuals."""

    model_config = ConfigDict(frozen=True)

    levels: tuple[ComplexityLevelInfo, ...]
    adjustment_share: float = Field(0.5, gt=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> ComplexityScale:
        if [level.level for level in self.levels] != [1, 2, 3, 4, 5]:
            raise ValueError("the scale must list levels 1 to 5, in order")
        for lower, upper in itertools.pairwise(self.levels):
            if upper.points <= lower.points or upper.min_hours < lower.max_hours - 1e-9:
                raise ValueError("points and hour ranges must grow with the level")
        if any(level.min_hours >= level.max_hours for level in self.levels):
            raise ValueError("each hour range must have min_hours < max_hours")
        return self

    def level(self, level: int) -> ComplexityLevelInfo:
        """The description of ``level`` (1-5)."""
        return self.levels[level - 1]

    def hours(self, level: int) -> float:
        """The estimated hours of ``level``: the midpoint of its range."""
        info = self.level(level)
        return round((info.min_hours + info.max_hours) / 2, 4)

    def level_for_hours(self, hours: float) -> int:
        """The level whose range holds ``hours`` (a boundary belongs to the lower level)."""
        for info in self.levels:
            if hours <= info.max_hours:
                return info.level
        return 5


DEFAULT_SCALE = ComplexityScale(
    levels=(
        ComplexityLevelInfo(level=1, name="Trivial", min_hours=0.25, max_hours=1, points=5),
        ComplexityLevelInfo(level=2, name="Simple", min_hours=1, max_hours=4, points=10),
        ComplexityLevelInfo(level=3, name="Moderate", min_hours=4, max_hours=8, points=20),
        ComplexityLevelInfo(level=4, name="Complex", min_hours=8, max_hours=24, points=35),
        ComplexityLevelInfo(level=5, name="Epic", min_hours=24, max_hours=80, points=50),
    )
)


# --- The labelled examples ----------------------------------------------------------------------


@dataclass(frozen=True)
class ComplexityExample:
    """A labelled task: what it said and the level it was."""

    title: str
    description: str
    issue_type: str
    labels: tuple[str, ...]
    related_files: tuple[str, ...]
    level: int

    def as_request(self) -> ComplexityEstimateRequest:
        """The example as an estimate request."""
        return ComplexityEstimateRequest.model_construct(
            title=self.title,
            description=self.description or None,
            issue_type=self.issue_type,
            labels=list(self.labels),
            milestone=None,
            project_context=None,
            related_files=list(self.related_files),
        )


def load_examples() -> list[ComplexityExample]:
    """The labelled examples shipped in the package (``data/complexity_examples.jsonl``)."""
    resource = importlib.resources.files("synthstack_core").joinpath(
        "data/complexity_examples.jsonl"
    )
    examples = []
    for line in resource.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row: dict[str, Any] = json.loads(line)
            examples.append(
                ComplexityExample(
                    title=row["title"],
                    description=row.get("description", ""),
                    issue_type=row.get("issue_type", "task"),
                    labels=tuple(row.get("labels", ())),
                    related_files=tuple(row.get("related_files", ())),
                    level=int(row["level"]),
                )
            )
    return examples


def task_text(request: ComplexityEstimateRequest) -> str:
    """The text of a task that is embedded to find its neighbours."""
    parts = [request.title, f"Type: {request.issue_type}"]
    if request.labels:
        parts.append("Labels: " + ", ".join(request.labels))
    if request.description:
        parts.append(request.description)
    return "\n".join(parts)


# --- Signals ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signal:
    """An explainable rule that fired: how far it moves the level, and why, in words."""

    shift: float
    factor: str


def _phrases(*words: str) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(words) + r")\b", re.IGNORECASE)


# Scope words, strongest group first within each direction; only the strongest group found counts.
_SCOPE: tuple[tuple[float, str, re.Pattern[str]], ...] = (
    (
        1.5,
        "scope words of large, cross-cutting work",
        _phrases(
            r"migrat(?:e|ion) (?:all|the|from|to|everything)\w*",
            r"rewrite",
            r"re-?architect\w*",
            r"architecture",
            r"overhaul",
            r"multi-region",
            r"multi-tenant",
            r"shard\w*",
            r"microservices?",
            r"monolith",
            r"zero[- ]downtime",
            r"across (?:all|every) \w+",
            r"platform",
            r"from scratch",
        ),
    ),
    (
        0.75,
        "scope words of substantial work",
        _phrases(
            r"refactor\w*",
            r"integrat\w+",
            r"pipeline",
            r"sso",
            r"saml",
            r"oauth",
            r"encrypt\w*",
            r"concurren\w+",
            r"race",
            r"real-?time",
            r"websockets?",
            r"permissions?",
            r"billing",
            r"replace",
            r"terraform",
            r"autoscal\w*",
            r"upgrade \w+ from",
        ),
    ),
    (
        -1.5,
        "scope words of a trivial change",
        _phrases(
            r"typo",
            r"spelling",
            r"misspel\w*",
            r"rename",
            r"wording",
            r"bump",
            r"pin",
            r"placeholder",
            r"alt text",
            r"\.gitignore",
            r"codeowners",
            r"colou?r",
            r"padding",
            r"copyright",
            r"broken link",
            r"one-line",
        ),
    ),
    (
        -0.75,
        "scope words of a small, local change",
        _phrases(
            r"toggle",
            r"button",
            r"tooltip",
            r"shortcut",
            r"empty state",
            r"healthcheck",
            r"debounce",
            r"add an index",
            r"add a column",
            r"filter",
        ),
    ),
)

_ISSUE_TYPES = {
    "epic": (1.0, "the issue type 'epic' spans several pieces of work"),
    "feature": (0.25, "a new feature usually touches several layers"),
    "story": (0.25, "a user story usually touches several layers"),
    "chore": (-0.25, "a chore is usually routine"),
    "docs": (-0.25, "documentation work is usually contained"),
    "documentation": (-0.25, "documentation work is usually contained"),
}
_SMALL_LABELS = frozenset({"good first issue", "trivial", "easy", "typo", "copy", "quick-win"})
_LARGE_LABELS = frozenset(
    {"epic", "architecture", "migration", "breaking-change", "critical", "data-loss", "rewrite"}
)
_CHECKLIST_ITEM = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)]|\[[ xX]\])\s+\S", re.MULTILINE)
_WORD = re.compile(r"\w+")


def task_signals(request: ComplexityEstimateRequest) -> list[Signal]:
    """The rules that fire for a task, each with its shift from Moderate and its reason."""
    signals: list[Signal] = []
    text = f"{request.title}\n{request.description or ''}"
    found_up: tuple[float, str, list[str]] | None = None
    found_down: tuple[float, str, list[str]] | None = None
    for shift, reason, pattern in _SCOPE:
        matches = sorted({m.group(0).lower() for m in pattern.finditer(text)})
        if not matches:
            continue
        if shift > 0 and found_up is None:
            found_up = (shift, reason, matches)
        if shift < 0 and found_down is None:
            found_down = (shift, reason, matches)
    for found in (found_up, found_down):
        if found is not None:
            shift, reason, matches = found
            signals.append(Signal(shift, f"{reason.capitalize()}: {', '.join(matches[:4])}"))

    kind = request.issue_type.strip().lower()
    if kind in _ISSUE_TYPES:
        shift, reason = _ISSUE_TYPES[kind]
        signals.append(Signal(shift, reason[0].upper() + reason[1:]))

    description = request.description or ""
    word_count = len(_WORD.findall(description))
    if word_count < 20:
        what = "No description" if word_count == 0 else f"A short description ({word_count} words)"
        signals.append(Signal(-0.5, f"{what}: little to specify"))
    elif word_count > 120:
        signals.append(Signal(0.5, f"A long description ({word_count} words)"))
    elif word_count > 60:
        signals.append(Signal(0.25, f"A detailed description ({word_count} words)"))

    items = len(_CHECKLIST_ITEM.findall(description))
    if items >= 6:
        signals.append(Signal(0.5, f"{items} checklist items"))
    elif items >= 3:
        signals.append(Signal(0.25, f"{items} checklist items"))

    files = request.related_files or []
    folders = sum(1 for f in files if f.endswith("/"))
    weight = len(files) - folders + 3 * folders
    if files:
        where = f"{len(files)} related file{'s' if len(files) > 1 else ''}"
        if folders:
            where += f" ({folders} whole folder{'s' if folders > 1 else ''})"
        if weight == 1:
            signals.append(Signal(-0.5, "A single related file"))
        elif weight >= 6:
            signals.append(Signal(0.5, f"{where}: a wide change"))
        elif weight >= 4:
            signals.append(Signal(0.25, where))

    labels = {label.strip().lower() for label in request.labels or []}
    if small := sorted(labels & _SMALL_LABELS):
        signals.append(Signal(-0.5, f"Label {', '.join(repr(x) for x in small)}"))
    if large := sorted(labels & _LARGE_LABELS):
        signals.append(Signal(0.5, f"Label {', '.join(repr(x) for x in large)}"))
    return signals


# --- The estimator ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Neighbour:
    """A labelled example close to the task, with its cosine similarity."""

    example: ComplexityExample
    similarity: float


@dataclass(frozen=True)
class _Estimate:
    computed: float
    signal_level: float
    neighbour_level: float | None
    neighbours: list[Neighbour]
    signals: list[Signal]
    confidence: float


class ComplexityEstimator:
    """Signals plus the nearest labelled examples, over vectors computed beforehand.

    ``vectors`` holds one unit vector per example (same order). A held-out evaluation builds an
    estimator from the training examples only (``bench/complexity_accuracy.py``).
    """

    def __init__(
        self,
        examples: Sequence[ComplexityExample],
        vectors: npt.NDArray[np.float32],
        scale: ComplexityScale = DEFAULT_SCALE,
        *,
        k: int = K_NEIGHBOURS,
        neighbour_weight: float = NEIGHBOUR_WEIGHT,
    ) -> None:
        if len(examples) != len(vectors):
            raise ValueError("one vector per example is needed")
        self.examples = list(examples)
        self._vectors = np.asarray(vectors, dtype=np.float32)
        self._levels = np.array([e.level for e in self.examples], dtype=np.float64)
        self.scale = scale
        self._k = k
        self._neighbour_weight = neighbour_weight

    def neighbours(self, vector: npt.NDArray[np.float32]) -> list[Neighbour]:
        """The ``k`` examples most similar to ``vector``, most similar first."""
        if not self.examples:
            return []
        similarities = self._vectors @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-similarities, kind="stable")[: self._k]
        return [Neighbour(self.examples[i], float(similarities[i])) for i in order]

    def _estimate(
        self, request: ComplexityEstimateRequest, vector: npt.NDArray[np.float32]
    ) -> _Estimate:
        signals = task_signals(request)
        shift = max(-2.5, min(2.5, sum(s.shift for s in signals)))
        signal_level = max(1.0, min(5.0, NEUTRAL_LEVEL + shift))
        neighbours = self.neighbours(vector)
        if not neighbours or self._neighbour_weight == 0:
            return _Estimate(signal_level, signal_level, None, neighbours, signals, 0.35)
        sims = np.array([n.similarity for n in neighbours])
        weights = np.exp((sims - sims.max()) / NEIGHBOUR_TEMPERATURE)
        weights /= weights.sum()
        levels = np.array([n.example.level for n in neighbours], dtype=np.float64)
        neighbour_level = float(weights @ levels)
        spread = math.sqrt(float(weights @ (levels - neighbour_level) ** 2))
        w = self._neighbour_weight
        computed = w * neighbour_level + (1 - w) * signal_level
        neighbour_agreement = 1 - min(1.0, spread / 1.5)
        signal_agreement = 1 - min(1.0, abs(neighbour_level - signal_level) / 2)
        confidence = min(MAX_CONFIDENCE, 0.2 + 0.35 * neighbour_agreement + 0.35 * signal_agreement)
        return _Estimate(computed, signal_level, neighbour_level, neighbours, signals, confidence)

    def estimate(
        self, request: ComplexityEstimateRequest, vector: npt.NDArray[np.float32]
    ) -> ComplexityEstimateResponse:
        """The estimate of a task whose :func:`task_text` embeds to ``vector``."""
        found = self._estimate(request, vector)
        level = level_from_score(found.computed)
        info = self.scale.level(level)
        factors = [s.factor for s in found.signals]
        if found.neighbour_level is not None:
            closest = ", ".join(
                f"'{n.example.title}' ({self.scale.level(n.example.level).name})"
                for n in found.neighbours[:3]
            )
            factors.append(
                f"Similar past tasks average level {found.neighbour_level:.1f}, "
                f"the closest being {closest}"
            )
        hours = self.scale.hours(level)
        reasoning = (
            f"{info.name} (level {level}, about {hours:g} h; computed {found.computed:.2f}): "
            + "; ".join(f[0].lower() + f[1:] for f in factors)
            + "."
            if factors
            else f"{info.name} (level {level}): nothing in the task points away from it."
        )
        return ComplexityEstimateResponse(
            complexity_score=level,
            complexity_name=info.name,
            estimated_hours=hours,
            estimated_points=info.points,
            factors=factors,
            reasoning=reasoning,
            confidence=round(found.confidence, 4),
        )
