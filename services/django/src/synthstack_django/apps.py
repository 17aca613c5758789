"""The Django app of SynthStack: the admin over the core's tenants and API keys."""

from __future__ import annotations

from django.apps import AppConfig


class SynthStackConfig(AppConfig):
    """``synthstack_django``."""

    name = "synthstack_django"
    label = "synthstack_django"
    verbose_name = "SynthStack"
    default_auto_field = "django.db.models.BigAutoField"
