"""What real servers (uvicorn for FastAPI, gunicorn for Django, as ``synthstack serve`` runs them)
refuse before the application sees a request, and what the core decides about repeated
credentials, which only a real server shows (in-process clients keep one value of a header).

* An over-long request line or an over-large header is refused at once by the server itself
  (gunicorn 414/431, uvicorn 400), whether or not the request carries a key; one just under the
  limits is served. Uvicorn's bound (h11's) is checked whenever more of the head is awaited, and
  asyncio reads up to 256 KiB at once: a head that arrives whole in one read passes up to that
  size, so the refused cases here are larger than 256 KiB.
* Two ``Authorization`` or two ``X-API-Key`` headers reach the core as one list (gunicorn joins
  them, so does the FastAPI adapter): the same 401 problem on both backends.
"""

from __future__ import annotations

import contextlib
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

from synthstack_core.cli import MAX_HEADER_FIELD_BYTES, MAX_REQUEST_LINE_BYTES

ROOT = Path(__file__).parents[2]
KEY = "live-guards-key-0001"
OTHER_KEY = "live-guards-key-0002"
BACKENDS = ("fastapi", "django")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def servers(module_database_url: str, tmp_path_factory: Any) -> Iterator[dict[str, str]]:
    """Both backends served live at once; their base URLs by name."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    bases: dict[str, str] = {}
    try:
        for backend in BACKENDS:
            port = _free_port()
            env = {
                **os.environ,
                "DATABASE_URL": module_database_url,
                "SYNTHSTACK_API_KEYS": f"{KEY},other:{OTHER_KEY}",
                "SYNTHSTACK_DATA_DIR": str(tmp_path_factory.mktemp(f"data-{backend}")),
            }
            env.pop("REDIS_URL", None)
            command = [sys.executable, "-m", "synthstack_core.cli", "serve", "--backend",
                       backend, "--port", str(port), "--workers", "1"]  # fmt: skip
            processes[backend] = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=ROOT
            )
            bases[backend] = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        for backend, base in bases.items():
            while True:
                assert processes[backend].poll() is None, f"{backend} exited"
                try:
                    if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() - started < 120, f"{backend} did not start"
                time.sleep(0.25)
        yield bases
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            process.communicate(timeout=60)


def _raw(base: str, head: bytes) -> tuple[int, bytes, float]:
    """Send a request head; the status, the answer's head and the seconds it took."""
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        with contextlib.suppress(OSError):  # the server may close before reading it all
            sock.sendall(head)
        received = b""
        while b"\r\n\r\n" not in received:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    status = int(received.split(b" ", 2)[1])
    return status, received.split(b"\r\n\r\n")[0], time.monotonic() - started


def _get(target: bytes, *headers: bytes) -> bytes:
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: 127.0.0.1", *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_over_long_request_line_is_refused_by_the_server(
    servers: dict[str, str], backend: str
) -> None:
    for size in (1_000_000, 10_000_000):
        status, head, seconds = _raw(servers[backend], _get(b"/health?q=" + b"a" * size))
        assert status == (414 if backend == "django" else 400), head
        assert seconds < 5
    # Just under the limit: served (the line is method, target and version).
    target = b"/health?q=" + b"a" * (MAX_REQUEST_LINE_BYTES - 100)
    assert _raw(servers[backend], _get(target))[0] == 200


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_over_large_header_is_refused_by_the_server(
    servers: dict[str, str], backend: str
) -> None:
    for size in (1_000_000, 10_000_000):
        status, head, seconds = _raw(servers[backend], _get(b"/health", b"X-Big: " + b"a" * size))
        assert status == (431 if backend == "django" else 400), head
        assert seconds < 5
    many = [b"X-H%d: %s" % (i, b"a" * 1000) for i in range(400)]
    status, head, _ = _raw(servers[backend], _get(b"/health", *many))
    assert status == (431 if backend == "django" else 400), head
    # Just under the limits: one header near the largest, a few dozen small ones, and a key.
    big = b"X-Big: " + b"a" * (MAX_HEADER_FIELD_BYTES - 100)
    small = [b"X-H%d: a" % i for i in range(40)]
    bearer = b"Authorization: Bearer " + KEY.encode()
    assert _raw(servers[backend], _get(b"/api/v1/embeddings/models", big, bearer, *small))[0] == 200


@pytest.mark.parametrize(
    "headers",
    [
        [("Authorization", f"Bearer {KEY}"), ("Authorization", f"Bearer {OTHER_KEY}")],
        [("Authorization", "Bearer not-a-key"), ("Authorization", f"Bearer {KEY}")],
        [("X-API-Key", KEY), ("X-API-Key", KEY)],
        [("X-API-Key", "not-a-key"), ("X-API-Key", OTHER_KEY)],
    ],
    ids=["two-authorization", "bad-then-good", "two-x-api-key", "bad-then-good-x-api-key"],
)
def test_a_repeated_credential_header_is_refused_alike(
    servers: dict[str, str], headers: list[tuple[str, str]]
) -> None:
    problems = []
    for backend in BACKENDS:
        response = httpx.get(
            f"{servers[backend]}/api/v1/embeddings/models",
            headers=[*headers, ("X-Request-ID", "repeated-credentials")],
        )
        assert response.status_code == 401, (backend, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        problems.append(response.json())
    assert problems[0] == problems[1]
    assert problems[0]["code"] == "repeated_credentials"
    assert problems[0]["request_id"] == "repeated-credentials"
    # Each header once is fine.
    for backend in BACKENDS:
        once = httpx.get(f"{servers[backend]}/api/v1/embeddings/models", headers=[headers[-1]])
        assert once.status_code == (401 if "not-a-key" in headers[-1][1] else 200)
