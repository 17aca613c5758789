"""The documentation pages render in a real browser with no internet, on both backends.

Headless Chromium (``apt-get install chromium``; ``.ci/run`` installs it) loads each page of both
URL sets (FastAPI's ``/docs``, ``/redoc``; Django's ``/api/v1/docs/``, ``/api/v1/redoc/``) from a
live server of each backend, and the rendered DOM must show every operation of the contract: proof
that Swagger UI and ReDoc came from the server's own assets and read the contract. Chromium's
network log must show that every request the page made went to that server, and that it made the
ones expected (scripts, icon, the document of the page's own set).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from synthstack_core.apidocs import DOCS_PATHS, served_contract

ROOT = Path(__file__).parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Every page of both sets, on both backends.
PAGES = [path for path, page in DOCS_PATHS.items() if page.kind != "schema"]

if CHROMIUM is None:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail("chromium is required in CI (apt-get install chromium)", pytrace=False)
    pytest.skip(
        "chromium is not installed: `apt-get install chromium` enables these browser checks "
        "(.ci/run installs it; under CI=true its absence fails instead)",
        allow_module_level=True,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module", params=["fastapi", "django"])
def live_server(request: pytest.FixtureRequest, database_url: str) -> Iterator[tuple[str, str]]:
    backend: str = request.param
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SYNTHSTACK_API_KEYS": "docs:docs-test-key-0001",
        "DJANGO_SECRET_KEY": "docs-test-secret-key-not-for-production",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "synthstack_core.cli", "serve", "--backend", backend,
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/health", timeout=2)
            break
        except httpx.TransportError:
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.25)
    yield backend, base
    server.send_signal(signal.SIGTERM)
    server.wait(30)


def _page_requests(net_log: Path) -> list[str]:
    """The URLs of the requests a page made, from Chromium's network log.

    A request the page initiated names the page's origin as its initiator; the navigation itself
    and the browser's own traffic (update checks and the like) name none.
    """
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job
        and event.get("params", {}).get("initiator", "not an origin") != "not an origin"
    ]


def _render(url: str) -> tuple[str, list[str]]:
    """The rendered DOM of ``url`` and the URLs of the requests the page made."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        net_log = Path(profile) / "net-log.json"
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", f"--log-net-log={net_log}",
             "--virtual-time-budget=10000", "--dump-dom", url],
            capture_output=True, text=True, timeout=90, check=True,
        )  # fmt: skip
        return result.stdout, _page_requests(net_log)


@pytest.mark.parametrize("page", PAGES)
def test_docs_page_renders_every_operation(live_server: tuple[str, str], page: str) -> None:
    backend, base = live_server
    dom, requests = _render(base + page)
    contract = json.loads(served_contract())  # the plugins' operations too
    for path, item in contract["paths"].items():
        for spec in item.values():
            if DOCS_PATHS[page].kind == "swagger":
                assert f'data-path="{path}"' in dom, (backend, page, path)
            assert spec["summary"] in dom, (backend, page, spec["summary"])
    # Everything the page fetched came from this server: no other host, not even a favicon.
    assert [url for url in requests if not url.startswith(base + "/")] == [], (backend, page)
    fetched = {url.removeprefix(base) for url in requests}
    expected = {DOCS_PATHS[page].schema_url, "/static/docs/favicon-32x32.png"}
    expected |= (
        {"/static/docs/swagger-ui-bundle.js", "/static/docs/swagger-ui.css"}
        if DOCS_PATHS[page].kind == "swagger"
        else {"/static/docs/redoc.standalone.js"}
    )
    assert expected <= fetched, (backend, page, fetched)
