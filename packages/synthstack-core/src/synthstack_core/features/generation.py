"""Text and chat generation through the configured chat models (``/api/v1/generation/*``).

Every answer names the model that produced it and its usage. ``stream: true`` answers with
server-sent events: ``delta`` (the next piece of text, as the model produces it) and a final
``done`` (id, model, usage, finish reason, time); a failure after the first piece ends the stream
with an ``error`` event (:func:`synthstack_core.http.event_stream_response`). When the client goes
away the stream is closed, which closes the provider's stream and stops the generation.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from pydantic import BaseModel

from synthstack_core.errors import FieldError, InvalidRequest, ProviderError
from synthstack_core.features.llm_output import PromptMessage
from synthstack_core.metrics import model_inference
from synthstack_core.providers.factory import build_llm_registry
from synthstack_core.providers.llm import (
    ChatCompletion,
    ChatDelta,
    ChatMessage,
    ChatRequest,
    LLMModelSpec,
    LLMProvider,
    LLMRegistry,
)
from synthstack_core.registry import Module, Stack, operation
from synthstack_core.replies import EventStream
from synthstack_core.schemas.generation import (
    ChatGenerationRequest,
    ChatGenerationResponse,
    ChatMessageOut,
    GenerationDelta,
    GenerationDone,
    GenerationModel,
    GenerationModelList,
    GenerationUsage,
    TextGenerationRequest,
    TextGenerationResponse,
)

__all__ = ["JSON_MAX_TOKENS", "MODULE", "GenerationService", "usage_of"]

#: Output budget of a JSON answer (an analysis: a summary and its key points fit comfortably).
JSON_MAX_TOKENS = 1024


def usage_of(completion: ChatCompletion) -> GenerationUsage:
    """A completion's usage as the API reports it."""
    usage = completion.usage
    return GenerationUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


class GenerationService:
    """Generation with the deployment's chat models; reachable as ``SynthStack.generation``."""

    def __init__(self, registry: LLMRegistry, *, max_output_tokens: int) -> None:
        self.registry = registry
        self._max_output_tokens = max_output_tokens

    @operation("generation-models")
    def models(self) -> GenerationModelList:
        """``GET /api/v1/generation/models``: only what this deployment can serve."""
        default = self.registry.default_id
        return GenerationModelList(
            models=[
                GenerationModel(
                    id=spec.id,
                    provider=spec.provider,
                    context_window=spec.context_window,
                    max_output_tokens=spec.max_output_tokens,
                    description=spec.description,
                    default=spec.id == default,
                )
                for spec in self.registry.specs()
            ],
            default=default,
        )

    def output_limit(self, spec: LLMModelSpec) -> int:
        """The largest ``max_tokens`` for ``spec`` here: its own limit and the deployment's."""
        return min(spec.max_output_tokens, self._max_output_tokens)

    def prepare(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None,
        max_tokens: int,
        temperature: float,
        json_output: bool = False,
    ) -> tuple[LLMProvider, LLMModelSpec, ChatRequest]:
        """The provider, model and request for a generation; 422 for an unknown model or a
        ``max_tokens`` over the model's or the deployment's limit."""
        spec, provider = self.registry.lookup(model)
        limit = self.output_limit(spec)
        if max_tokens > limit:
            message = f"max_tokens is at most {limit} for {spec.id} in this deployment."
            raise InvalidRequest(
                message, errors=[FieldError(("max_tokens",), message, "less_than_equal")]
            )
        turns = [message for message in messages if message.role != "system"]
        if not turns:
            message = "The conversation needs at least one user or assistant message."
            raise InvalidRequest(message, errors=[FieldError(("messages",), message, "too_short")])
        if provider.name == "anthropic" and turns[0].role != "user":
            # Anthropic refuses a conversation that does not start with the user: say so here.
            message = f"{spec.id} needs the conversation to start with a user message."
            raise InvalidRequest(
                message, errors=[FieldError(("messages",), message, "value_error")]
            )
        request = ChatRequest(
            messages=tuple(messages),
            model=spec.id,
            max_tokens=max_tokens,
            temperature=temperature,
            json_output=json_output,
        )
        return provider, spec, request

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        max_tokens: int = 512,
        temperature: float = 0.2,
        json_output: bool = False,
    ) -> ChatCompletion:
        """One whole completion (for the features built on generation)."""
        provider, _, request = self.prepare(
            messages,
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            json_output=json_output,
        )
        with model_inference("chat", request.model):
            return await provider.complete(request)

    async def ask_json(self, prompt: Sequence[PromptMessage]) -> ChatCompletion:
        """The default chat model's JSON answer to ``prompt`` (deterministic, at most
        :data:`JSON_MAX_TOKENS`)."""
        spec, _ = self.registry.lookup(None)
        return await self.complete(
            [ChatMessage(role, content) for role, content in prompt],
            max_tokens=min(JSON_MAX_TOKENS, self.output_limit(spec)),
            temperature=0.0,
            json_output=True,
        )

    async def aclose(self) -> None:
        """Close the chat models' clients."""
        await self.registry.aclose()

    # -- text ------------------------------------------------------------------------------

    @operation("generation-text")
    async def text(self, body: TextGenerationRequest) -> TextGenerationResponse | EventStream:
        """``POST /api/v1/generation/text``."""
        messages = [ChatMessage("user", body.prompt)]
        if body.system_prompt:
            messages.insert(0, ChatMessage("system", body.system_prompt))
        provider, _, chat = self.prepare(
            messages,
            model=body.model,
            max_tokens=body.max_tokens,
            temperature=body.temperature,
        )
        started = time.perf_counter()
        if body.stream:
            return EventStream(self._events(provider, chat, started))
        with model_inference("chat", chat.model):
            completion = await provider.complete(chat)
        return TextGenerationResponse(
            id=_new_id(),
            content=completion.content,
            model=completion.model,
            usage=usage_of(completion),
            finish_reason=completion.finish_reason,
            processing_time_ms=_elapsed_ms(started),
        )

    # -- chat ------------------------------------------------------------------------------

    @operation("generation-chat")
    async def chat(self, body: ChatGenerationRequest) -> ChatGenerationResponse | EventStream:
        """``POST /api/v1/generation/chat``."""
        provider, _, chat = self.prepare(
            [ChatMessage(message.role, message.content) for message in body.messages],
            model=body.model,
            max_tokens=body.max_tokens,
            temperature=body.temperature,
        )
        started = time.perf_counter()
        if body.stream:
            return EventStream(self._events(provider, chat, started))
        with model_inference("chat", chat.model):
            completion = await provider.complete(chat)
        return ChatGenerationResponse(
            id=_new_id(),
            message=ChatMessageOut(role="assistant", content=completion.content),
            model=completion.model,
            usage=usage_of(completion),
            finish_reason=completion.finish_reason,
            processing_time_ms=_elapsed_ms(started),
        )

    # -- streaming -------------------------------------------------------------------------

    async def _events(
        self, provider: LLMProvider, chat: ChatRequest, started: float
    ) -> AsyncGenerator[tuple[str, BaseModel], None]:
        """``delta`` events as the model writes, then ``done``."""
        identifier = _new_id()
        with model_inference("chat", chat.model):
            async with aclosing(provider.stream(chat)) as pieces:  # type: ignore[type-var]
                async for piece in pieces:
                    if isinstance(piece, ChatDelta):
                        if piece.text:
                            yield "delta", GenerationDelta(text=piece.text)
                        continue
                    yield (
                        "done",
                        GenerationDone(
                            id=identifier,
                            model=piece.model,
                            usage=usage_of(piece),
                            finish_reason=piece.finish_reason,
                            processing_time_ms=_elapsed_ms(started),
                        ),
                    )
                    return
        raise ProviderError("The model's stream ended before it finished.")


def build(stack: Stack) -> GenerationService:
    """The chat models the settings configure."""
    return GenerationService(
        build_llm_registry(stack.settings, stack.openai_client),
        max_output_tokens=stack.settings.max_generation_tokens,
    )


MODULE = Module("generation", GenerationService, build)


def _new_id() -> str:
    return f"gen_{uuid.uuid4().hex}"
