"""The one exception tree of SynthStack, and its rendering as RFC 9457 problem details.

Every error a caller can see is one of these; each leaf knows its HTTP status and its stable
machine-readable ``code``::

    SynthStackError                      500 internal_error
    ├── MalformedBody                    400 malformed_body
    ├── Unauthenticated                  401 unauthenticated
    ├── NotFound                         404 not_found
    ├── MethodNotAllowed                 405 method_not_allowed
    ├── Conflict                         409 conflict
    ├── PayloadTooLarge                  413 payload_too_large
    ├── UnsupportedMediaType             415 unsupported_media_type
    ├── InvalidRequest                   422 invalid_request
    │   └── ModelNotAvailable            422 model_not_available
    ├── RateLimited                      429 rate_limited
    │   └── RateLimitExceeded            429 rate_limited (this service's own limits)
    ├── ProviderError                    502 provider_error
    │   └── ProviderTimeout              504 provider_timeout
    └── DependencyUnavailable            503 dependency_unavailable

A problem body never carries a stack trace, a provider's raw message or a secret: ``detail`` is
written by SynthStack, and unexpected exceptions are rendered as a bare ``internal_error``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from sqlalchemy.exc import DataError, SQLAlchemyError

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "Conflict",
    "DependencyUnavailable",
    "FieldError",
    "InvalidRequest",
    "MalformedBody",
    "MethodNotAllowed",
    "ModelNotAvailable",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PermissionDenied",
    "Problem",
    "ProviderError",
    "ProviderTimeout",
    "RateLimitExceeded",
    "RateLimited",
    "SynthStackError",
    "Unauthenticated",
    "UnsupportedMediaType",
    "no_endpoint",
    "problem_for",
    "translate",
    "uri_path",
]

logger = logging.getLogger("synthstack")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://synthstack.dev/problems/"


@dataclass(frozen=True)
class FieldError:
    """One invalid field: where (``loc``), what is wrong (``msg``) and its kind (``type``)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of the field error."""
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class SynthStackError(Exception):
    """Base of every error SynthStack reports to a caller."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.instance_code = code or self.code
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.detail)


class MalformedBody(SynthStackError):
    """The request body cannot be parsed (not JSON, not UTF-8)."""

    status = 400
    code = "malformed_body"
    title = "Malformed Request Body"


class Unauthenticated(SynthStackError):
    """No API key, or an unknown or revoked one."""

    status = 401
    code = "unauthenticated"
    title = "Unauthenticated"

    def __init__(self, detail: str | None = None, *, code: str | None = None) -> None:
        super().__init__(
            detail, code=code, headers={"WWW-Authenticate": 'Bearer realm="synthstack"'}
        )


class PermissionDenied(SynthStackError):
    """The caller is known but may not do this (the API's own operations never answer it: a host
    project's views do, through ``synthstack_django.rest``)."""

    status = 403
    code = "permission_denied"
    title = "Forbidden"


class NotFound(SynthStackError):
    """No such resource (also for another tenant's resources)."""

    status = 404
    code = "not_found"
    title = "Not Found"


class MethodNotAllowed(SynthStackError):
    """The path exists but not with this method."""

    status = 405
    code = "method_not_allowed"
    title = "Method Not Allowed"

    def __init__(self, method: str, allowed: Sequence[str]) -> None:
        allow = ", ".join(sorted({m.upper() for m in allowed}))
        super().__init__(
            f"{method.upper()} is not allowed here; allowed: {allow}.",
            headers={"Allow": allow},
        )


class Conflict(SynthStackError):
    """The request conflicts with the current state of a resource."""

    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(SynthStackError):
    """The body is larger than the configured limit."""

    status = 413
    code = "payload_too_large"
    title = "Payload Too Large"


class UnsupportedMediaType(SynthStackError):
    """The body's content type is not one the operation accepts."""

    status = 415
    code = "unsupported_media_type"
    title = "Unsupported Media Type"


class InvalidRequest(SynthStackError):
    """Fields are missing, of the wrong type, out of range or unknown."""

    status = 422
    code = "invalid_request"
    title = "Invalid Request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] = (),
        code: str | None = None,
    ) -> None:
        super().__init__(detail, code=code)
        self.errors = list(errors)


class ModelNotAvailable(InvalidRequest):
    """The requested model is unknown, or its provider is not configured here."""

    code = "model_not_available"


class RateLimited(SynthStackError):
    """Too many requests; ``Retry-After`` says when to try again."""

    status = 429
    code = "rate_limited"
    title = "Too Many Requests"

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: float = 1.0,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(detail, headers={"Retry-After": str(seconds), **dict(headers)})


class RateLimitExceeded(RateLimited):
    """The caller used up its own rate limit here (``SYNTHSTACK_RATE_LIMITS``, or its tenant's
    override), as opposed to a provider's: ``Retry-After`` and the ``RateLimit-Policy`` and
    ``RateLimit`` headers of the IETF httpapi draft say when and how much."""


class ProviderError(SynthStackError):
    """A model provider failed or answered something unusable."""

    status = 502
    code = "provider_error"
    title = "Bad Gateway"


class ProviderTimeout(ProviderError):
    """A model provider did not answer in time."""

    status = 504
    code = "provider_timeout"
    title = "Gateway Timeout"


class DependencyUnavailable(SynthStackError):
    """A dependency the call needs (database, model files) is down."""

    status = 503
    code = "dependency_unavailable"
    title = "Service Unavailable"


class Overloaded(SynthStackError):
    """The process has as many requests running and waiting as it admits
    (``SYNTHSTACK_MAX_ACTIVE_REQUESTS``, ``SYNTHSTACK_MAX_QUEUED_REQUESTS``): refused at once, to
    be retried after ``Retry-After`` seconds (at least 1)."""

    status = 503
    code = "overloaded"
    title = "Service Unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


@dataclass
class Problem:
    """A rendered problem: status, headers and the ``application/problem+json`` body."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """The body as compact UTF-8 JSON."""
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()


#: What stays literal in a path segment (RFC 3986 ``pchar`` and ``/``), besides letters, digits and
#: ``-._~``: everything else is percent-encoded as UTF-8.
_PATH_SAFE = "/:@!$&'()*+,;="


def uri_path(path: str) -> str:
    """The decoded request ``path`` (what both backends route on) as a URI path, percent-encoded.

    Both backends decode the path the client sent before routing it, so the problem's ``instance``
    is that path encoded again, the same way on both: ``/a%0A`` and ``/a%0a`` are ``/a%0A``, ``é``
    is ``%C3%A9``, a space ``%20``, a literal ``%`` ``%25``; ``%2F`` is a ``/`` to both routers, so
    it is one here too.
    """
    return quote(path, safe=_PATH_SAFE)


def no_endpoint(path: str) -> NotFound:
    """The error of a path no operation serves (the routers' 404; also what an operation raises to
    look like one)."""
    return NotFound(f"No endpoint at {uri_path(path)}.")


def problem_for(error: BaseException, *, request_id: str, instance: str | None) -> Problem:
    """Render any exception as problem details.

    A :class:`SynthStackError` keeps its status, code, detail and headers; anything else becomes a
    bare 500 ``internal_error`` whose detail reveals nothing of the exception. ``instance`` is the
    decoded request path; the problem carries it percent-encoded (:func:`uri_path`).
    """
    if not isinstance(error, SynthStackError):
        error = SynthStackError("An unexpected error occurred; it has been logged.")
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.instance_code.replace("_", "-"),
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": None if instance is None else uri_path(instance),
        "code": error.instance_code,
        "request_id": request_id,
    }
    if isinstance(error, InvalidRequest):
        body["errors"] = [e.as_dict() for e in error.errors]
    return Problem(status=error.status, body=body, headers=dict(error.headers))


def translate(exc: Exception) -> BaseException:
    """What the caller sees of ``exc``: a database failure is the database being unavailable,
    unless the database refused a value of the request (a data exception, SQLSTATE class 22: a
    NUL in text, a string too long, invalid text for a type, an untranslatable character), which
    is the caller's mistake (422), not an outage."""
    if isinstance(exc, SQLAlchemyError):
        sqlstate = _sqlstate(exc)
        if isinstance(exc, DataError) or sqlstate.startswith("22"):
            logger.warning(
                "database refused a value: %s (SQLSTATE %s)", type(exc).__name__, sqlstate
            )
            return InvalidRequest(
                "The request holds a value the database cannot store or compare.",
                code="unstorable_value",
            )
        logger.warning("database error: %s", type(exc).__name__)
        return DependencyUnavailable("The database is unavailable.")
    return exc


def _sqlstate(exc: SQLAlchemyError) -> str:
    """The SQLSTATE PostgreSQL gave (``""`` when the error did not come from the server)."""
    original = getattr(exc, "orig", None)
    return str(getattr(original, "sqlstate", None) or "")
