"""The standalone project's routes (``ROOT_URLCONF``): the Django admin, then the API.

A host project does not use this module: it includes :mod:`synthstack_django.urls` under a prefix
of its own and keeps its own admin (which shows SynthStack's models).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

__all__ = ["handler404", "urlpatterns"]

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", admin.site.urls),
    # Everything else, its unknown paths included (the core's 404), is the API's.
    path("", include("synthstack_django.urls")),
]

handler404 = "synthstack_django.views.not_found"
