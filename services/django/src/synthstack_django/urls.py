"""Routes: one per operation of the core's registry, the API docs, and the Django admin.

The API paths are the contract's exactly (no trailing slash, and no ``CommonMiddleware`` to add
one). The API docs are both backends' URL sets (``synthstack_core.apidocs.DOCS_PATHS``: this
backend's ``/api/v1/docs/``... and FastAPI's ``/docs``...) and their assets, all answered by the
core. Any other path gets the core's 404 problem, whatever ``DEBUG`` says, through the final
catch-all route.
"""

from __future__ import annotations

import re

from django.contrib import admin
from django.urls import URLPattern, URLResolver, path, re_path

from synthstack_core.apidocs import ASSET_PREFIX, DOCS_PATHS
from synthstack_core.operations import routes
from synthstack_django import views

__all__ = ["django_route", "handler404", "urlpatterns"]

_TEMPLATE_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def django_route(contract_path: str) -> str:
    """A contract path as a Django route: no leading slash, ``{name}`` as ``<str:name>``."""
    return _TEMPLATE_PARAMETER.sub(r"<str:\1>", contract_path.removeprefix("/"))


urlpatterns: list[URLPattern | URLResolver] = [
    *(
        path(django_route(template), views.OperationView.as_view(operations=by_method))
        for template, by_method in routes().items()
    ),
    *(path(docs_path.removeprefix("/"), views.docs) for docs_path in DOCS_PATHS),
    re_path(rf"^{re.escape(ASSET_PREFIX.removeprefix('/'))}.+\Z", views.docs),
    path("admin/", admin.site.urls),
    # Last: with DEBUG on, Django would answer an unknown path with its own HTML page instead of
    # calling handler404, and the API's 404 must not depend on DEBUG.
    re_path(r"", views.not_found),
]

handler404 = "synthstack_django.views.not_found"
