"""The embedded PostgreSQL's holders (real servers, real processes): a holder whose process is gone,
or whose PID another process now has, does not keep the server running; a live one does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthstack_core.stores.embedded import HOLDERS_FILE, STARTED_FILE, EmbeddedPostgres


def _postmaster_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except ProcessLookupError:
        return False
    return True


def _stopped_within(pgdata: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _postmaster_running(pgdata) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _postmaster_running(pgdata)


def _add_holder(pgdata: Path, pid: int, started: float | None) -> None:
    holders = pgdata / HOLDERS_FILE
    holders.write_text(json.dumps([*json.loads(holders.read_text()), pid]))
    if started is not None:
        record = pgdata / STARTED_FILE
        record.write_text(json.dumps({**json.loads(record.read_text()), str(pid): started}))


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(__file__).parents[3] / ".pytest-services" / f"holders-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    yield path
    if _postmaster_running(path / "postgres"):
        pid = int((path / "postgres" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        _stopped_within(path / "postgres", 15)
    shutil.rmtree(path, ignore_errors=True)


def test_a_reused_pid_does_not_hold_and_a_live_holder_does(data_dir: Path) -> None:
    other = subprocess.Popen(["sleep", "120"])  # a live process that is not a holder
    try:
        embedded = EmbeddedPostgres(data_dir)
        embedded.start()
        pgdata = embedded.pgdata
        recorded = json.loads((pgdata / STARTED_FILE).read_text())
        assert set(recorded) == {str(os.getpid())}
        # The list names `other`'s PID, recorded as a process that started long before it: a
        # holder that died, its PID reused.
        _add_holder(pgdata, other.pid, started=1_000_000.0)
        embedded.stop()
        assert _stopped_within(pgdata, 15), "a reused PID kept PostgreSQL running"
        assert json.loads((pgdata / HOLDERS_FILE).read_text()) == []
        assert json.loads((pgdata / STARTED_FILE).read_text()) == {}

        # A live holder the module did not record (another program using the wheel) counts.
        embedded = EmbeddedPostgres(data_dir)
        embedded.start()
        _add_holder(pgdata, other.pid, started=None)
        embedded.stop()
        time.sleep(1)
        assert _postmaster_running(pgdata), "a live holder's server was stopped"
        assert json.loads((pgdata / HOLDERS_FILE).read_text()) == [other.pid]
    finally:
        other.kill()
        other.wait()
    # Gone now: the next process's clean stop stops the server.
    embedded = EmbeddedPostgres(data_dir)
    embedded.start()
    assert json.loads((pgdata / HOLDERS_FILE).read_text()) == [os.getpid()]
    embedded.stop()
    assert _stopped_within(pgdata, 15), "a dead holder kept PostgreSQL running"
