"""What the tests of jobs share: the environment of the processes, the in-process API, a real
``synthstack worker`` process, documents to index, and waiting for a job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from synthstack_core import Settings

ROOT = Path(__file__).parents[2]
KEY = "jobs-worker-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ASYNC = {**AUTH, "Prefer": "respond-async"}
#: Variables of the outer environment that would change what the processes here do.
UNSET = {"REDIS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "EMBEDDING_MODEL"}


def environment(
    database_url: str, worker: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of the API and of the workers (``extra``: more settings)."""
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    env.update(
        {
            "DATABASE_URL": database_url,
            "SYNTHSTACK_ENV": "development",
            "SYNTHSTACK_API_KEYS": f"jobs-tenant:{KEY}",
            "SYNTHSTACK_WORKER": worker,
            "SYNTHSTACK_JOB_STALLED_SECONDS": "3",
            "SYNTHSTACK_KEY_CACHE_SECONDS": "0",
            "SYNTHSTACK_ANALYSIS_LLM": "off",
            # A worker's usage (audio seconds) is in the database a second after it counts it.
            "SYNTHSTACK_USAGE_FLUSH_SECONDS": "1",
            "HF_HUB_OFFLINE": "1",
            **(extra or {}),
        }
    )
    return env


def api_client(
    database_url: str,
    worker: str,
    patch: pytest.MonkeyPatch,
    extra: Mapping[str, str] | None = None,
) -> Iterator[httpx.Client]:
    """The FastAPI app in-process, its settings from the environment ``patch`` sets."""
    from synthstack_fastapi import create_app

    for name in UNSET:
        patch.delenv(name, raising=False)
    for name, value in environment(database_url, worker, extra).items():
        if name.startswith(("SYNTHSTACK_", "DATABASE_URL", "OPENAI_", "EMBEDDING_")):
            patch.setenv(name, value)
    with TestClient(create_app(Settings()), raise_server_exceptions=False) as client:
        yield client


class Worker:
    """A ``synthstack worker`` process, its output in a file."""

    def __init__(
        self,
        database_url: str,
        log: Path,
        *,
        concurrency: int = 1,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.log = log
        command = [sys.executable, "-m", "synthstack_core.cli", "worker"]
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [*command, "--concurrency", str(concurrency)],
                env=environment(database_url, "none", extra),
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    def output(self) -> str:
        """What it wrote so far."""
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def document(paragraphs: int, topic: str = "cats") -> str:
    return "\n\n".join(
        f"Paragraph {n}: {topic} purr when they are content, and kitten number {n} chases yarn "
        f"around room {n * 7}, while dog {n} barks at stranger {n * 3} in the garden."
        for n in range(paragraphs)
    )


def wait_for(
    client: httpx.Client,
    job_id: str,
    until: Any,
    timeout: float,
    worker: Worker | None = None,
) -> dict[str, Any]:
    """Poll the job until ``until(job)``; fails after ``timeout`` seconds (with what ``worker``
    wrote)."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}", headers=AUTH).json()
        if until(job):
            return job
        if time.monotonic() >= deadline:
            written = worker.output()[-6000:] if worker is not None else ""
            raise AssertionError(f"job never got there: {job}\n{written}")
        time.sleep(0.1)


def ended(job: dict[str, Any]) -> bool:
    return job["status"] in {"succeeded", "failed", "cancelled"}
