"""Models of ``/api/v1/generation/*``: text and chat generation, streamed or not, and the models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from synthstack_core.schemas.common import AS_INTEGER, ModelName, RequestModel, ResponseModel, Text

__all__ = [
    "MAX_MESSAGES",
    "MAX_OUTPUT_TOKENS",
    "AnalysisGenerateRequest",
    "AnalysisGenerateResponse",
    "ChatGenerationRequest",
    "ChatGenerationResponse",
    "ChatMessageIn",
    "ChatMessageOut",
    "GenerationDelta",
    "GenerationDone",
    "GenerationModel",
    "GenerationModelList",
    "GenerationUsage",
    "TextGenerationRequest",
    "TextGenerationResponse",
]

#: The largest ``max_tokens`` the contract allows; a deployment and each model may allow less.
MAX_OUTPUT_TOKENS = 16_384
MAX_MESSAGES = 200
CHAT_MODEL_FIELD = (
    "A chat model from `GET /api/v1/generation/models`; default, the deployment's default model."
)

MaxTokens = Annotated[int, Field(ge=1, le=MAX_OUTPUT_TOKENS), AS_INTEGER]
Temperature = Annotated[float, Field(ge=0, le=2)]
FinishReason = Literal["stop", "length", "content_filter"]


class GenerationUsage(ResponseModel):
    """Tokens read and written, as the model counts them."""

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class TextGenerationRequest(RequestModel):
    """Generate text from a prompt."""

    prompt: Text
    system_prompt: Text | None = None
    max_tokens: MaxTokens = Field(
        256, description="At most the model's output limit and `SYNTHSTACK_MAX_GENERATION_TOKENS`."
    )
    temperature: Temperature = 0.7
    model: ModelName | None = Field(None, description=CHAT_MODEL_FIELD)
    stream: bool = Field(False, description="Answer as server-sent events (`delta`, then `done`).")


class TextGenerationResponse(ResponseModel):
    """Generated text."""

    id: str
    content: str
    model: str = Field(description="The model that actually answered.")
    usage: GenerationUsage
    finish_reason: FinishReason
    processing_time_ms: float = Field(ge=0)


class ChatMessageIn(RequestModel):
    """One message of the conversation so far."""

    role: Literal["system", "user", "assistant"]
    content: Text


class ChatGenerationRequest(RequestModel):
    """Continue a conversation."""

    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    model: ModelName | None = Field(None, description=CHAT_MODEL_FIELD)
    max_tokens: MaxTokens = 256
    temperature: Temperature = 0.7
    stream: bool = False


class ChatMessageOut(ResponseModel):
    """The assistant's reply."""

    role: Literal["assistant"]
    content: str


class ChatGenerationResponse(ResponseModel):
    """The next message of the conversation."""

    id: str
    message: ChatMessageOut
    model: str
    usage: GenerationUsage
    finish_reason: FinishReason
    processing_time_ms: float = Field(ge=0)


class GenerationDelta(ResponseModel):
    """A streamed ``delta`` event: the next piece of text."""

    text: str


class GenerationDone(ResponseModel):
    """The streamed ``done`` event: the end of a generation."""

    id: str
    model: str
    usage: GenerationUsage
    finish_reason: FinishReason
    processing_time_ms: float = Field(ge=0)


class AnalysisGenerateRequest(RequestModel):
    """``POST /api/v1/analysis/generate``: text from a prompt, grounded in optional context."""

    prompt: Text
    context: Text | None = Field(None, description="Material the text should draw on.")
    max_tokens: MaxTokens = 256
    temperature: Temperature = 0.7
    model: ModelName | None = Field(None, description=CHAT_MODEL_FIELD)


class AnalysisGenerateResponse(ResponseModel):
    """Generated text, with its counts."""

    content: str
    model: str
    usage: GenerationUsage
    finish_reason: FinishReason
    word_count: int = Field(ge=0)


class GenerationModel(ResponseModel):
    """A chat model this deployment serves."""

    id: str
    provider: Literal["openai", "anthropic", "local"]
    context_window: int = Field(ge=1)
    max_output_tokens: int = Field(ge=1)
    description: str
    default: bool


class GenerationModelList(ResponseModel):
    """The chat models this deployment serves."""

    models: list[GenerationModel]
    default: str | None = Field(description="The model used when a request names none.")
