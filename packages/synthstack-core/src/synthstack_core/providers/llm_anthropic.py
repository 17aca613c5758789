"""Chat completions from Anthropic's Messages API, through the official ``anthropic`` SDK.

``ANTHROPIC_API_KEY`` enables the provider, ``ANTHROPIC_BASE_URL`` points it elsewhere (a proxy,
or a local stub in tests), ``SYNTHSTACK_ANTHROPIC_CHAT_MODELS`` lists the models (the first is
the default). Timeouts and retries are the SDK's, as for OpenAI.

How a :class:`~synthstack_core.providers.llm.ChatRequest` is translated:

* System messages go to the ``system`` parameter (several are joined by a blank line); the others
  stay in order as ``messages``.
* Streaming reads the SDK's raw events: ``message_start`` gives the input tokens, each
  ``content_block_delta`` of type ``text_delta`` a :class:`ChatDelta`, ``message_delta`` the stop
  reason and the output tokens. A stream without a stop reason, or with an ``error`` event, raises
  :class:`~synthstack_core.errors.ProviderError` from the iterator; closing the iterator closes
  the HTTP response, which stops the generation upstream.
* ``stop_reason``: ``end_turn``, ``stop_sequence``, ``tool_use`` and ``pause_turn`` are ``stop``;
  ``max_tokens`` and ``model_context_window_exceeded`` are ``length``; ``refusal`` is
  ``content_filter``.
* JSON output: the Messages API has no plain JSON mode, so the system prompt asks for one JSON
  object and, on models that accept a prefill (Claude 4.5 and earlier: Anthropic refuses prefills
  from Claude 4.6 on with a 400), the answer is prefilled with ``{`` (an assistant turn the model
  continues). The ``{`` is put back in front of the answer, also as the first streamed delta.
  This makes the answer start as an object but does not guarantee valid JSON (a ``length`` stop
  truncates it). Newer models, and conversations that already end with an assistant turn (the
  caller's own prefill), get the instruction only. (Structured outputs, ``output_config.format``,
  need a JSON schema with closed objects, which a free-form object is not.)
* ``temperature`` is not sent: the Messages API of the pinned SDK (2.x) has no sampling
  parameters any more, and Anthropic's current models refuse them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from synthstack_core.errors import ProviderError
from synthstack_core.providers.llm import (
    ChatCompletion,
    ChatDelta,
    ChatRequest,
    FinishReason,
    LLMModelSpec,
    LLMProvider,
    LLMUsage,
)
from synthstack_core.providers.remote_errors import map_remote_error

if TYPE_CHECKING:
    import anthropic

    from synthstack_core.settings import Settings

__all__ = [
    "JSON_PREFILL",
    "JSON_SYSTEM_INSTRUCTION",
    "KNOWN_ANTHROPIC_MODELS",
    "AnthropicLLMProvider",
    "accepts_prefill",
]

_SUBJECT = "chat model provider"

#: Context window and output limit of Anthropic's models (from Anthropic's model overview).
KNOWN_ANTHROPIC_MODELS: dict[str, tuple[int, int, str]] = {
    "claude-haiku-4-5": (200_000, 64_000, "Anthropic Claude Haiku 4.5: fast."),
    "claude-sonnet-4-5": (200_000, 64_000, "Anthropic Claude Sonnet 4.5."),
    "claude-opus-4-1": (200_000, 32_000, "Anthropic Claude Opus 4.1."),
    "claude-3-5-haiku-latest": (200_000, 8_192, "Anthropic Claude 3.5 Haiku."),
}
_UNKNOWN_MODEL_LIMITS = (200_000, 8_192)

JSON_SYSTEM_INSTRUCTION = (
    "Answer with a single JSON object and nothing else: no prose, no code fence."
)
JSON_PREFILL = "{"

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}


class AnthropicLLMProvider(LLMProvider):
    """Chat completions from Anthropic's Messages API."""

    name = "anthropic"
    remote: ClassVar[bool] = True

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        models: Sequence[str],
        timeout: float,
        max_retries: int,
    ) -> None:
        """Describe the client; nothing is connected until the first call.

        The SDK is imported now (at start-up): imported by the first request, it would stall the
        event loop, and every request on it, for a second or more.
        """
        if not models:
            raise ValueError("an Anthropic chat provider needs at least one model")
        importlib.import_module("anthropic")
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._max_retries = max_retries
        self._client: anthropic.AsyncAnthropic | None = None
        self._models = tuple(_spec(model_id) for model_id in models)

    @classmethod
    def from_settings(cls, settings: Settings) -> AnthropicLLMProvider:
        """The provider ``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL`` and the chat settings describe."""
        if settings.anthropic_api_key is None:
            raise ValueError("ANTHROPIC_API_KEY is not set")
        return cls(
            api_key=settings.anthropic_api_key.get_secret_value(),
            base_url=settings.anthropic_base_url,
            models=settings.anthropic_chat_models,
            timeout=settings.provider_timeout_seconds,
            max_retries=settings.provider_max_retries,
        )

    def models(self) -> Sequence[LLMModelSpec]:
        """The configured chat models, the default first."""
        return self._models

    def _get_client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            import anthropic  # imported already: no wait here

            self._client = anthropic.AsyncAnthropic(
                api_key=self._api_key,
                base_url=self._base_url,
                timeout=self._timeout,
                max_retries=self._max_retries,
            )
        return self._client

    def _arguments(self, request: ChatRequest) -> tuple[dict[str, Any], str]:
        """The SDK's arguments, and the prefill to put back in front of the answer."""
        system = [m.content for m in request.messages if m.role == "system"]
        messages: list[dict[str, str]] = [
            {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
        ]
        prefill = ""
        if request.json_output:
            system.append(JSON_SYSTEM_INSTRUCTION)
            if accepts_prefill(request.model) and messages and messages[-1]["role"] != "assistant":
                prefill = JSON_PREFILL
                messages.append({"role": "assistant", "content": prefill})
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        if system:
            arguments["system"] = "\n\n".join(system)
        return arguments, prefill

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        """One message, whole."""
        client = self._get_client()
        arguments, prefill = self._arguments(request)
        try:
            message = await client.messages.create(**arguments)
            text = "".join(
                block.text for block in message.content if getattr(block, "type", None) == "text"
            )
            finish = _finish_reason(message.stop_reason)
            prompt_tokens = int(message.usage.input_tokens)
            completion_tokens = int(message.usage.output_tokens)
            model = str(message.model or request.model)
        except ProviderError:
            raise
        except (LookupError, AttributeError, TypeError, ValueError) as exc:
            raise ProviderError(f"The {_SUBJECT} answered something unusable.") from exc
        except Exception as exc:
            raise map_remote_error(exc, subject=_SUBJECT) from exc
        usage = LLMUsage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)
        return ChatCompletion(prefill + text, model, usage, finish)

    async def stream(
        self, request: ChatRequest
    ) -> AsyncGenerator[ChatDelta | ChatCompletion, None]:
        """Stream a message; closing the iterator closes the HTTP response."""
        client = self._get_client()
        arguments, prefill = self._arguments(request)
        parts: list[str] = []
        finish: FinishReason | None = None
        prompt_tokens = completion_tokens = 0
        model = request.model
        try:
            events = await client.messages.create(**arguments, stream=True)
        except Exception as exc:
            raise map_remote_error(exc, subject=_SUBJECT) from exc
        try:
            if prefill:
                parts.append(prefill)
                yield ChatDelta(prefill)
            async for event in events:
                text = None
                try:
                    kind = event.type
                    if kind == "message_start":
                        model = str(event.message.model or model)
                        prompt_tokens = int(event.message.usage.input_tokens)
                        completion_tokens = int(event.message.usage.output_tokens or 0)
                    elif kind == "content_block_delta":
                        if event.delta.type == "text_delta":
                            text = event.delta.text
                    elif kind == "message_delta":
                        if event.delta.stop_reason is not None:
                            finish = _finish_reason(event.delta.stop_reason)
                        # Output tokens in message_delta are cumulative.
                        completion_tokens = int(event.usage.output_tokens)
                        if getattr(event.usage, "input_tokens", None) is not None:
                            prompt_tokens = int(event.usage.input_tokens)
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
            await events.close()
        if finish is None:
            raise ProviderError(f"The {_SUBJECT} ended its stream before the answer was finished.")
        usage = LLMUsage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)
        yield ChatCompletion("".join(parts), model, usage, finish)

    async def check(self) -> None:
        """Remote models are checked when used; readiness does not spend tokens."""

    async def aclose(self) -> None:
        """Close the SDK's HTTP client."""
        if self._client is not None:
            await self._client.close()
            self._client = None


def _spec(model_id: str) -> LLMModelSpec:
    known = KNOWN_ANTHROPIC_MODELS.get(model_id)
    if known is not None:
        context_window, max_output, description = known
    else:
        context_window, max_output = _UNKNOWN_MODEL_LIMITS
        description = f"{model_id}, served by Anthropic."
    return LLMModelSpec(model_id, "anthropic", context_window, max_output, description)


_VERSION = re.compile(r"claude-(?:[a-z]+-)?(\d+)(?:-(\d{1,2}))?(?:-|$)")


def accepts_prefill(model: str) -> bool:
    """Whether ``model`` continues a prefilled assistant turn (Claude 4.5 and earlier do).

    Anthropic refuses prefills from Claude 4.6 on; a model name this does not recognise is taken
    to be a newer one.
    """
    match = _VERSION.match(model)
    if match is None:
        return False
    major, minor = int(match[1]), int(match[2] or 0)
    return (major, minor) < (4, 6)


def _finish_reason(value: object) -> FinishReason:
    reason = _STOP_REASONS.get(str(value)) if value is not None else None
    if reason is None:
        raise ProviderError(f"The {_SUBJECT} gave no usable stop reason.")
    return reason
