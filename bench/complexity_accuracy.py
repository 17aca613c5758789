"""Held-out accuracy of the offline complexity estimator on the labelled examples.

Stratified 5-fold cross-validation over ``data/complexity_examples.jsonl``: each example is
estimated by an estimator whose neighbours come from the other four folds only. The signals are
fixed rules (``features/complexity/estimator.py``); nothing is fitted, and no setting is chosen per fold.
Reports exact-level accuracy, accuracy within one level, the confusion matrix, and the same figures
for the two halves alone (signals only, neighbours only), so that each one's share is visible.

The caveat that matters: the examples and the signal rules were written by the same person, so the
signals are not independent of the labels the way real tickets would be. Treat the figures as a
consistency check of the estimator on this data, not as accuracy on someone else's backlog.

Run it from the repository root (the local embedding model, no network)::

    .hatch/test/bin/python bench/complexity_accuracy.py
    .hatch/test/bin/python bench/complexity_accuracy.py --folds 10 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections import defaultdict

import numpy as np

from synthstack_core.features.complexity import (
    ComplexityEstimator,
    ComplexityExample,
    load_examples,
    task_text,
)
from synthstack_core.features.embeddings import EmbeddingModelRegistry, EmbeddingService
from synthstack_core.providers.local_onnx import LOCAL_MODEL, LocalOnnxEmbeddingProvider
from synthstack_core.schemas.common import Limits
from synthstack_core.stores.cache import MemoryCache


def stratified_folds(examples: list[ComplexityExample], folds: int, seed: int) -> list[int]:
    """A fold number per example, each level spread evenly over the folds."""
    rng = random.Random(seed)
    by_level: dict[int, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_level[example.level].append(index)
    assignment = [0] * len(examples)
    for indices in by_level.values():
        rng.shuffle(indices)
        for position, index in enumerate(indices):
            assignment[index] = position % folds
    return assignment


def report(name: str, truth: list[int], predicted: list[int]) -> None:
    """Print accuracy, within-one accuracy and the confusion matrix."""
    pairs = list(zip(truth, predicted, strict=True))
    exact = sum(t == p for t, p in pairs) / len(pairs)
    within = sum(abs(t - p) <= 1 for t, p in pairs) / len(pairs)
    print(f"\n{name}: exact {exact:.1%}, within +-1 {within:.1%} (n={len(pairs)})")
    print("  actual \\ predicted   1    2    3    4    5")
    for level in range(1, 6):
        row = [sum(1 for t, p in pairs if t == level and p == column) for column in range(1, 6)]
        print(f"  level {level}            " + "".join(f"{n:>5}" for n in row))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2025)
    args = parser.parse_args()

    examples = load_examples()
    embeddings = EmbeddingService(
        EmbeddingModelRegistry([LocalOnnxEmbeddingProvider()], LOCAL_MODEL.id),
        MemoryCache(10_000),
        limits=Limits(),
        ttl_seconds=3600,
    )
    requests = [example.as_request() for example in examples]
    vectors = (await embeddings.embed([task_text(r) for r in requests])).vectors
    folds = stratified_folds(examples, args.folds, args.seed)
    levels = sorted({e.level for e in examples})
    print(
        f"{len(examples)} examples, levels {levels} "
        f"({', '.join(str(sum(e.level == x for e in examples)) for x in levels)} each), "
        f"{args.folds}-fold stratified cross-validation, seed {args.seed}, "
        f"embeddings {LOCAL_MODEL.id}"
    )

    truth = [e.level for e in examples]
    results: dict[str, list[int]] = {"combined": [], "signals only": [], "neighbours only": []}
    order: list[int] = []
    for fold in range(args.folds):
        train = [i for i in range(len(examples)) if folds[i] != fold]
        test = [i for i in range(len(examples)) if folds[i] == fold]
        train_vectors = vectors[np.array(train)]
        variants = {
            "combined": ComplexityEstimator([examples[i] for i in train], train_vectors),
            "signals only": ComplexityEstimator(
                [examples[i] for i in train], train_vectors, neighbour_weight=0.0
            ),
            "neighbours only": ComplexityEstimator(
                [examples[i] for i in train], train_vectors, neighbour_weight=1.0
            ),
        }
        for index in test:
            order.append(index)
            for name, estimator in variants.items():
                answer = estimator.estimate(requests[index], vectors[index])
                results[name].append(answer.complexity_score)
    ordered_truth = [truth[i] for i in order]
    for name, predicted in results.items():
        report(name, ordered_truth, predicted)


if __name__ == "__main__":
    asyncio.run(main())
