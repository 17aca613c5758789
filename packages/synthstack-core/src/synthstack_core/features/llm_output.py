"""Prompts for a language model, and checking what it answers, shared by the LLM-backed features.

A feature that can ask a chat model writes its prompt as a list of ``(role, content)`` pairs and
asks for exactly one JSON object. What comes back is untrusted text: :func:`json_object` finds the
object (a model may wrap it in a Markdown fence or a sentence), and :func:`validated` fits it into
the response model. Anything unusable is a :class:`~synthstack_core.errors.ProviderError` (502)
whose detail says what was wrong, never the model's raw output.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from synthstack_core.errors import ProviderError

__all__ = ["PromptMessage", "json_object", "validated"]

#: One message of a prompt: the role (``system``, ``user`` or ``assistant``) and its text.
PromptMessage = tuple[Literal["system", "user", "assistant"], str]

M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def json_object(content: str, *, what: str) -> dict[str, Any]:
    """The one JSON object in a model's answer ``content`` (``what`` names it in errors).

    Accepts the object alone, inside a Markdown code fence, or surrounded by prose (the first
    ``{`` to the last ``}``). Raises :class:`ProviderError` when there is no JSON object.
    """
    text = content.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    candidates = [text]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise ProviderError(f"The language model's {what} is not a JSON object.")


def validated(model: type[M], data: dict[str, Any], *, what: str) -> M:
    """``data`` as ``model``; a :class:`ProviderError` naming the invalid fields otherwise.

    Keys the model does not know are dropped (a chat model may add some); nested objects must fit.
    """
    known = {key: value for key, value in data.items() if key in model.model_fields}
    try:
        return model.model_validate(known)
    except ValidationError as exc:
        fields = sorted(
            {".".join(str(part) for part in error["loc"]) or "body" for error in exc.errors()}
        )
        raise ProviderError(
            f"The language model's {what} is unusable: invalid or missing {', '.join(fields[:5])}."
        ) from None
