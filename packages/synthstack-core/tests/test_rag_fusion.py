"""Hybrid search's fusion of the lexical and dense rankings (``min_max_fusion``)."""

from __future__ import annotations

import uuid

import pytest

from synthstack_core.features.rag.retrieval import (
    HYBRID_LEXICAL_WEIGHT,
    min_max_fusion,
    reciprocal_rank_fusion,
)
from synthstack_core.stores.rag import ScoredChunk

IDS = {name: uuid.UUID(int=number + 1) for number, name in enumerate("abcdef")}


def _chunk(name: str, score: float) -> ScoredChunk:
    return ScoredChunk(IDS[name], f"doc-{name}", name, "test", {}, 0, 1, None, None, score)


def _ranking(*pairs: tuple[str, float]) -> list[ScoredChunk]:
    return [_chunk(name, score) for name, score in pairs]


def _names(fused: list[ScoredChunk]) -> list[str]:
    return [chunk.content for chunk in fused]


def test_scores_are_scaled_per_side_and_weighted() -> None:
    lexical = _ranking(("a", 30.0), ("b", 20.0), ("c", 10.0))
    dense = _ranking(("c", 0.9), ("d", 0.7), ("a", 0.5))
    fused = min_max_fusion(lexical, dense, lexical_weight=0.5)
    scores = {chunk.content: chunk.score for chunk in fused}
    # a: lexical 1, dense 0 (the last of its side); b: 0.5, absent; c: 0 and 1; d: absent, 0.5.
    assert scores == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.5, "d": 0.25})
    assert _names(fused) == ["a", "c", "b", "d"]  # ties by chunk id
    assert HYBRID_LEXICAL_WEIGHT == 0.5


def test_a_clear_winner_on_one_side_stays_ahead_where_ranks_alone_would_not() -> None:
    # Lexically, "a" is far ahead of everything; densely, "b" leads "a" by a hair.
    lexical = _ranking(("a", 40.0), ("b", 5.0), ("c", 4.9), ("d", 4.8))
    dense = _ranking(("b", 0.80), ("a", 0.79), ("e", 0.30), ("f", 0.29))
    assert _names(min_max_fusion(lexical, dense))[0] == "a"
    # Reciprocal-rank fusion sees only the ranks: "a" and "b" are first and second on both sides
    # alike, and the tie goes by chunk id, whichever way the scores lean.
    swapped = _ranking(("a", 5.0), ("b", 4.99), ("c", 1.0), ("d", 0.5))
    assert (
        _names(reciprocal_rank_fusion([lexical, dense]))[:2]
        == _names(reciprocal_rank_fusion([swapped, dense]))[:2]
    )
    assert _names(min_max_fusion(swapped, dense))[0] == "b"


def test_the_weight_moves_the_balance_between_the_sides() -> None:
    lexical = _ranking(("a", 10.0), ("b", 1.0))
    dense = _ranking(("b", 0.9), ("a", 0.1))
    assert _names(min_max_fusion(lexical, dense, lexical_weight=0.8)) == ["a", "b"]
    assert _names(min_max_fusion(lexical, dense, lexical_weight=0.2)) == ["b", "a"]
    assert [c.score for c in min_max_fusion(lexical, dense, lexical_weight=1.0)] == [1.0, 0.0]


def test_scaling_one_side_changes_nothing() -> None:
    lexical = _ranking(("a", 12.0), ("b", 7.5), ("c", 3.0))
    dense = _ranking(("c", 0.6), ("d", 0.55), ("b", 0.2))
    scaled = _ranking(("a", 1200.0 + 7), ("b", 750.0 + 7), ("c", 300.0 + 7))
    assert min_max_fusion(lexical, dense) == min_max_fusion(scaled, dense)


def test_degenerate_rankings() -> None:
    assert min_max_fusion([], []) == []
    only = _ranking(("a", 3.0))
    fused = min_max_fusion(only, [])
    assert _names(fused) == ["a"] and fused[0].score == pytest.approx(HYBRID_LEXICAL_WEIGHT)
    same = _ranking(("b", 0.5), ("a", 0.5))
    assert [(c.content, c.score) for c in min_max_fusion([], same)] == [
        ("a", pytest.approx(0.5)),
        ("b", pytest.approx(0.5)),
    ]
    # A chunk both sides found is returned once, with its row from the lexical side.
    both = min_max_fusion(_ranking(("a", 2.0)), _ranking(("a", 0.9)))
    assert len(both) == 1 and both[0].score == pytest.approx(1.0)
