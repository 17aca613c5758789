"""The metrics' multi-process mode with real processes, the database pool gauges, the jobs gauge
(read from the database at each scrape), who counts as a loopback caller, the observability
settings, and the JSON log format."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from synthstack_core import Settings, SynthStack
from synthstack_core.features.observability import JOB_COUNT_TIMEOUT_SECONDS, loopback_address
from synthstack_core.http import HttpRequest, HttpResponse
from synthstack_core.logs import JsonLogFormatter, configure_logging
from synthstack_core.metrics import track_pool, untrack_pool
from synthstack_core.observability import _problem_code
from synthstack_core.operations import by_id as operation
from synthstack_core.stores.database import Database

# A worker: serves `count` requests of operation `x` through the pipeline's observability step
# (one of them still in flight), says so, and waits to be told to exit.
WORKER = textwrap.dedent(
    """
    import sys
    from synthstack_core.http import HttpRequest, HttpResponse
    from synthstack_core.observability import ObservedRequest

    count = int(sys.argv[1])
    for _ in range(count):
        ObservedRequest("x", HttpRequest("GET", "/x", {})).finish(HttpResponse(200, body=b"ok"))
    ObservedRequest("x", HttpRequest("GET", "/x", {}))  # in flight until this process exits
    print("ready", flush=True)
    sys.stdin.readline()
    """
)
SCRAPE = "from synthstack_core.metrics import exposition; print(exposition().decode())"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def multiprocess_env(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "metrics"
    folder.mkdir()
    return {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}


def _worker(count: int, env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(count)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("\n")
    process.stdin.close()
    assert process.wait(timeout=30) == 0
    assert process.stdout is not None
    process.stdout.close()


def test_two_processes_are_summed_and_a_dead_one_leaves_the_live_gauges(
    multiprocess_env: dict[str, str],
) -> None:
    first, second = _worker(3, multiprocess_env), _worker(4, multiprocess_env)
    try:
        # A third process scrapes: every worker's counts, summed.
        scraped = subprocess.run(
            [sys.executable, "-c", SCRAPE], env=multiprocess_env, capture_output=True, text=True
        )
        samples = _samples(scraped.stdout)
        requests = ("synthstack_http_requests_total", (("operation_id", "x"), ("status", "200")))
        in_flight = ("synthstack_http_requests_in_flight", (("operation_id", "x"),))
        assert samples[requests] == 7
        assert samples[in_flight] == 2
        duration = "synthstack_http_request_duration_seconds_count"
        assert samples[(duration, (("operation_id", "x"),))] == 7
        _stop(first)
        # The first worker is gone (as a worker uvicorn replaced; gunicorn also says so through
        # its child_exit hook): its requests still count, its request in flight no longer does.
        scraped = subprocess.run(
            [sys.executable, "-c", SCRAPE], env=multiprocess_env, capture_output=True, text=True
        )
        samples = _samples(scraped.stdout)
        assert samples[requests] == 7
        assert samples[in_flight] == 1
    finally:
        for process in (first, second):
            if process.poll() is None:
                _stop(process)


async def test_the_pool_gauges_follow_checkouts(database_url: str) -> None:
    database = Database(database_url, pool_size=3)
    engine = database.engine.sync_engine

    def value(name: str) -> float:
        found = REGISTRY.get_sample_value(name)
        assert found is not None
        return found

    size, in_use = "synthstack_db_pool_size", "synthstack_db_pool_connections_in_use"
    size_before, in_use_before = value(size), value(in_use)
    track_pool(engine)
    try:
        assert value(size) == size_before + 3
        async with database.engine.connect(), database.engine.connect():
            assert value(in_use) == in_use_before + 2
        assert value(in_use) == in_use_before
    finally:
        untrack_pool(engine)
        await database.aclose()
    assert (value(size), value(in_use)) == (size_before, in_use_before)


async def _scrape(stack: SynthStack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    metrics = operation("metrics")
    response = await stack.handle(metrics, HttpRequest("GET", metrics.path, {}, client="127.0.0.1"))
    assert response.status == 200, response.body
    return _samples(response.body.decode())


def _jobs(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {
        dict(labels)["status"]: value
        for (name, labels), value in samples.items()
        if name == "synthstack_jobs"
    }


async def test_the_jobs_gauge_counts_the_queued_and_running_jobs(
    empty_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Jobs submitted through the API (no worker runs them), then moved on from another
    connection: each scrape counts what the table holds then, by status only; a scrape the count
    cannot wait for (the table locked) answers without the gauge."""
    keys = "alpha:jobs-gauge-key-alpha,beta:jobs-gauge-key-beta"
    settings = Settings(
        DATABASE_URL=empty_database_url, SYNTHSTACK_API_KEYS=keys, SYNTHSTACK_WORKER="none"
    )
    index = operation("rag-index")
    async with SynthStack(settings) as stack:
        assert _jobs(await _scrape(stack)) == {"queued": 0, "running": 0}
        submitted = []
        for n, key in enumerate(["jobs-gauge-key-alpha"] * 3 + ["jobs-gauge-key-beta"] * 2):
            body = {"content": f"Heron {n}.", "source": f"{n}.txt", "collection": "gauge"}
            headers = {
                "authorization": f"Bearer {key}",
                "content-type": "application/json",
                "prefer": "respond-async",
            }
            answer = await stack.handle(
                index, HttpRequest("POST", index.path, headers, json.dumps(body).encode())
            )
            assert answer.status == 202, answer.body
            submitted.append(json.loads(answer.body)["id"])
        samples = await _scrape(stack)
        assert _jobs(samples) == {"queued": 5, "running": 0}
        assert not any("tenant" in dict(labels) for (name, labels) in samples if "jobs" in name)
        async with await psycopg.AsyncConnection.connect(empty_database_url) as other:
            moves = [("running", submitted[:2]), ("succeeded", submitted[2:3])]
            for status, ids in moves:
                await other.execute(
                    "UPDATE jobs SET status = %s WHERE id = ANY(%s::uuid[])", (status, ids)
                )
            await other.commit()
            assert _jobs(await _scrape(stack)) == {"queued": 2, "running": 2}
            # The table locked: the count waits, the scrape does not (it answers without it).
            await other.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            with caplog.at_level(logging.WARNING, "synthstack.metrics"):
                samples = await _scrape(stack)
            elapsed = time.monotonic() - started
            await other.rollback()
        assert _jobs(samples) == {}
        assert ("synthstack_db_pool_size", ()) in samples
        assert JOB_COUNT_TIMEOUT_SECONDS <= elapsed < JOB_COUNT_TIMEOUT_SECONDS + 3
        assert "the jobs were not counted (TimeoutError)" in caplog.text
        assert _jobs(await _scrape(stack)) == {"queued": 2, "running": 2}


def test_loopback_callers() -> None:
    for address in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "::ffff:127.0.0.1"):
        assert loopback_address(address), address
    for address in (
        None,
        "",
        "testclient",
        "localhost",
        "10.0.0.1",
        "203.0.113.7",
        "::ffff:10.0.0.1",
    ):
        assert not loopback_address(address), address


def test_the_observability_settings() -> None:
    assert Settings().metrics_token is None and Settings().log_format == "text"
    assert Settings(SYNTHSTACK_METRICS_TOKEN="  ").metrics_token is None
    with pytest.raises(ValidationError, match="16 or more characters"):
        Settings(SYNTHSTACK_METRICS_TOKEN="too-short")
    with pytest.raises(ValidationError):
        Settings(SYNTHSTACK_LOG_FORMAT="xml")
    assert "a-token-of-16-chars" not in repr(
        Settings(SYNTHSTACK_METRICS_TOKEN="a-token-of-16-chars")
    )
    assert Settings(SYNTHSTACK_ENV="development").development
    assert not Settings(SYNTHSTACK_ENV="production").development


def test_only_a_rate_limited_problem_counts_as_rate_limited() -> None:
    problem = [("Content-Type", "application/problem+json")]
    assert _problem_code(HttpResponse(429, problem, b'{"code":"rate_limited"}')) == "rate_limited"
    assert _problem_code(HttpResponse(429, problem, b"not json")) is None
    assert _problem_code(HttpResponse(429, problem, b"[1]")) is None
    json_body = [("Content-Type", "application/json")]
    assert _problem_code(HttpResponse(200, json_body, b'{"code":"rate_limited"}')) is None


@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    """A handler of the root logger writing to a string, removed afterwards."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def test_json_logging_makes_every_line_one_json_object(root_stream: io.StringIO) -> None:
    configure_logging("text")  # today's lines: left as they are
    logging.getLogger("synthstack.test").warning("plain %s", "line")
    assert root_stream.getvalue() == "plain line\n"
    configure_logging("json")
    logger = logging.getLogger("synthstack.test")
    logger.warning("a %s line", "json", extra={"tenant": "acme", "status": 200})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    first, second = (json.loads(line) for line in root_stream.getvalue().splitlines()[1:])
    assert first["message"] == "a json line"
    assert (first["level"], first["logger"]) == ("WARNING", "synthstack.test")
    assert (first["tenant"], first["status"]) == ("acme", 200)
    assert first["timestamp"].endswith("+00:00")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exc_info"]
    assert isinstance(logging.getLogger().handlers[-1].formatter, JsonLogFormatter)
    # The access log is at INFO, whatever the root's level.
    assert logging.getLogger("synthstack.access").isEnabledFor(logging.INFO)
    with pytest.raises(ValueError, match="unknown log format"):
        configure_logging("xml")
