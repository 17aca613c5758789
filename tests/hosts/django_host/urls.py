"""The host's URLs: its own view, and SynthStack under ``ml/``."""

from __future__ import annotations

from django.urls import include, path

from tests.hosts.django_host.views import WhoAmI

urlpatterns = [
    path("whoami/", WhoAmI.as_view()),
    path("ml/", include("synthstack_django.urls")),
]
