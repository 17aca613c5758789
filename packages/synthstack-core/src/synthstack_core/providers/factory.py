"""Building the providers the settings configure: embeddings, chat models and transcription.

The provider interfaces (:mod:`.embedding`, :mod:`.llm`, :mod:`.transcription`) import none of
their implementations; this module imports them all, to build them. A local model whose extra is
not installed is left out; when the settings make it a default, :func:`check_configured_extras`
(the first step of :meth:`SynthStack.start <synthstack_core.service.SynthStack.start>`) fails with
an :class:`~synthstack_core.extras.ExtraNotInstalled` naming the extra, before anything starts.
OpenAI's embedding, chat and transcription providers share the stack's one
:class:`~synthstack_core.providers.openai_client.OpenAIClient` (one connection pool).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthstack_core.extras import installed, require
from synthstack_core.providers.embedding import EmbeddingProvider
from synthstack_core.providers.llm import LLMProvider, LLMRegistry
from synthstack_core.providers.llm_anthropic import AnthropicLLMProvider
from synthstack_core.providers.llm_local import LocalLLMProvider
from synthstack_core.providers.llm_openai import OpenAILLMProvider
from synthstack_core.providers.local_onnx import LOCAL_MODEL, LocalOnnxEmbeddingProvider
from synthstack_core.providers.openai import OpenAIEmbeddingProvider
from synthstack_core.providers.transcription import TranscriptionProvider
from synthstack_core.providers.transcription_openai import OpenAITranscriptionProvider
from synthstack_core.providers.whisper_local import WHISPER_TINY_EN, LocalWhisperProvider
from synthstack_core.ratelimits import BudgetedLLMProvider
from synthstack_core.stores.embedded import EMBEDDED_POSTGRES

if TYPE_CHECKING:
    from synthstack_core.providers.openai_client import OpenAIClient
    from synthstack_core.settings import Settings

__all__ = [
    "build_embedding_providers",
    "build_llm_registry",
    "build_transcription_providers",
    "check_configured_extras",
]


def check_configured_extras(settings: Settings) -> None:
    """Raise ``ExtraNotInstalled`` for the first part ``settings`` make a default whose extra is
    not installed: the local embedding model, the local chat model, the default transcription
    model (and decoding audio), the embedded PostgreSQL (no ``DATABASE_URL``), Qdrant."""
    if settings.embedding_model == LOCAL_MODEL.id:
        require(
            "local-embeddings",
            f"The default embedding model {LOCAL_MODEL.id} (EMBEDDING_MODEL) runs locally and",
        )
    if settings.local_llm_enabled:
        require("local-llm", "The local chat model (SYNTHSTACK_LOCAL_LLM=false switches it off)")
    what = (
        f"The default transcription model {settings.transcription_model}"
        " (SYNTHSTACK_TRANSCRIPTION_MODEL)"
    )
    if settings.transcription_model == WHISPER_TINY_EN.id:
        require("local-whisper", f"{what} runs locally and")
    require("audio", f"{what} decodes audio, and")
    if settings.database_url is None:
        require("embedded-postgres", EMBEDDED_POSTGRES)
    if settings.vector_store == "qdrant" or settings.qdrant_url or settings.qdrant_path:
        require(
            "qdrant", "The Qdrant vector store (SYNTHSTACK_VECTOR_STORE, QDRANT_URL, QDRANT_PATH)"
        )


def build_embedding_providers(
    settings: Settings, openai: OpenAIClient | None
) -> list[EmbeddingProvider]:
    """The local model (when ``local-embeddings`` is installed), then OpenAI's through ``openai``
    (the stack's shared client; ``None``: OpenAI is not configured)."""
    providers: list[EmbeddingProvider] = []
    if installed("local-embeddings"):
        providers.append(
            LocalOnnxEmbeddingProvider(
                batch_size=settings.embedding_batch_size, threads=settings.embedding_threads
            )
        )
    if openai is not None:
        providers.append(OpenAIEmbeddingProvider(openai))
    return providers


def build_llm_registry(settings: Settings, openai: OpenAIClient | None) -> LLMRegistry:
    """The chat providers ``settings`` configure (OpenAI's through ``openai``, the stack's shared
    client, when there is one), and the default model.

    Nothing is loaded or connected here: clients and the local model are created on first use.
    Raises :class:`ValueError` when ``SYNTHSTACK_LLM_MODEL`` names a model not served here.
    """
    providers: list[LLMProvider] = []
    if openai is not None:
        providers.append(OpenAILLMProvider.from_settings(settings, openai))
    if settings.anthropic_api_key is not None:
        providers.append(AnthropicLLMProvider.from_settings(settings))
    if settings.local_llm_enabled:
        providers.append(LocalLLMProvider.from_settings(settings))
    # Each generation spends the calling tenant's token budget (SYNTHSTACK_TOKEN_BUDGET).
    return LLMRegistry([BudgetedLLMProvider.wrap(p) for p in providers], settings.llm_model)


def build_transcription_providers(
    settings: Settings, openai: OpenAIClient | None
) -> list[TranscriptionProvider]:
    """Local Whisper (when ``local-whisper`` is installed), then OpenAI's models through
    ``openai`` (the stack's shared client; ``None``: OpenAI is not configured)."""
    providers: list[TranscriptionProvider] = []
    if installed("local-whisper"):
        providers.append(
            LocalWhisperProvider(
                threads=settings.whisper_threads,
                beam_size=settings.whisper_beam_size,
                vad_min_seconds=settings.whisper_vad_min_seconds,
                real_time_factor=settings.whisper_real_time_factor,
            )
        )
    if openai is not None:
        providers.append(
            OpenAITranscriptionProvider(openai, max_audio_seconds=settings.max_audio_seconds)
        )
    return providers
