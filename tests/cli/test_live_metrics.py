"""Metrics and JSON logs of real servers with two workers, as ``synthstack serve`` runs them
(uvicorn for FastAPI, gunicorn for Django).

Every worker writes its metrics to the folder ``serve`` made for this start
(``PROMETHEUS_MULTIPROC_DIR``); one scrape, whichever worker answers it, sums them: the requests
sent are counted exactly although two processes served them (each has its own file there), and the
pool gauge is both workers' pools, while the jobs gauge (read from the database) is not summed. The
folder is removed when the server stops. With ``SYNTHSTACK_LOG_FORMAT=json`` every request is one
JSON line on the server's stderr.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).parents[2]
KEY = "live-metrics-key-0001"
TOKEN = "live-metrics-token-0001"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _metrics_dir(serve_pid: int) -> Path:
    """The folder ``serve`` handed its server (read from the server's environment)."""
    (server,) = _children(serve_pid)
    environ = Path(f"/proc/{server}/environ").read_bytes().split(b"\0")
    for entry in environ:
        name, _, value = entry.partition(b"=")
        if name == b"PROMETHEUS_MULTIPROC_DIR":
            return Path(value.decode())
    raise AssertionError("the server has no PROMETHEUS_MULTIPROC_DIR")


def _requests_counted(text: str) -> dict[tuple[str, str], int]:
    counted: dict[tuple[str, str], int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "synthstack_http_requests_total":
                key = (sample.labels["operation_id"], sample.labels["status"])
                counted[key] = int(sample.value)
    return counted


def _jobs(text: str) -> dict[str, float]:
    return {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "synthstack_jobs"
    }


def _scrape(base: str, headers: dict[str, str]) -> str:
    response = httpx.get(f"{base}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def _gauge(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"no {name}")


@pytest.mark.parametrize("backend", ["fastapi", "django"])
def test_two_workers_are_summed_in_one_scrape(
    backend: str, module_database_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": module_database_url,
        "SYNTHSTACK_API_KEYS": KEY,
        # Production: only the token opens the metrics, even from this machine.
        "SYNTHSTACK_ENV": "production",
        "DJANGO_SECRET_KEY": "live-metrics-secret-key-not-for-production-use",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "SYNTHSTACK_METRICS_TOKEN": TOKEN,
        "SYNTHSTACK_LOG_FORMAT": "json",
        "SYNTHSTACK_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("REDIS_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "synthstack_core.cli", "serve", "--backend", backend,
               "--port", str(port), "--workers", "2"]  # fmt: skip
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT
        )
    base = f"http://127.0.0.1:{port}"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    metrics_dir: Path | None = None
    try:
        started = time.monotonic()
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() - started < 240, "not serving within four minutes"
            time.sleep(0.25)
        metrics_dir = _metrics_dir(server.pid)
        # Both workers have started their service: each reports its pool (5 connections) as it
        # starts. (Uvicorn replaces a worker that is slow to answer its health check, as on a busy
        # machine; the pools of replaced ones leave the live sum.)
        while _gauge(_scrape(base, bearer), "synthstack_db_pool_size") != 10:
            assert time.monotonic() - started < 240, "both workers did not start"
            time.sleep(0.5)
        # What the workers counted before (polls that waited while the workers booted included).
        before = _requests_counted(_scrape(base, bearer))

        def health(_: int) -> int:
            # A new connection each time, so that either worker may take it.
            headers = {"Connection": "close"}
            return httpx.get(f"{base}/health", headers=headers, timeout=30).status_code

        sent = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(20):  # bursts until both workers have served (and so counted) some
                assert set(pool.map(health, range(16))) == {200}
                sent += 16
                if len(list(metrics_dir.glob("counter_*.db"))) >= 2:
                    break
        assert len(list(metrics_dir.glob("counter_*.db"))) == 2, "one worker served everything"

        # A job no worker runs (production: none in the server): queued, counted once.
        job = httpx.post(
            f"{base}/api/v1/rag/index",
            headers={"Authorization": f"Bearer {KEY}", "Prefer": "respond-async"},
            json={"content": "A queued heron.", "source": "q.txt", "collection": "live"},
            timeout=30,
        )
        assert job.status_code == 202, job.text
        scrape = httpx.get(f"{base}/metrics", headers=bearer, timeout=30)
        assert scrape.status_code == 200, scrape.text
        # Read from the database by the worker that answered, not summed over the two.
        with psycopg.connect(module_database_url) as connection:
            row = connection.execute("SELECT count(*) FROM jobs WHERE status = 'queued'").fetchone()
        assert row is not None and row[0] >= 1
        assert _jobs(scrape.text) == {"queued": row[0], "running": 0}
        after = _requests_counted(scrape.text)
        # Counted exactly, summed over both workers.
        health_key = ("health-liveness", "200")
        assert after[health_key] - before.get(health_key, 0) == sent
        assert after[("metrics", "200")] - before.get(("metrics", "200"), 0) == 1
        # Each worker's pool (5 connections) is in the live sum.
        assert _gauge(scrape.text, "synthstack_db_pool_size") == 10
        assert httpx.get(f"{base}/metrics", timeout=30).status_code == 404  # no token, production
        last = _requests_counted(httpx.get(f"{base}/metrics", headers=bearer, timeout=30).text)
        assert last[("metrics", "200")] == after[("metrics", "200")] + 1
        assert last[("metrics", "404")] == 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert metrics_dir is not None and not metrics_dir.exists()  # removed with the server

    lines = log.read_text().splitlines()
    access = [json.loads(line) for line in lines if '"logger": "synthstack.access"' in line]
    served = [a for a in access if a["operationId"] == "health-liveness"]
    assert len(served) == after[health_key]  # one line per request counted
    assert {a["operationId"] for a in access} == {"health-liveness", "metrics", "rag-index"}
    assert all(
        a["level"] == "INFO" and re.match(r"\d{4}-\d\d-\d\dT", a["timestamp"]) for a in access
    )
    # The servers' own lines are JSON too.
    server_lines = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(entry["logger"].startswith(("uvicorn", "gunicorn")) for entry in server_lines)
    assert TOKEN not in log.read_text() and KEY not in log.read_text()
