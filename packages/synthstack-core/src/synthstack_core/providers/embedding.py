"""The embedding provider interface and the description of a servable model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from synthstack_core.features.chunking import TokenCounter

__all__ = ["EmbeddingBatch", "EmbeddingModelSpec", "EmbeddingProvider"]

ProviderName = Literal["local", "openai"]


@dataclass(frozen=True)
class EmbeddingModelSpec:
    """A model a provider can serve: its id, native size and input limit."""

    id: str
    provider: ProviderName
    dimensions: int
    max_input_tokens: int
    supports_dimensions: bool


@dataclass(frozen=True)
class EmbeddingBatch:
    """L2-normalised float32 vectors, one row per input text, and each text's token count."""

    vectors: npt.NDArray[np.float32]
    token_counts: list[int]


class EmbeddingProvider(ABC):
    """Turns texts into vectors. One required method, capabilities as class attributes."""

    name: ClassVar[ProviderName]
    #: How many texts one call to :meth:`embed_batch` may carry.
    batch_size: ClassVar[int] = 64
    #: For texts sorted by length (jobs' shared runs, ``features/embeddings.py``): the most
    #: characters one call may carry once each text is counted at the length of the call's
    #: longest (``None``: no such bound, only :attr:`batch_size`). Local inference pads to the
    #: longest text, and long texts run faster in small batches on a CPU.
    padded_chars: ClassVar[int | None] = None
    #: The characters of a text that count towards :attr:`padded_chars` at most (the model's
    #: window, roughly; ``None``: all of them).
    truncated_chars: ClassVar[int | None] = None

    @abstractmethod
    def models(self) -> Sequence[EmbeddingModelSpec]:
        """The models this provider serves in this deployment."""

    @abstractmethod
    async def embed_batch(
        self, texts: Sequence[str], *, model: EmbeddingModelSpec, dimensions: int | None
    ) -> EmbeddingBatch:
        """Embed at most :attr:`batch_size` texts with ``model``, in order."""

    @abstractmethod
    def token_counter(self, model: EmbeddingModelSpec) -> TokenCounter:
        """Counts tokens as ``model`` sees them (chunk sizes are measured with it)."""

    async def check(self, model: EmbeddingModelSpec) -> str:
        """Make sure ``model`` can run now (load it if needed); return a short description."""
        return model.id

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and sessions."""
