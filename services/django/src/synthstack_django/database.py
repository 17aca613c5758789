"""The core's database as Django sees it, and Django's as the core sees it.

SynthStack keeps its tables in one PostgreSQL database, which Django's ``default`` connection also
reads (the admin's models) and migrates (``manage.py migrate`` runs the core's Alembic migrations,
see ``migrations/0003_core_schema.py``). In a host project that database is the host's ``default``
unless ``DATABASE_URL`` names another; the standalone project (:mod:`synthstack_django.settings`)
uses ``DATABASE_URL``, or the embedded PostgreSQL, started at the first connection
(:mod:`synthstack_django.db`), never at import.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL, make_url

from synthstack_core import EmbeddedPostgres, Settings, migrate_database

__all__ = [
    "core_database_url",
    "django_parameters",
    "embedded_database_url",
    "upgrade_core_schema",
    "url_of",
]

_lock = threading.Lock()
_embedded: list[EmbeddedPostgres] = []


def django_parameters(database_url: str) -> dict[str, Any]:
    """``NAME``, ``USER``, ``PASSWORD``, ``HOST`` and ``PORT`` of a PostgreSQL URL (a Unix-socket
    URL, ``postgresql://user@/db?host=/folder``, gives the socket's folder as ``HOST``)."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    query_host = url.query.get("host", "")
    query_port = url.query.get("port", "")
    return {
        "NAME": url.database or "postgres",
        "USER": url.username or "",
        "PASSWORD": url.password or "",
        "HOST": url.host or (query_host if isinstance(query_host, str) else query_host[0]),
        "PORT": str(url.port or (query_port if isinstance(query_port, str) else query_port[0])),
    }


def url_of(settings_dict: dict[str, Any]) -> str:
    """The PostgreSQL URL of a Django connection's settings (a socket folder as ``?host=``)."""
    host = str(settings_dict.get("HOST") or "")
    port = str(settings_dict.get("PORT") or "")
    query: dict[str, str] = {}
    if host.startswith("/"):
        query["host"] = host
        if port:
            query["port"] = port
    url = URL.create(
        "postgresql",
        username=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        host=None if host.startswith("/") or not host else host,
        port=int(port) if port and not host.startswith("/") else None,
        database=settings_dict.get("NAME") or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def embedded_database_url() -> str:
    """The embedded PostgreSQL of ``SYNTHSTACK_DATA_DIR``, started (or joined) on the first call;
    its URL is published as ``DATABASE_URL`` so that the core in this process uses it too."""
    with _lock:
        if not _embedded:
            server = EmbeddedPostgres(Settings().data_dir)
            os.environ["DATABASE_URL"] = server.start()
            # Kept: the server stops when its last holder exits (its own exit handler).
            _embedded.append(server)
        return os.environ["DATABASE_URL"]


def core_database_url() -> str:
    """The database of the core running in this Django process: ``DATABASE_URL``, else Django's
    ``default`` database (connecting to it first, which starts the embedded one if need be)."""
    configured = Settings().database_url
    if configured:
        return configured
    from django.db import connections

    connection = connections["default"]
    connection.ensure_connection()
    return url_of(connection.settings_dict)


def upgrade_core_schema(revision: str) -> Callable[[Any, Any], None]:
    """A ``RunPython`` function bringing the core's schema, on the database Django migrates, to the
    core's Alembic ``revision`` (under the core's advisory lock; idempotent)."""

    def upgrade(apps: Any, schema_editor: Any) -> None:
        connection = schema_editor.connection
        connection.ensure_connection()
        migrate_database(url_of(connection.settings_dict), revision)

    return upgrade
