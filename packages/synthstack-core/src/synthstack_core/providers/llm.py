"""The chat (LLM) provider interface and the registry of servable models.

A provider turns a :class:`ChatRequest` into a :class:`ChatCompletion` (:meth:`LLMProvider.complete`)
or into a stream of :class:`ChatDelta` pieces ended by exactly one :class:`ChatCompletion`
(:meth:`LLMProvider.stream`). Three providers exist:

* ``openai`` (:mod:`synthstack_core.providers.llm_openai`): OpenAI, or any OpenAI-compatible
  server (vLLM, Ollama, LocalAI) through ``OPENAI_BASE_URL``;
* ``anthropic`` (:mod:`synthstack_core.providers.llm_anthropic`): Anthropic's Messages API;
* ``local`` (:mod:`synthstack_core.providers.llm_local`): SmolLM2-135M-Instruct from a wheel,
  run by llama.cpp in a worker thread; always available, demo-grade.

Which model answers when a request names none
(:func:`~synthstack_core.providers.factory.build_llm_registry`, which builds the providers, so that
this module imports none of its implementations):
``SYNTHSTACK_LLM_MODEL`` if set (it must be servable here, else start-up fails); otherwise the first
configured remote provider's default model (OpenAI before Anthropic); otherwise the local model.

Failures are :class:`~synthstack_core.errors.SynthStackError` subclasses only: ``RateLimited``
(429, with ``Retry-After``), ``ProviderError`` (502) and ``ProviderTimeout`` (504); never with the
provider's raw text or a key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from synthstack_core.errors import ModelNotAvailable
from synthstack_core.providers.model_registry import ModelRegistry

__all__ = [
    "ChatCompletion",
    "ChatDelta",
    "ChatMessage",
    "ChatRequest",
    "FinishReason",
    "LLMModelSpec",
    "LLMProvider",
    "LLMProviderName",
    "LLMRegistry",
    "LLMUsage",
    "Role",
]

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "content_filter"]
LLMProviderName = Literal["openai", "anthropic", "local"]


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation."""

    role: Role
    content: str


@dataclass(frozen=True)
class ChatRequest:
    """What to generate: the conversation, the model id and the sampling limits."""

    messages: tuple[ChatMessage, ...]
    model: str
    max_tokens: int
    temperature: float
    #: Ask the model for exactly one JSON object (how each provider enforces it: its module).
    json_output: bool = False


@dataclass(frozen=True)
class LLMUsage:
    """Tokens read and written by one generation, as the model counts them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class ChatCompletion:
    """A finished generation: the whole text, the model that wrote it, usage and why it stopped."""

    content: str
    model: str
    usage: LLMUsage
    finish_reason: FinishReason


@dataclass(frozen=True)
class ChatDelta:
    """A piece of text of a streamed generation, in order."""

    text: str


@dataclass(frozen=True)
class LLMModelSpec:
    """A chat model a provider serves: its id, context window and output limit."""

    id: str
    provider: LLMProviderName
    context_window: int
    max_output_tokens: int
    description: str


class LLMProvider(ABC):
    """Generates chat completions. Capabilities are class attributes."""

    #: The provider's name, as in :attr:`LLMModelSpec.provider`.
    name: ClassVar[LLMProviderName]
    #: True for a remote API (OpenAI, Anthropic or an OpenAI-compatible server).
    remote: ClassVar[bool]

    @abstractmethod
    def models(self) -> Sequence[LLMModelSpec]:
        """The models this provider serves in this deployment, its default first."""

    @abstractmethod
    async def complete(self, request: ChatRequest) -> ChatCompletion:
        """Generate the whole answer to ``request`` at once."""

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta | ChatCompletion]:
        """Generate the answer to ``request`` piece by piece.

        Yields :class:`ChatDelta` pieces as they arrive, then exactly one :class:`ChatCompletion`
        (the full content, usage and finish reason). Closing the iterator early (``aclose()`` or
        cancellation) stops the generation upstream. A failure midway is raised from the iterator.
        """

    async def check(self) -> None:  # noqa: B027 - optional hook
        """Make sure the provider can serve now (the local provider loads its model)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients, sessions and models."""


class LLMRegistry(ModelRegistry[LLMModelSpec, LLMProvider]):
    """The chat models this deployment can serve, each with its provider, and the default model."""

    def __init__(self, providers: Sequence[LLMProvider], default_model: str | None) -> None:
        """Index ``providers``' models (the first provider to list an id serves it).

        ``default_model`` must be one of them; ``None`` takes the first model of the first
        provider. A registry without any model is allowed, and resolves nothing.
        """
        if default_model is None:
            default_model = next((spec.id for p in providers for spec in p.models()), None)
        super().__init__(
            providers,
            default_model,
            setting="SYNTHSTACK_LLM_MODEL",
            listing="/api/v1/generation/models",
        )

    def unavailable(self, model: str | None) -> ModelNotAvailable:
        """Names the models available here (no ``errors`` list: the field may be a feature's)."""
        available = ", ".join(spec.id for spec in self.specs()) or "none"
        configured = model is not None or self.default is not None
        what = "This chat model" if configured else "No chat model is configured"
        return ModelNotAvailable(
            f"{what} is not available in this deployment; available models: {available}."
        )

    @property
    def remote_configured(self) -> bool:
        """Whether a remote provider (OpenAI, Anthropic or compatible) is configured."""
        return any(provider.remote for provider in self.providers)
