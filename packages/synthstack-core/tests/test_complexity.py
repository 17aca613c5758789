"""Task complexity with the real local embedding model and the shipped labelled examples."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from typing import Any

import pytest

from synthstack_core.errors import InvalidRequest, ProviderError
from synthstack_core.features.complexity import (
    DEFAULT_SCALE,
    ComplexityService,
    Neighbour,
    level_from_score,
    load_examples,
    parse_llm_estimate,
    prompt_for_estimate,
)
from synthstack_core.features.embeddings import EmbeddingModelRegistry, EmbeddingService
from synthstack_core.providers.local_onnx import LOCAL_MODEL, LocalOnnxEmbeddingProvider
from synthstack_core.schemas.common import Limits
from synthstack_core.schemas.complexity import (
    ComplexityAdjustmentRequest,
    ComplexityAnalysisRequest,
    ComplexityEstimateRequest,
    ComplexityEstimateResponse,
)
from synthstack_core.stores.cache import MemoryCache
from synthstack_core.validation import validate_data

LIMITS = Limits()


@pytest.fixture(scope="module")
def complexity() -> ComplexityService:
    embeddings = EmbeddingService(
        EmbeddingModelRegistry([LocalOnnxEmbeddingProvider()], LOCAL_MODEL.id),
        MemoryCache(1000),
        limits=LIMITS,
        ttl_seconds=60,
    )
    return ComplexityService(embeddings)


def _estimate_request(**data: Any) -> ComplexityEstimateRequest:
    return validate_data(ComplexityEstimateRequest, data, LIMITS)


def _analysis_request(**data: Any) -> ComplexityAnalysisRequest:
    return validate_data(ComplexityAnalysisRequest, data, LIMITS)


def test_examples_are_shipped_and_balanced() -> None:
    examples = load_examples()
    assert len(examples) >= 120
    counts = Counter(e.level for e in examples)
    assert set(counts) == {1, 2, 3, 4, 5} and min(counts.values()) >= 24
    assert len({e.title for e in examples}) == len(examples)


async def test_typo_fix_is_trivial_or_simple(complexity: ComplexityService) -> None:
    result = await complexity.estimate(
        "test-tenant",
        _estimate_request(
            title="Fix typo in the error message of the signup form",
            description="It says 'pasword' instead of 'password'.",
            issue_type="bug",
            related_files=["src/forms/signup.ts"],
        ),
    )
    assert result.complexity_score in (1, 2)
    info = DEFAULT_SCALE.level(result.complexity_score)
    assert result.complexity_name == info.name and result.estimated_points == info.points
    assert result.estimated_hours == (info.min_hours + info.max_hours) / 2
    assert any("typo" in factor for factor in result.factors)
    assert "typo" in result.reasoning and 0 < result.confidence <= 0.9


async def test_multi_service_migration_is_complex_or_epic(complexity: ComplexityService) -> None:
    result = await complexity.estimate(
        "test-tenant",
        _estimate_request(
            title="Migrate the order, payment and inventory services from RabbitMQ to Kafka",
            description=(
                "Replace the message broker for three services.\n\n"
                "- Topic design and schema registry\n- Producers and consumers in each service\n"
                "- Dual publishing during the switch\n- Replay of in-flight messages\n"
                "- Monitoring of consumer lag\n- Decommission RabbitMQ"
            ),
            issue_type="epic",
            labels=["architecture", "infra"],
            related_files=["services/orders/", "services/payments/", "services/inventory/"],
        ),
    )
    assert result.complexity_score in (4, 5)
    assert len(result.factors) >= 3


async def test_estimate_needs_only_a_title(complexity: ComplexityService) -> None:
    result = await complexity.estimate(
        "test-tenant", _estimate_request(title="Look into the flaky test")
    )
    assert 1 <= result.complexity_score <= 5
    assert any("description" in factor.lower() for factor in result.factors)


async def test_neighbours_come_from_the_examples(complexity: ComplexityService) -> None:
    request = _estimate_request(title="Fix a spelling mistake in the README")
    neighbours = await complexity.neighbours(request, tenant="test-tenant")
    assert len(neighbours) == 7
    assert neighbours[0].similarity >= neighbours[-1].similarity
    assert neighbours[0].example.level <= 2


async def test_scale(complexity: ComplexityService) -> None:
    scale = await complexity.scale()
    assert [(x.level, x.name, x.min_hours, x.max_hours, x.points) for x in scale.levels] == [
        (1, "Trivial", 0.25, 1, 5),
        (2, "Simple", 1, 4, 10),
        (3, "Moderate", 4, 8, 20),
        (4, "Complex", 8, 24, 35),
        (5, "Epic", 24, 80, 50),
    ]


def test_halves_round_up() -> None:
    assert [level_from_score(x) for x in (1.0, 1.49, 1.5, 2.5, 3.5, 4.5, 4.49)] == [
        1,
        1,
        2,
        3,
        4,
        5,
        4,
    ]
    assert level_from_score((2 + 3) / 2) == 3 and level_from_score(0.1 + 0.2 + 2.2) == 3
    assert level_from_score(-3) == 1 and level_from_score(9) == 5


async def test_adjustment_is_consistent_and_monotone(complexity: ComplexityService) -> None:
    table: dict[tuple[int, int], Any] = {}
    for pre, actual in itertools.product(range(1, 6), repeat=2):
        table[pre, actual] = await complexity.adjustment(
            validate_data(
                ComplexityAdjustmentRequest, {"pre_level": pre, "actual_level": actual}, LIMITS
            )
        )
    for (pre, actual), answer in table.items():
        assert answer.bonus_percent == pytest.approx((answer.multiplier - 1) * 100, abs=0.01)
        if pre == actual:
            assert answer.multiplier == 1 and answer.bonus_percent == 0
        elif actual > pre:
            assert answer.multiplier > 1 and "Under-estimated" in answer.reason
        else:
            assert answer.multiplier < 1 and "Over-estimated" in answer.reason
    for level in range(1, 5):
        for other in range(1, 6):
            # More actual work for the same estimate: never less; a higher estimate: never more.
            assert table[other, level + 1].multiplier > table[other, level].multiplier
            assert table[level + 1, other].multiplier < table[level, other].multiplier
    # Under-estimating Simple work that was Complex: half of (35 - 10) points, halves up.
    assert table[2, 4].multiplier == pytest.approx((10 + 13) / 10)


async def test_analyze_without_an_estimate(complexity: ComplexityService) -> None:
    small = await complexity.analyze(
        _analysis_request(lines_added=4, lines_removed=2, files_changed=1)
    )
    assert small.actual_complexity == 1 and small.complexity_name == "Trivial"
    assert small.actual_points == 5
    assert small.accuracy_score is None and small.point_adjustment == 0
    assert small.metrics.lines_changed == 6 and small.metrics.commits_level is None
    big = await complexity.analyze(
        _analysis_request(
            lines_added=2400,
            lines_removed=900,
            files_changed=64,
            commits=40,
            time_to_merge_hours=200,
            review_comments=45,
        )
    )
    assert big.actual_complexity == 5 and big.actual_points == 50


async def test_analyze_with_an_estimate(complexity: ComplexityService) -> None:
    data = {
        "lines_added": 420,
        "lines_removed": 120,
        "files_changed": 12,
        "commits": 9,
        "review_comments": 10,
        "time_to_merge_hours": 30,
        "pr_description": "Adds webhooks with retries.",
    }
    plain = await complexity.analyze(_analysis_request(**data))
    actual = plain.actual_complexity
    assert actual in (3, 4)
    exact = await complexity.analyze(_analysis_request(**data, pre_complexity_score=actual))
    assert exact.accuracy_score == 1 and exact.point_adjustment == 0
    under = await complexity.analyze(
        _analysis_request(**data, pre_complexity_score=1, pre_reasoning="Looks easy")
    )
    assert under.accuracy_score == pytest.approx(1 - (actual - 1) / 4)
    assert under.point_adjustment > 0 and "Under-estimated" in under.adjustment_reason
    adjustment = await complexity.adjustment(
        ComplexityAdjustmentRequest(pre_level=1, actual_level=actual)
    )
    assert 5 * adjustment.multiplier == pytest.approx(5 + under.point_adjustment)
    by_hours = await complexity.analyze(_analysis_request(**data, pre_estimated_hours=60.0))
    assert by_hours.point_adjustment < 0 and "Over-estimated" in by_hours.adjustment_reason


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (ComplexityEstimateRequest, {"title": ""}, "title"),
        (ComplexityEstimateRequest, {"title": "x", "labels": "bug"}, "labels"),
        (
            ComplexityAnalysisRequest,
            {"lines_added": -1, "lines_removed": 0, "files_changed": 0},
            "lines_added",
        ),
        (
            ComplexityAnalysisRequest,
            {"lines_added": 1, "lines_removed": 0, "files_changed": 1, "pre_complexity_score": 6},
            "pre_complexity_score",
        ),
        (ComplexityAdjustmentRequest, {"pre_level": 0, "actual_level": 3}, "pre_level"),
    ],
)
def test_invalid_requests(model: Any, data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_data(model, data, LIMITS)
    assert any(e.loc[0] == field for e in caught.value.errors)


def test_blank_description_is_no_description() -> None:
    request = _estimate_request(title="x", description="  ", milestone="")
    assert request.description is None and request.milestone is None


# --- The LLM refinement -------------------------------------------------------------------------


def _offline() -> ComplexityEstimateResponse:
    return ComplexityEstimateResponse(
        complexity_score=2,
        complexity_name="Simple",
        estimated_hours=2.5,
        estimated_points=10,
        factors=["A short description (9 words): little to specify"],
        reasoning="Simple.",
        confidence=0.7,
    )


def test_prompt_for_estimate_lists_scale_and_neighbours() -> None:
    request = _estimate_request(title="Add CSV export", labels=["backend"])
    example = load_examples()[0]
    messages = prompt_for_estimate(request, [Neighbour(example, 0.8)])
    assert [role for role, _ in messages] == ["system", "user"]
    assert "Epic: 24-80 hours" in messages[0][1] and "JSON" in messages[0][1]
    assert example.title in messages[1][1] and "Add CSV export" in messages[1][1]


def test_parse_llm_estimate_good() -> None:
    content = json.dumps(
        {"complexity_score": 3, "factors": ["Needs a migration"], "reasoning": "Touches the DB."}
    )
    result = parse_llm_estimate(content, _offline())
    assert (result.complexity_score, result.complexity_name, result.estimated_points) == (
        3,
        "Moderate",
        20,
    )
    assert result.estimated_hours == 6 and result.factors == ["Needs a migration"]
    assert result.confidence == pytest.approx(0.7 - 0.15)
    fenced = parse_llm_estimate(
        '```json\n{"complexity_score": 2.0, "reasoning": "Small.", "confidence": 0.8}\n```',
        _offline(),
    )
    assert fenced.complexity_score == 2 and fenced.confidence == 0.8
    assert fenced.factors == _offline().factors


@pytest.mark.parametrize(
    "content",
    [
        "It is probably moderate.",
        '{"complexity_score": 7, "reasoning": "Huge."}',
        '{"complexity_score": "three", "reasoning": "x"}',
        '{"complexity_score": 3}',
        '{"complexity_score": 3, "reasoning": "   "}',
        '{"complexity_score": 3, "reasoning": "x", "confidence": 1.5}',
    ],
)
def test_parse_llm_estimate_bad(content: str) -> None:
    with pytest.raises(ProviderError):
        parse_llm_estimate(content, _offline())
