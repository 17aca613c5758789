"""Turning request bodies into the core's models, with SynthStack's errors.

Both adapters hand the raw body to :func:`parse_json_body`, so both reject the same bodies with the
same problem: 400 for bytes that are not JSON, 422 (listing every invalid field) for JSON that does
not fit the model. Types are strict: ``"5"`` is not a number and ``5`` is not a string.

``NaN``, ``Infinity`` and ``-Infinity`` are no JSON (RFC 8259), though pydantic's parser reads them:
a body holding one is a 400 too. A number too large for a float (``1e400``) is JSON, read as
infinity, and refused by the models (``allow_inf_nan=False``) as a 422, as are non-finite numbers
handed over by the library API or a form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from synthstack_core.errors import FieldError, InvalidRequest, MalformedBody, NotFound
from synthstack_core.schemas.common import Limits

__all__ = ["invalid_request", "parse_json_body", "parse_params", "validate_data"]

M = TypeVar("M", bound=BaseModel)


def _field_errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(loc=tuple(error["loc"]), msg=error["msg"], type=error["type"])
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def invalid_request(exc: ValidationError) -> InvalidRequest:
    """A pydantic validation error as a 422 listing every invalid field."""
    errors = _field_errors(exc)
    fields = ", ".join(".".join(str(p) for p in e.loc) or "body" for e in errors[:5])
    return InvalidRequest(f"The request has invalid fields: {fields}.", errors=errors)


#: Bytes every non-finite number token contains (``NaN``, ``Infinity``, ``-Infinity``).
_NON_FINITE_TOKENS = (b"NaN", b"Infinity")


def _refuse_non_finite(body: bytes) -> None:
    """A 400 for a body holding ``NaN`` or ``(-)Infinity`` outside a string (no JSON has them).

    Only a body containing those letters is parsed again, without them allowed; one that is not JSON
    for another reason is left to the model's parse, which says so."""
    if not any(token in body for token in _NON_FINITE_TOKENS):
        return
    try:
        from_json(body, allow_inf_nan=False)
    except ValueError:
        try:
            from_json(body)
        except ValueError:
            return
        raise MalformedBody(
            "The request body is not valid JSON: NaN and Infinity are not JSON numbers (RFC 8259)."
        ) from None


def parse_json_body(model: type[M], body: bytes, limits: Limits) -> M:
    """Parse and validate a JSON request body."""
    _refuse_non_finite(body)
    try:
        return model.model_validate_json(body, strict=True, context={"limits": limits})
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise MalformedBody("The request body is not valid JSON.") from None
        raise invalid_request(exc) from None
    except UnicodeDecodeError:
        raise MalformedBody("The request body is not UTF-8.") from None


def parse_params(model: type[M], path_params: Mapping[str, str], query: Mapping[str, str]) -> M:
    """Validate path and query parameters (strings, converted where the model says).

    A path parameter that cannot name anything is a 404 (there is no such resource); an invalid
    query parameter is a 422.
    """
    try:
        return model.model_validate({**query, **path_params})
    except ValidationError as exc:
        errors = _field_errors(exc)
        if any(e.loc and e.loc[0] in path_params for e in errors):
            raise NotFound("No such resource.") from None
        located = [FieldError(("query", *e.loc), e.msg, e.type) for e in errors]
        raise InvalidRequest("The request has invalid query parameters.", errors=located) from None


def validate_data(model: type[M], data: dict[str, Any], limits: Limits) -> M:
    """Validate Python data (the library API) exactly as a JSON body would be."""
    try:
        return model.model_validate(data, strict=True, context={"limits": limits})
    except ValidationError as exc:
        raise invalid_request(exc) from None
