"""The Django views: a thin translation between Django and the core's HTTP pipeline.

Each API operation is served by :class:`OperationView`, configured with one
:class:`~synthstack_core.operations.Operation`. The view hands the request, untouched, to
:meth:`SynthStack.handle <synthstack_core.service.SynthStack.handle>` and writes back what the core
returns; authentication, body limits, content types, validation, the handler and problem rendering
all happen in the core, which is what makes this backend answer exactly like the FastAPI one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest as DjangoRequest
from django.http import HttpResponse as DjangoResponse
from django.http import StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from synthstack_core.apidocs import ASSET_PREFIX, docs_response
from synthstack_core.http import (
    HttpRequest,
    HttpResponse,
    method_not_allowed_response,
    not_found_response,
    read_sync_stream,
)
from synthstack_core.operations import Operation
from synthstack_django.middleware import CORE_HEADERS_ATTRIBUTE
from synthstack_django.service import get_stack

__all__ = [
    "OperationView",
    "docs",
    "headers_of",
    "not_found",
    "read_body",
    "to_django_response",
]


def headers_of(request: DjangoRequest) -> dict[str, str]:
    """The request's headers with lower-case names, as the core expects them."""
    return {name.lower(): value for name, value in request.headers.items()}


def body_reader(request: DjangoRequest) -> Callable[[int], bytes]:
    """The ``read(size)`` of the request's body.

    Django reads no body from a WSGI request without ``Content-Length`` (a chunked upload), so when
    the server terminates the input stream itself (``wsgi.input_terminated``, as gunicorn does),
    the body is read from that stream.
    """
    meta = request.META
    if (
        not meta.get("CONTENT_LENGTH")
        and meta.get("wsgi.input_terminated")
        and "wsgi.input" in meta
    ):
        read: Callable[[int], bytes] = meta["wsgi.input"].read
        return read
    return request.read


def read_body(request: DjangoRequest, limit: int) -> bytes:
    """At most ``limit`` bytes of the request's body."""
    return body_reader(request)(limit)


def to_django_response(response: HttpResponse) -> HttpResponseBase:
    """The core's response as a Django response: same status, body and headers, in order.

    ``Content-Length`` is added unless the core set it (a WSGI server would otherwise chunk the
    body). A header name the
    core repeats is sent once with its values joined by ``", "`` (RFC 9110, section 5.3), since a
    Django response holds one value per name.
    """
    merged: dict[str, tuple[str, str]] = {}
    for name, value in response.headers:
        key = name.lower()
        merged[key] = (name, f"{merged[key][1]}, {value}") if key in merged else (name, value)
    if "content-length" not in merged and response.stream is None:
        merged["content-length"] = ("Content-Length", str(len(response.body)))
    headers = list(merged.values())
    if response.stream is not None:
        # Streamed: no length; each chunk comes from the core's loop as it is produced.
        django_response: HttpResponseBase = StreamingHttpResponse(
            get_stack().iterate(response.stream),
            status=response.status,
            content_type=response.content_type or None,
        )
    else:
        django_response = DjangoResponse(
            response.body, status=response.status, content_type=response.content_type or None
        )
    for name, value in headers:
        django_response.headers[name] = value
    # CoreResponseMiddleware restores exactly these headers after Django's own middleware ran.
    setattr(django_response, CORE_HEADERS_ATTRIBUTE, headers)
    return django_response


class OperationView(APIView):
    """The operations of one contract path, served by the core.

    Configure it per path: ``OperationView.as_view(operations={"GET": op, ...})``. Only those
    methods are dispatched; any other one (OPTIONS and HEAD included) gets the core's 405.
    """

    operations: dict[str, Operation] | None = None

    # The core authenticates (and will rate-limit) every request itself, so DRF must do none of it:
    # then a missing or revoked key gets the core's 401, byte-for-byte the FastAPI backend's.
    authentication_classes: list[type[Any]] = []
    permission_classes: list[type[Any]] = []
    throttle_classes: list[type[Any]] = []
    # No browsable API, no parsing by DRF: the core renders and parses.
    renderer_classes: list[type[BaseRenderer]] = [JSONRenderer]
    parser_classes: list[type[Any]] = []

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        """The view of ``operations={method: operation}``, dispatching only those methods."""
        operations = initkwargs.get("operations")
        if not operations or not all(isinstance(op, Operation) for op in operations.values()):
            raise TypeError("OperationView.as_view() needs operations={method: Operation}")
        initkwargs.setdefault("http_method_names", [method.lower() for method in operations])
        return super().as_view(**initkwargs)  # type: ignore[no-any-return]

    @property
    def default_response_headers(self) -> dict[str, str]:
        """None: DRF would add ``Allow`` and ``Vary`` to every response; the core's stand alone."""
        return {}

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        """Always JSON: the core ignores ``Accept`` (DRF would answer 406 to some)."""
        renderer = self.get_renderers()[0]
        return renderer, renderer.media_type

    def serve(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Pass the request to the core and its answer back."""
        django_request: DjangoRequest = request._request
        method = django_request.method or ""
        assert self.operations is not None  # as_view() refuses a view without operations
        operation = self.operations[method]
        stack = get_stack()
        body = b""
        if operation.request_model is not None and not operation.form:
            # One byte over the limit is enough for the core to answer 413.
            body = read_body(django_request, stack.stack.body_limit(operation) + 1)
        core_request = HttpRequest(
            method=method,
            path=django_request.path,
            headers=headers_of(django_request),
            body=body,
            path_params={name: str(value) for name, value in kwargs.items()},
            query={name: django_request.GET[name] for name in django_request.GET},
            # An upload is read by the core as it arrives, with the operation's limit.
            stream=read_sync_stream(body_reader(django_request)) if operation.form else None,
            client=django_request.META.get("REMOTE_ADDR") or None,
        )
        return to_django_response(stack.call(stack.stack.handle, operation, core_request))

    # Whatever the path's methods, the same view serves them (only those are dispatched).
    get = post = put = patch = delete = serve

    def http_method_not_allowed(
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        """The core's 405, with ``Allow`` naming the path's methods."""
        django_request: DjangoRequest = request._request
        # ``Allow`` from this view's operations: the path may be under a host's prefix.
        return to_django_response(
            method_not_allowed_response(
                django_request.method or "",
                django_request.path,
                headers_of(django_request),
                sorted(self.operations or {}),
            )
        )


@csrf_exempt  # an API 404 must not turn into Django's CSRF 403 for a POST
def not_found(request: DjangoRequest, exception: Exception | None = None) -> HttpResponseBase:
    """The core's 404 problem for a path nothing serves (``handler404`` and the catch-all route)."""
    return to_django_response(not_found_response(request.path, headers_of(request)))


# -- API documentation: both backends' URLs, answered by the core ----------------------------------


@csrf_exempt  # read-only pages: a POST gets the core's 405, not Django's CSRF 403
def docs(request: DjangoRequest, docs_path: str = "", asset: str = "") -> HttpResponseBase:
    """A page, document or asset of the API docs (``synthstack_core.apidocs``), any method.

    The route gives the path within SynthStack's URLs (``docs_path``, or the ``asset``'s name);
    what precedes it in ``request.path`` is the prefix a host project includes them under.
    """
    relative = docs_path or ASSET_PREFIX + asset
    root_path = request.path.removesuffix(relative)
    return to_django_response(
        docs_response(request.method or "", relative, headers_of(request), root_path=root_path)
    )
