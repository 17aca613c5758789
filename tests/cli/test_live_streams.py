"""Streams and uploads through real servers (uvicorn for FastAPI, gunicorn for Django).

In-process clients buffer whole responses and requests, so what only a real connection shows is
checked here: the first generated piece reaches the client long before the generation ends; a
client that goes away stops the generation upstream (the OpenAI stub sees its stream abandoned);
an upload whose declared size is over the limit is refused before its body is sent; a chunked
upload is cut off once it crosses the limit; a job's events arrive as the job goes on, with a
keep-alive comment while nothing changes, and the stream ends with the ended job.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from synthstack_testing import OpenAIStub
from synthstack_testing.chat_stub import chat_reply_tokens

ROOT = Path(__file__).parents[2]
KEY = "live-stream-key-0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
UPLOAD_LIMIT = 256 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as running:
        yield running


@pytest.fixture(scope="module", params=["fastapi", "django"])
def server(
    request: pytest.FixtureRequest,
    module_database_url: str,
    stub: OpenAIStub,
    tmp_path_factory: Any,
) -> Iterator[str]:
    """A live server of each backend; yields its base URL."""
    backend = request.param
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": module_database_url,
        "SYNTHSTACK_API_KEYS": KEY,
        "OPENAI_API_KEY": stub.api_key,
        "OPENAI_BASE_URL": stub.base_url,
        "SYNTHSTACK_PROVIDER_MAX_RETRIES": "0",
        "SYNTHSTACK_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "SYNTHSTACK_UPLOAD_DIR": str(tmp_path_factory.mktemp(f"uploads-{backend}")),
        "SYNTHSTACK_DATA_DIR": str(tmp_path_factory.mktemp(f"data-{backend}")),
        # Jobs stay queued until a test starts a `synthstack worker`.
        "SYNTHSTACK_WORKER": "none",
    }
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "synthstack_core.cli", "serve", "--backend", backend,
               "--port", str(port), "--workers", "1"]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT
    )
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() - started < 90, "the server did not start"
            time.sleep(0.25)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)


def test_the_first_piece_arrives_long_before_the_end(server: str, stub: OpenAIStub) -> None:
    stub.reset()
    # Warm up: the process's first generation loads the SDK and its client.
    warm = httpx.post(
        f"{server}/api/v1/generation/text",
        headers=AUTH,
        json={"prompt": "hi", "stream": True, "max_tokens": 2},
        timeout=60,
    )
    assert warm.status_code == 200
    stub.token_delay = 0.05
    prompt = "please write a fairly long answer about rivers and lakes and seas"
    pieces = len(chat_reply_tokens("gpt-4o-mini", prompt, json_output=False))
    assert pieces > 20  # over a second of generation at 50 ms a piece
    began = time.monotonic()
    first = None
    with httpx.stream(
        "POST",
        f"{server}/api/v1/generation/text",
        headers=AUTH,
        json={"prompt": prompt, "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: delta") and first is None:
                first = time.monotonic() - began
        total = time.monotonic() - began
    assert first is not None
    assert total > pieces * 0.05 * 0.8
    assert first < total / 3, (first, total)


def test_a_client_that_goes_away_stops_the_generation(server: str, stub: OpenAIStub) -> None:
    stub.reset()
    stub.token_delay = 0.1
    with httpx.stream(
        "POST",
        f"{server}/api/v1/generation/text",
        headers=AUTH,
        json={"prompt": "a long story about the mountains and the valleys", "stream": True},
        timeout=30,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event: delta"):
                break  # leave after the first piece: the connection is closed
    assert stub.wait_for_aborted_stream(timeout=10), "the provider's stream was not closed"
    assert stub.finished_streams == 0


def _raw_request(server: str, head: bytes, body: bytes) -> bytes:
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(head + body)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_an_oversize_upload_is_refused_before_its_body_is_sent(server: str) -> None:
    declared = 50 * 1024 * 1024
    head = (
        b"POST /api/v1/rag/documents HTTP/1.1\r\nHost: test\r\n"
        + f"Authorization: Bearer {KEY}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=b\r\n"
        + f"Content-Length: {declared}\r\n\r\n".encode()
    )
    began = time.monotonic()
    answer = _raw_request(server, head, b"--b\r\n")  # 5 of 50 MiB sent: the answer comes anyway
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - began < 10


def test_a_chunked_upload_is_cut_off_at_the_limit(server: str) -> None:
    def body() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
        for _ in range(64):  # 4 MiB, far over the limit
            yield b"a" * 65536

    response = httpx.post(
        f"{server}/api/v1/rag/documents",
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
        content=body(),
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_a_job_s_events_arrive_as_it_goes_on(
    server: str, module_database_url: str, tmp_path: Path
) -> None:
    """Through the real server: the queued job at once; a keep-alive comment (``: keep-alive``)
    after 15 s without a change; once a worker runs it, its progress, then the succeeded job
    last, and the stream ends."""
    paragraphs = "\n\n".join(
        f"Paragraph {n}: kitten {n} chases yarn around room {n * 7} while dog {n} barks."
        for n in range(300)
    )
    accepted = httpx.post(
        f"{server}/api/v1/rag/index",
        headers={**AUTH, "Prefer": "respond-async"},
        json={"content": paragraphs, "source": "live.txt", "collection": "live-events",
              "chunk_size": 32, "chunk_overlap": 4},
        timeout=60,
    )  # fmt: skip
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]
    lines: list[tuple[float, str]] = []
    worker = None
    began = time.monotonic()
    try:
        with httpx.stream(
            "GET", f"{server}/api/v1/jobs/{job_id}/events", headers=AUTH, timeout=60
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            for line in response.iter_lines():
                lines.append((time.monotonic() - began, line))
                if line == ": keep-alive" and worker is None:
                    env = {**os.environ, "DATABASE_URL": module_database_url}
                    env.pop("REDIS_URL", None)
                    with (tmp_path / "worker.log").open("ab") as log:
                        worker = subprocess.Popen(
                            [sys.executable, "-m", "synthstack_core.cli", "worker"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                        )  # fmt: skip
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
    events = [
        json.loads(line.removeprefix("data: ")) for _, line in lines if line.startswith("data: ")
    ]
    assert [line for _, line in lines if line.startswith("event: ")] == ["event: job"] * len(events)
    assert events[0]["status"] == "queued" and lines[0][0] < 5
    keepalive = next(at for at, line in lines if line == ": keep-alive")
    assert 14 < keepalive < 25, lines[:4]
    assert events[-1]["status"] == "succeeded", (events[-1], (tmp_path / "worker.log").read_text())
    done = [event["progress"]["done"] for event in events]
    assert done == sorted(done) and done[-1] == events[-1]["progress"]["total"]
    assert any(0 < value < done[-1] for value in done), done
