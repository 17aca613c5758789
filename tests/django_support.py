"""Configure the Django project in a test process (shared by the Django adapter and parity tests).

Django can be set up once per process, but several test modules may each bring their own database
and environment. :func:`configure_django` therefore sets Django up on the first call only; a later
call re-points Django's ``default`` connection when the database changed, and closes the core's
service so that the next request builds it again from the new environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["configure_django", "configured_database_url"]

SETTINGS_MODULE = "synthstack_django.settings"
TEST_SECRET_KEY = "synthstack-tests-only-secret-key-not-for-production"

_state: dict[str, str] = {}


def configured_database_url() -> str | None:
    """The database Django was last configured with (``None`` before the first call)."""
    return _state.get("database_url")


def configure_django(database_url: str, extra_env: Mapping[str, str]) -> None:
    """Point Django and the core at ``database_url`` with ``extra_env`` set in ``os.environ``.

    The first call sets ``DJANGO_SETTINGS_MODULE`` (and a test ``DJANGO_SECRET_KEY`` unless one is
    given), runs ``django.setup()`` and ``migrate`` (Django's tables, and the core's through
    ``synthstack_django``'s migration running the core's Alembic migrations). Later
    calls only update the environment, re-point Django when ``database_url`` changed (migrating
    that database too), and reset the core's service. Settings read once by Django's settings
    module (``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``, ``DJANGO_ALLOWED_HOSTS``) keep their first
    values.
    """
    env = {"DJANGO_SECRET_KEY": TEST_SECRET_KEY, **extra_env, "DATABASE_URL": database_url}
    os.environ.update(env)
    previous = _state.get("database_url")
    if previous == database_url:
        _reset_core()
        return

    if previous is None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
        import django

        django.setup()
    else:
        _repoint_django(database_url)
        _reset_core()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    _state["database_url"] = database_url


def _repoint_django(database_url: str) -> None:
    """Make Django's ``default`` connection use ``database_url`` from its next query on."""
    from django.conf import settings
    from django.db import connections

    from synthstack_django.database import django_parameters

    connections.close_all()
    # Every connection wrapper holds this very dict, so the change reaches them all.
    settings.DATABASES["default"].update(django_parameters(database_url))


def _reset_core() -> None:
    """Close the core's service: the next request starts it again from ``os.environ``."""
    from synthstack_django.service import reset_stack

    reset_stack()
