"""Keep the core's responses exactly as the core built them.

Django's stock middleware adds headers to every response (``SecurityMiddleware``:
``Referrer-Policy`` and ``Cross-Origin-Opener-Policy``; ``XFrameOptionsMiddleware``:
``X-Frame-Options``). They matter for the admin's HTML pages, but on an API response they would make
the Django backend answer differently from the FastAPI one. The views mark each response the core
rendered (:func:`synthstack_django.views.to_django_response`); this middleware, the outermost one,
puts back exactly the core's headers, in the core's order, on those responses only.

It also answers HEAD without a body (Django would send one; a WSGI server drops it with a warning).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase

__all__ = ["CORE_HEADERS_ATTRIBUTE", "CoreResponseMiddleware"]

#: The attribute a view sets on a Django response to the core's ``[(name, value), ...]`` headers.
CORE_HEADERS_ATTRIBUTE = "synthstack_core_headers"


class CoreResponseMiddleware:
    """Restore the core's headers on responses marked with :data:`CORE_HEADERS_ATTRIBUTE`;
    answer HEAD without a body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Run the rest of the stack; restore the core's headers on a response it rendered."""
        response = self.get_response(request)
        core_headers: list[tuple[str, str]] | None = getattr(response, CORE_HEADERS_ATTRIBUTE, None)
        if core_headers is not None:
            for name in list(response.headers):
                del response.headers[name]
            for name, value in core_headers:
                response.headers[name] = value
        if request.method == "HEAD" and not response.streaming:
            # The headers of the full response, without its body (RFC 9110, section 9.3.2): what
            # an ASGI server does for the FastAPI backend, and gunicorn expects of a WSGI app.
            response.content = b""
        return response
