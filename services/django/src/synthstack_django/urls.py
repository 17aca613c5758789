"""Routes: one per operation of the core's registry, and the API docs.

The API paths are the contract's exactly (no trailing slash, and no ``CommonMiddleware`` to add
one). The API docs are both backends' URL sets (``synthstack_core.apidocs.DOCS_PATHS``: this
backend's ``/api/v1/docs/``... and FastAPI's ``/docs``...) and their assets, all answered by the
core. Any other path gets the core's 404 problem, whatever ``DEBUG`` says, through the final
catch-all route.

A host project includes them under a prefix (``path("ml/", include("synthstack_django.urls"))``):
problems then name the full path, and the docs refer to the prefix. The Django admin is not here:
SynthStack's models are registered on Django's default admin site, so a host's admin shows them,
and the standalone project routes ``admin/`` itself (:mod:`synthstack_django.project_urls`).
"""

from __future__ import annotations

import re

from django.urls import URLPattern, URLResolver, path, re_path

from synthstack_core.apidocs import ASSET_PREFIX, DOCS_PATHS
from synthstack_core.operations import routes
from synthstack_django import views

__all__ = ["django_route", "urlpatterns"]

_TEMPLATE_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def django_route(contract_path: str) -> str:
    """A contract path as a Django route: no leading slash, ``{name}`` as ``<str:name>``."""
    return _TEMPLATE_PARAMETER.sub(r"<str:\1>", contract_path.removeprefix("/"))


urlpatterns: list[URLPattern | URLResolver] = [
    *(
        path(django_route(template), views.OperationView.as_view(operations=by_method))
        for template, by_method in routes().items()
    ),
    *(
        path(docs_path.removeprefix("/"), views.docs, {"docs_path": docs_path})
        for docs_path in DOCS_PATHS
    ),
    re_path(rf"^{re.escape(ASSET_PREFIX.removeprefix('/'))}(?P<asset>.+)\Z", views.docs),
    # Last: with DEBUG on, Django would answer an unknown path with its own HTML page instead of
    # calling handler404, and the API's 404 must not depend on DEBUG. (Under a host's prefix, every
    # path below it is SynthStack's: an unknown one gets the core's 404 too.)
    re_path(r"", views.not_found),
]
