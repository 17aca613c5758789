"""Chat completions from OpenAI, or any OpenAI-compatible server, through the official ``openai`` SDK.

``OPENAI_BASE_URL`` points the SDK at vLLM, Ollama, LocalAI or another compatible server; the
models served are listed by ``SYNTHSTACK_OPENAI_CHAT_MODELS`` (the first is this provider's
default). Timeouts and retries are the SDK's (``SYNTHSTACK_PROVIDER_TIMEOUT_SECONDS``,
``SYNTHSTACK_PROVIDER_MAX_RETRIES``): it retries 408/409/429/5xx and connection errors with
exponential backoff, honouring ``Retry-After``.

* Streaming asks for ``stream_options={"include_usage": True}``: the last chunk carries usage. A
  compatible server that sends none gets its usage counted offline in ``cl100k_base`` (an estimate).
  A stream that ends without a finish reason, or sends a chunk that is not JSON, raises
  :class:`~synthstack_core.errors.ProviderError` from the iterator; closing the iterator closes the
  HTTP response, which stops the generation upstream.
* JSON output uses ``response_format={"type": "json_object"}``. OpenAI refuses it unless the word
  "JSON" appears in the messages, so a system instruction saying so is added when it does not.
* OpenAI itself is sent ``max_completion_tokens`` (newer models refuse ``max_tokens``); a
  compatible server is sent ``max_tokens``, which they all understand.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from synthstack_core.errors import ProviderError
from synthstack_core.providers.llm import (
    ChatCompletion,
    ChatDelta,
    ChatMessage,
    ChatRequest,
    FinishReason,
    LLMModelSpec,
    LLMProvider,
    LLMUsage,
)
from synthstack_core.providers.remote_errors import map_remote_error

if TYPE_CHECKING:
    from synthstack_core.providers.openai_client import OpenAIClient
    from synthstack_core.settings import Settings

__all__ = ["JSON_INSTRUCTION", "KNOWN_OPENAI_CHAT_MODELS", "OpenAILLMProvider"]

_SUBJECT = "chat model provider"

#: Context window and output limit of OpenAI's chat models (from OpenAI's model pages).
KNOWN_OPENAI_CHAT_MODELS: dict[str, tuple[int, int, str]] = {
    "gpt-4o-mini": (128_000, 16_384, "OpenAI GPT-4o mini: fast and inexpensive."),
    "gpt-4o": (128_000, 16_384, "OpenAI GPT-4o."),
    "gpt-4.1": (1_047_576, 32_768, "OpenAI GPT-4.1."),
    "gpt-4.1-mini": (1_047_576, 32_768, "OpenAI GPT-4.1 mini."),
    "gpt-4.1-nano": (1_047_576, 32_768, "OpenAI GPT-4.1 nano."),
}
# A model of a compatible server is unknown here: assume a modest window.
_UNKNOWN_MODEL_LIMITS = (8_192, 4_096)

#: Added as a system message in JSON mode when no message mentions JSON.
JSON_INSTRUCTION = "Answer with a single JSON object and nothing else."

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    # A tool call ends the turn; this provider sends no tools, but a server may still say so.
    "tool_calls": "stop",
    "function_call": "stop",
}


class OpenAILLMProvider(LLMProvider):
    """Chat completions from OpenAI or an OpenAI-compatible base URL (vLLM, Ollama, LocalAI)."""

    name = "openai"
    remote: ClassVar[bool] = True

    def __init__(self, client: OpenAIClient, *, models: Sequence[str]) -> None:
        """Generate through ``client``, the stack's shared client (which closes it)."""
        if not models:
            raise ValueError("an OpenAI chat provider needs at least one model")
        self.client = client
        self._models = tuple(_spec(model_id, compatible=client.compatible) for model_id in models)

    @classmethod
    def from_settings(cls, settings: Settings, client: OpenAIClient) -> OpenAILLMProvider:
        """The chat models ``SYNTHSTACK_OPENAI_CHAT_MODELS`` lists, through ``client``."""
        return cls(client, models=settings.openai_chat_models)

    def models(self) -> Sequence[LLMModelSpec]:
        """The configured chat models, the default first."""
        return self._models

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
        messages = list(request.messages)
        if request.json_output and not any("json" in m.content.lower() for m in messages):
            messages.insert(0, ChatMessage("system", JSON_INSTRUCTION))
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": request.temperature,
        }
        limit = "max_tokens" if self.client.compatible else "max_completion_tokens"
        arguments[limit] = request.max_tokens
        if request.json_output:
            arguments["response_format"] = {"type": "json_object"}
        return arguments

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        """One chat completion, whole."""
        client = self.client.get()
        try:
            response = await client.chat.completions.create(**self._arguments(request))
            choice = response.choices[0]
            content = choice.message.content or ""
            finish = _finish_reason(choice.finish_reason)
            usage = response.usage
            if usage is None:
                llm_usage = _estimated_usage(request, content)
            else:
                llm_usage = LLMUsage(
                    int(usage.prompt_tokens),
                    int(usage.completion_tokens),
                    int(usage.total_tokens),
                )
            model = str(response.model or request.model)
        except ProviderError:
            raise
        except (LookupError, AttributeError, TypeError) as exc:  # a body of the wrong shape
            raise ProviderError(f"The {_SUBJECT} answered something unusable.") from exc
        except Exception as exc:
            raise map_remote_error(exc, subject=_SUBJECT) from exc
        return ChatCompletion(content, model, llm_usage, finish)

    async def stream(
        self, request: ChatRequest
    ) -> AsyncGenerator[ChatDelta | ChatCompletion, None]:
        """Stream a chat completion; closing the iterator closes the HTTP response."""
        client = self.client.get()
        parts: list[str] = []
        finish: FinishReason | None = None
        usage: LLMUsage | None = None
        model = request.model
        try:
            chunks = await client.chat.completions.create(
                **self._arguments(request),
                stream=True,
                stream_options={"include_usage": True},
            )
        except Exception as exc:
            raise map_remote_error(exc, subject=_SUBJECT) from exc
        try:
            async for chunk in chunks:
                try:
                    if chunk.model:
                        model = str(chunk.model)
                    if chunk.usage is not None:
                        usage = LLMUsage(
                            int(chunk.usage.prompt_tokens),
                            int(chunk.usage.completion_tokens),
                            int(chunk.usage.total_tokens),
                        )
                    text = None
                    if chunk.choices:
                        choice = chunk.choices[0]
                        text = choice.delta.content if choice.delta is not None else None
                        if choice.finish_reason is not None:
                            finish = _finish_reason(choice.finish_reason)
                except ProviderError:
                    raise
                except (LookupError, AttributeError, TypeError, ValueError) as exc:
                    raise ProviderError(f"The {_SUBJECT} streamed something unusable.") from exc
                if text:
                    parts.append(text)
                    yield ChatDelta(text)
        except ProviderError:
            raise
        except Exception as exc:  # the SDK's errors, raw httpx errors midway, a non-JSON event
            raise map_remote_error(exc, subject=_SUBJECT) from exc
        finally:
            # On an early close or a cancellation this closes the connection: the server stops.
            await chunks.close()
        if finish is None:
            raise ProviderError(f"The {_SUBJECT} ended its stream before the answer was finished.")
        content = "".join(parts)
        yield ChatCompletion(content, model, usage or _estimated_usage(request, content), finish)

    async def check(self) -> None:
        """Remote models are checked when used; readiness does not spend tokens."""


def _spec(model_id: str, *, compatible: bool) -> LLMModelSpec:
    known = KNOWN_OPENAI_CHAT_MODELS.get(model_id)
    if known is not None:
        context_window, max_output, description = known
    else:
        context_window, max_output = _UNKNOWN_MODEL_LIMITS
        where = "the OpenAI-compatible server" if compatible else "OpenAI"
        description = f"{model_id}, served by {where}."
    return LLMModelSpec(model_id, "openai", context_window, max_output, description)


def _finish_reason(value: object) -> FinishReason:
    reason = _FINISH_REASONS.get(str(value)) if value is not None else None
    if reason is None:
        raise ProviderError(f"The {_SUBJECT} gave no usable finish reason.")
    return reason


def _estimated_usage(request: ChatRequest, content: str) -> LLMUsage:
    """Usage counted offline in ``cl100k_base``, for a server that reports none."""
    from synthstack_core.providers.openai import count_cl100k_tokens

    # Each message costs its text plus ~4 tokens of framing, as OpenAI counts chat prompts.
    prompt = sum(count_cl100k_tokens(m.content) + 4 for m in request.messages) + 3
    completion = count_cl100k_tokens(content)
    return LLMUsage(prompt, completion, prompt + completion)
