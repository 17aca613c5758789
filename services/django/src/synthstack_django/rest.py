"""SynthStack for a host project's own Django REST framework views.

:class:`ApiKeyAuthentication` checks SynthStack's API keys (the core's authenticator: keys of
``SYNTHSTACK_API_KEYS`` and of the database) and :func:`exception_handler` renders errors as the
core's problem+json, so a host's view answers a bad key exactly as SynthStack's own operations do::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["synthstack_django.rest.ApiKeyAuthentication"],
        "EXCEPTION_HANDLER": "synthstack_django.rest.exception_handler",
    }

In a view, ``request.auth`` is the caller's :class:`~synthstack_core.security.Principal`
(``request.auth.tenant``) and ``request.user`` an :class:`ApiKeyUser` of that tenant.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.http import HttpRequest as DjangoRequest
from django.http.response import HttpResponseBase
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from synthstack_core.errors import (
    FieldError,
    InvalidRequest,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    RateLimited,
    SynthStackError,
    Unauthenticated,
    UnsupportedMediaType,
)
from synthstack_core.http import error_response, request_id_of
from synthstack_core.security import Principal
from synthstack_django.service import get_stack

# Not importing synthstack_django.views here: it imports rest_framework.views, which imports the
# DEFAULT_AUTHENTICATION_CLASSES, this module among them (DRF's documented circular import).

__all__ = ["ApiKeyAuthentication", "ApiKeyUser", "CoreAuthenticationFailed", "exception_handler"]


class ApiKeyUser:
    """``request.user`` of a request authenticated by an API key: its tenant, not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.tenant = principal.tenant

    @property
    def pk(self) -> str | None:
        """The key's id (``None`` for a key of the settings, or with authentication off)."""
        return self.principal.key_id

    def __str__(self) -> str:
        return self.tenant


class CoreAuthenticationFailed(exceptions.AuthenticationFailed):
    """DRF's authentication failure carrying the core's :class:`Unauthenticated` error."""

    def __init__(self, error: Unauthenticated) -> None:
        super().__init__(error.detail, code=error.instance_code)
        self.error = error


class ApiKeyAuthentication(BaseAuthentication):
    """SynthStack's API keys (``Authorization: Bearer <key>`` or ``X-API-Key: <key>``).

    Checked by the core, as for SynthStack's own operations: a missing, unknown or revoked key fails
    with the core's 401 (when authentication is on: with no key configured anywhere, development
    mode lets everyone in as the default tenant, as the core does). A missing key fails too, rather
    than letting the next class try: list this class last if the views also accept sessions.
    """

    def authenticate(self, request: Request) -> tuple[ApiKeyUser, Principal]:
        """The caller's user and principal, or :class:`CoreAuthenticationFailed`."""
        from synthstack_django.views import headers_of

        stack = get_stack()
        try:
            principal = stack.call(stack.stack.auth.authenticate, headers_of(request._request))
        except Unauthenticated as error:
            raise CoreAuthenticationFailed(error) from error
        return ApiKeyUser(principal), principal

    def authenticate_header(self, request: Request) -> str:
        """The core's ``WWW-Authenticate`` (DRF then keeps 401 rather than answering 403)."""
        return Unauthenticated().headers["WWW-Authenticate"]


def _field_errors(detail: Any, loc: tuple[str | int, ...] = ()) -> list[FieldError]:
    """DRF's nested validation details as the core's field errors (``loc`` from the field names)."""
    if isinstance(detail, dict):
        return [
            error for name, value in detail.items() for error in _field_errors(value, (*loc, name))
        ]
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [
                FieldError(loc=loc, msg=str(item), type=getattr(item, "code", None) or "invalid")
                for item in detail
            ]
        return [
            error
            for index, item in enumerate(detail)
            for error in _field_errors(item, (*loc, index))
        ]
    return [FieldError(loc=loc, msg=str(detail), type=getattr(detail, "code", None) or "invalid")]


def as_core_error(exc: Exception, context: dict[str, Any]) -> BaseException:
    """The core's error for what a DRF view raised (anything unknown stays itself: a 500)."""
    if isinstance(exc, CoreAuthenticationFailed):
        return exc.error
    if isinstance(exc, SynthStackError):
        return exc
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return Unauthenticated(str(exc.detail), code=exc.default_code)
    if isinstance(exc, Http404 | exceptions.NotFound):
        return NotFound(str(exc.detail) if isinstance(exc, exceptions.NotFound) else None)
    if isinstance(exc, DjangoPermissionDenied | exceptions.PermissionDenied):
        return PermissionDenied(str(getattr(exc, "detail", "")) or None)
    if isinstance(exc, exceptions.MethodNotAllowed):
        view = context.get("view")
        allowed: list[str] = list(getattr(view, "allowed_methods", []) or [])
        request = context.get("request")
        return MethodNotAllowed(getattr(request, "method", "") or "", allowed)
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail, ("body",))
        return InvalidRequest(f"{len(errors)} invalid field(s).", errors=errors)
    if isinstance(exc, exceptions.ParseError):
        return MalformedBody(str(exc.detail))
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return UnsupportedMediaType(str(exc.detail))
    if isinstance(exc, exceptions.Throttled):
        return RateLimited(str(exc.detail), retry_after=exc.wait or 1.0)
    if isinstance(exc, exceptions.APIException):
        return _status_error(exc.status_code, str(exc.detail), str(exc.default_code))
    return exc


def _status_error(status: int, detail: str, code: str) -> SynthStackError:
    """A core error of any HTTP status (DRF's exceptions with no counterpart in the core)."""
    error_type = type(
        "HttpError",
        (SynthStackError,),
        {"status": status, "code": code, "title": HTTPStatus(status).phrase},
    )
    error: SynthStackError = error_type(detail)
    return error


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponseBase:
    """DRF's ``EXCEPTION_HANDLER``: any exception of a view as the core's problem+json.

    The core's own errors are rendered as the core renders them (an :class:`ApiKeyAuthentication`
    failure is the core's 401, byte for byte); DRF's and Django's exceptions as the core's error of
    the same meaning (a ``ValidationError`` is the core's 422 ``invalid_request`` listing the fields);
    anything else is the core's bare 500 that reveals nothing (and is logged).
    """
    from synthstack_django.views import headers_of, to_django_response

    request = context.get("request")
    django_request: DjangoRequest | None = getattr(request, "_request", request)
    headers = headers_of(django_request) if django_request is not None else {}
    path = django_request.path if django_request is not None else None
    return to_django_response(
        error_response(as_core_error(exc, context), request_id=request_id_of(headers), path=path)
    )
