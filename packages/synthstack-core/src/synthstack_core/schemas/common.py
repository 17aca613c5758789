"""Building blocks shared by the request and response models of every feature."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo
from pydantic_core import PydanticCustomError

__all__ = [
    "AS_INTEGER",
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_MAX_TEXT_CHARS",
    "FormModel",
    "Limits",
    "ModelName",
    "RequestModel",
    "ResponseModel",
    "Text",
    "TextBatch",
    "Usage",
]

#: The limits the contract states; deployments change them with settings (see ``Limits``).
DEFAULT_MAX_TEXT_CHARS = 20_000
DEFAULT_MAX_BATCH_SIZE = 128


class Limits(BaseModel):
    """The limits a request is validated against, taken from the settings at validation time."""

    model_config = ConfigDict(frozen=True)

    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE


def _limits(info: ValidationInfo) -> Limits:
    context = info.context
    if isinstance(context, dict):
        limits = context.get("limits")
        if isinstance(limits, Limits):
            return limits
    return Limits()


def _check_text(value: str, info: ValidationInfo) -> str:
    limit = _limits(info).max_text_chars
    if len(value) > limit:
        raise PydanticCustomError(
            "string_too_long",
            "String should have at most {max_length} characters",
            {"max_length": limit},
        )
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "String must not contain NUL characters")
    return value


def _check_batch(value: list[str], info: ValidationInfo) -> list[str]:
    limit = _limits(info).max_batch_size
    if len(value) > limit:
        raise PydanticCustomError(
            "too_long",
            "List should have at most {max_length} items, not {actual_length}",
            {"max_length": limit, "actual_length": len(value)},
        )
    return value


def _integral(value: object) -> object:
    # JSON Schema's `integer` includes 5.0; strict validation would refuse it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: Put last in ``Annotated[int, Field(ge=..., le=...), AS_INTEGER]``: an integer as JSON Schema
#: means it (``5`` or ``5.0``; never ``"5"`` or ``true``). Constraints must come before it, or they
#: vanish from the JSON schema.
AS_INTEGER = BeforeValidator(_integral)

#: A non-empty text without NUL characters, at most ``Limits.max_text_chars`` long.
Text = Annotated[
    str,
    Field(
        min_length=1,
        description="A non-empty text without NUL characters.",
        json_schema_extra={"maxLength": DEFAULT_MAX_TEXT_CHARS, "pattern": "^[^\\x00]*$"},
    ),
    AfterValidator(_check_text),
]

#: A non-empty list of texts, at most ``Limits.max_batch_size`` long.
TextBatch = Annotated[
    list[Text],
    Field(min_length=1, json_schema_extra={"maxItems": DEFAULT_MAX_BATCH_SIZE}),
    AfterValidator(_check_batch),
]

ModelName = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"),
]


class RequestModel(BaseModel):
    """Base of request bodies: strict types (no coercion), no unknown fields, finite numbers only
    (JSON has no NaN or Infinity; ``1e400`` would be read as infinity)."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class FormModel(BaseModel):
    """Base of ``multipart/form-data`` requests: no unknown fields; values arrive as strings and are
    converted where the model says (``"256"`` is a valid integer here, as forms have no numbers);
    ``"NaN"``, ``"inf"``, and non-finite numbers in a JSON field, are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ResponseModel(BaseModel):
    """Base of response bodies."""

    model_config = ConfigDict(extra="forbid")


class Usage(ResponseModel):
    """Tokens a call consumed, counted with the model's own tokenizer."""

    prompt_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)
