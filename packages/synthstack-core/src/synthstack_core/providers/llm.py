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


class LLMRegistry:
    """The chat models this deployment can serve, each with its provider, and the default model."""

    def __init__(self, providers: Sequence[LLMProvider], default_model: str | None) -> None:
        """Index ``providers``' models (the first provider to list an id serves it).

        ``default_model`` must be one of them; ``None`` takes the first model of the first
        provider. A registry without any model is allowed, and resolves nothing.
        """
        self._providers = list(providers)
        self._by_id: dict[str, tuple[LLMProvider, LLMModelSpec]] = {}
        for provider in self._providers:
            for spec in provider.models():
                self._by_id.setdefault(spec.id, (provider, spec))
        if default_model is None:
            default_model = next(iter(self._by_id), None)
        elif default_model not in self._by_id:
            raise ValueError(
                f"the default chat model {default_model!r} is not served here; "
                f"available: {', '.join(self._by_id) or 'none'}"
            )
        self._default = default_model

    @property
    def default_model(self) -> str | None:
        """The model id used when a request names none (``None``: no model at all)."""
        return self._default

    def models(self) -> list[LLMModelSpec]:
        """The models this deployment can serve, in provider order."""
        return [spec for _, spec in self._by_id.values()]

    def resolve(self, model: str | None) -> tuple[LLMProvider, LLMModelSpec]:
        """The provider and spec of ``model`` (``None``: the default model).

        Raises :class:`~synthstack_core.errors.ModelNotAvailable` (422) naming the models
        available here when ``model`` is not one of them.
        """
        wanted = self._default if model is None else model
        found = self._by_id.get(wanted) if wanted is not None else None
        if found is None:
            available = ", ".join(self._by_id) or "none"
            what = "No chat model is configured" if wanted is None else "This chat model"
            raise ModelNotAvailable(
                f"{what} is not available in this deployment; available models: {available}."
            )
        return found

    @property
    def remote_configured(self) -> bool:
        """Whether a remote provider (OpenAI, Anthropic or compatible) is configured."""
        return any(provider.remote for provider in self._providers)

    @property
    def providers(self) -> list[LLMProvider]:
        """The configured providers, remote ones first."""
        return list(self._providers)

    async def aclose(self) -> None:
        """Close every provider."""
        for provider in self._providers:
            await provider.aclose()
