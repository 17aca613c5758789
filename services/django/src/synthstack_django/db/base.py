"""Django's PostgreSQL backend, completed with the embedded server's parameters when needed."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base

from synthstack_django.database import django_parameters, embedded_database_url

__all__ = ["DatabaseWrapper"]


class DatabaseWrapper(base.DatabaseWrapper):
    """PostgreSQL; with no ``NAME``, the embedded server (started at the first connection)."""

    def get_connection_params(self) -> dict[str, Any]:
        """Django's parameters, after filling in the embedded server's if none are set."""
        if not self.settings_dict.get("NAME"):
            self.settings_dict.update(django_parameters(embedded_database_url()))
        params: dict[str, Any] = super().get_connection_params()
        return params
