"""The local model's runs (``providers/local_onnx.py``), on the real model: texts sorted by length and
cut into runs of at most ``RUN_TOKENS`` padded tokens, several runs at once, and the same vectors as
each text embedded alone."""

from __future__ import annotations

import numpy as np
import pytest

from synthstack_core.providers.local_onnx import (
    LOCAL_MODEL,
    RUN_TOKENS,
    LocalOnnxEmbeddingProvider,
    plan_runs,
)


def test_runs_are_sorted_by_length_and_bounded_in_padded_tokens() -> None:
    lengths = [250, 12, 256, 30, 14, 13, 200, 11, 40, 12]
    runs = plan_runs(lengths, batch_size=32, workers=1)
    flat = [index for run in runs for index in run]
    assert sorted(flat) == list(range(len(lengths)))  # every text once
    assert [lengths[i] for i in flat] == sorted(lengths)  # shortest first
    for run in runs:
        assert len(run) * max(lengths[i] for i in run) <= RUN_TOKENS or len(run) == 1
    # The long texts run alone; the short ones together.
    assert [len(run) for run in runs if max(lengths[i] for i in run) > RUN_TOKENS // 2] == [1] * 3
    # 11, 12, 12, 13, 14, 30 (6 x 30 <= 256); the 40 would make 7 x 40 > 256.
    assert runs == [[7, 1, 9, 5, 4, 3], [8], [6], [0], [2]]


def test_runs_respect_the_batch_size_and_give_every_worker_a_share() -> None:
    short = [10] * 12
    assert [len(run) for run in plan_runs(short, batch_size=5, workers=1)] == [5, 5, 2]
    assert [len(run) for run in plan_runs(short, batch_size=32, workers=2)] == [6, 6]
    assert [len(run) for run in plan_runs(short, batch_size=32, workers=24)] == [1] * 12
    assert plan_runs([], batch_size=32, workers=2) == []


@pytest.mark.parametrize("threads", [1, 2])
async def test_runs_in_parallel_give_each_text_its_vector_alone(threads: int) -> None:
    provider = LocalOnnxEmbeddingProvider(threads=threads)
    texts = [
        "cells",
        "A short question about tidal energy?",
        " ".join(
            f"Sentence {n} about the immune response of mice to a new vaccine." for n in range(40)
        ),
        "Another short one.",
        " ".join(f"Word{n}" for n in range(90)),
        "",
    ]
    together = await provider.embed_batch(texts, model=LOCAL_MODEL, dimensions=None)
    for row, text in enumerate(texts):
        alone = await provider.embed_batch([text], model=LOCAL_MODEL, dimensions=None)
        np.testing.assert_allclose(together.vectors[row], alone.vectors[0], atol=1e-5)
        assert together.token_counts[row] == alone.token_counts[0]
    assert together.token_counts[2] == LOCAL_MODEL.max_input_tokens  # truncated to the window
    assert together.token_counts[5] == 2  # [CLS] [SEP]
    norms = np.linalg.norm(together.vectors, axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
