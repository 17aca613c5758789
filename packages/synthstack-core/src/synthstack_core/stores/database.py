"""PostgreSQL, the system of record: URLs, the async engine, and migrations.

``DATABASE_URL`` may be any PostgreSQL URL (``postgresql://``, ``postgres://``, with or without a
driver); the core always talks through psycopg 3. Migrations run under an advisory lock so several
workers starting together migrate once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import sqlalchemy.ext.asyncio
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

__all__ = [
    "Database",
    "connection_parameters",
    "core_head",
    "migrate",
    "sqlalchemy_url",
    "timeout_parameters",
    "with_timeouts",
]

_MIGRATIONS = Path(__file__).with_name("migrations")
# An arbitrary constant: the advisory lock that serialises migrations across processes.
logger = logging.getLogger(__name__)

_MIGRATION_LOCK_ID = 7_316_202_611


def sqlalchemy_url(database_url: str) -> URL:
    """``database_url`` with the psycopg 3 driver, whatever scheme it was given with."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    if url.get_backend_name() != "postgresql":
        raise ValueError("DATABASE_URL must be a PostgreSQL URL")
    return url.set(drivername="postgresql+psycopg")


def with_timeouts(database_url: str, connect_timeout: int) -> str:
    """``database_url`` with libpq's timeouts, so that a server that stops answering costs
    seconds, not the operating system's minutes (``SYNTHSTACK_DATABASE_CONNECT_TIMEOUT``).

    - ``connect_timeout``: a new connection (a refused one fails at once anyway; a host that is
      gone or a server that accepts and never answers would otherwise wait for TCP to give up,
      about two minutes);
    - over TCP, a pooled connection whose server went silent (a network partition, a host that
      died without closing its sockets): TCP keep-alives probe it after ``connect_timeout``
      seconds of silence and drop it after two unanswered probes, and ``tcp_user_timeout`` drops
      it when what was sent is not acknowledged within three times ``connect_timeout``; a slow
      query is not cut (the server's host acknowledges the probes). libpq ignores both on a Unix
      socket.

    A parameter the URL already has is left as it is; ``connect_timeout`` 0 adds nothing.
    """
    defaults = timeout_parameters(connect_timeout)
    if not defaults:
        return database_url
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    missing = {name: value for name, value in defaults.items() if name not in url.query}
    return url.update_query_dict(missing).render_as_string(hide_password=False)


def timeout_parameters(connect_timeout: int) -> dict[str, str]:
    """The libpq parameters :func:`with_timeouts` adds (none for ``connect_timeout`` 0)."""
    if connect_timeout <= 0:
        return {}
    return {
        "connect_timeout": str(connect_timeout),
        "keepalives": "1",
        "keepalives_idle": str(connect_timeout),
        "keepalives_interval": str(connect_timeout),
        "keepalives_count": "2",
        "tcp_user_timeout": str(3 * connect_timeout * 1000),
    }


def connection_parameters(database_url: str) -> dict[str, Any]:
    """Host, port, name, user and password of ``database_url`` (for Django's ``DATABASES``).

    A Unix-socket URL (``postgresql://user@/db?host=/path``) gives the socket folder as host.
    """
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    return {
        "NAME": parts.path.lstrip("/") or "postgres",
        "USER": parts.username or query.get("user", ""),
        "PASSWORD": parts.password or query.get("password", ""),
        "HOST": parts.hostname or query.get("host", ""),
        "PORT": str(parts.port or query.get("port", "")),
    }


class Database:
    """The async engine and session factory of one process."""

    #: What readiness calls it.
    kind = "postgresql"

    def __init__(self, database_url: str, *, pool_size: int = 5) -> None:
        self.url = sqlalchemy_url(database_url)
        # Looked up at each call: with tracing on, OpenTelemetry's SQLAlchemy instrumentation wraps
        # the module's function, so the engines made after it trace their queries.
        self.engine: AsyncEngine = sqlalchemy.ext.asyncio.create_async_engine(
            self.url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True, pool_recycle=1800
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> AsyncSession:
        """A new session; use it as an async context manager."""
        return self.sessions()

    async def ping(self) -> str:
        """Run ``SELECT 1`` (raises when PostgreSQL does not answer); returns :attr:`kind`."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return self.kind

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


class _AlembicPreamble(logging.Filter):
    """Re-levels to DEBUG the two lines Alembic logs at INFO on every run, even when there is
    nothing to do ("Context impl PostgresqlImpl.", "Will assume transactional DDL."), and its line
    per revision run: :func:`migrate` logs one line for the whole upgrade (a new database runs
    every revision, and their lines would bury what a server says when it starts)."""

    PREAMBLE = ("Context impl ", "Will assume ", "Running upgrade ")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.getMessage().startswith(self.PREAMBLE):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def _quiet_alembic_preamble() -> None:
    migration_log = logging.getLogger("alembic.runtime.migration")
    if not any(isinstance(existing, _AlembicPreamble) for existing in migration_log.filters):
        migration_log.addFilter(_AlembicPreamble())


def core_head() -> str:
    """The newest revision of the core's own migrations (not counting any module's)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None  # the core ships its revisions
    return head


def _versions(connection: Any) -> list[str]:
    """The revisions the database is at (one per branch: the core's, each module's)."""
    exists = connection.execute(text("SELECT to_regclass('synthstack_alembic_version')")).scalar()
    if exists is None:
        return []
    rows = connection.execute(text("SELECT version_num FROM synthstack_alembic_version"))
    return sorted(str(row) for row in rows.scalars())


def migrate(database_url: str, revision: str = "heads", locations: Sequence[Path] = ()) -> None:
    """Bring the schema to ``revision`` (blocking; call it from a thread in async code).

    ``locations``: more folders of revisions (modules' own tables, each a branch of its own beside
    the core's), so ``heads`` (``head`` means the same) is the latest of every branch.
    """
    _quiet_alembic_preamble()
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            try:
                config = Config()
                config.set_main_option("script_location", str(_MIGRATIONS))
                config.set_main_option("path_separator", "os")
                config.set_main_option(
                    "version_locations",
                    os.pathsep.join(str(path) for path in (_MIGRATIONS / "versions", *locations)),
                )
                config.attributes["connection"] = connection
                before = _versions(connection)
                command.upgrade(config, "heads" if revision == "head" else revision)
                connection.commit()
                after = _versions(connection)
                if after != before:
                    logger.info(
                        "database schema upgraded from %s to %s",
                        ", ".join(before) or "nothing",
                        ", ".join(after) or "nothing",
                    )
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID}
                )
                connection.commit()
    finally:
        engine.dispose()
