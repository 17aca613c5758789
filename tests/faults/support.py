"""What the fault tests share: a real ``synthstack serve`` process (uvicorn for FastAPI, gunicorn
for Django) on a database and a Redis the test owns, and a PostgreSQL the test can stop and start
again on the same socket."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from synthstack_core.stores.database import migrate
from synthstack_core.stores.embedded import EmbeddedPostgres

ROOT = Path(__file__).parents[2]
KEY = "faults-tenant-key-0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
#: Variables of the outer environment that would change what the servers here do.
UNSET = {
    "DATABASE_URL",
    "REDIS_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "EMBEDDING_MODEL",
    "PROMETHEUS_MULTIPROC_DIR",
    "SYNTHSTACK_RATE_LIMITS",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def owned_postgres(name: str) -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL of the test's own (migrated), beside the session's server, in the folder the
    embedded servers' user may enter; ``stop()`` and ``start()`` it for an outage (``pg_ctl stop``,
    fast: every session is cut; started again on the same socket). Yields it and its URL."""
    postgres = EmbeddedPostgres(ROOT / ".pytest-services" / f"{name}-{os.getpid()}")
    url = postgres.start()
    try:
        migrate(url)
        yield postgres, url
    finally:
        postgres.stop()
        shutil.rmtree(postgres.data_dir, ignore_errors=True)


class Server:
    """``synthstack serve --backend <backend>`` with one worker, its output in ``log``."""

    def __init__(
        self,
        backend: str,
        database_url: str,
        log: Path,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.log = log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {key: value for key, value in os.environ.items() if key not in UNSET}
        env.update(
            {
                "DATABASE_URL": database_url,
                "SYNTHSTACK_ENV": "development",
                "SYNTHSTACK_API_KEYS": f"faults:{KEY}",
                "SYNTHSTACK_WORKER": "none",
                "SYNTHSTACK_ANALYSIS_LLM": "off",
                "SYNTHSTACK_DATA_DIR": str(log.parent / f"data-{self.port}"),
                "DJANGO_SECRET_KEY": "faults-secret-key-not-for-production-use",
                "HF_HUB_OFFLINE": "1",
                **(extra or {}),
            }
        )
        command = [sys.executable, "-m", "synthstack_core.cli", "serve", "--backend", backend,
                   "--port", str(self.port), "--workers", "1"]  # fmt: skip
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 240) -> None:
        """Until ``/ready`` answers 200 (the embedding model loaded)."""
        started = time.monotonic()
        while True:
            assert self.process.poll() is None, self.output()[-6000:]
            try:
                if httpx.get(f"{self.base}/ready", timeout=30).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() - started < timeout, self.output()[-6000:]
            time.sleep(0.25)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
