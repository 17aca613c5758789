"""SynthStack inside an existing Django project (``tests/hosts/django_host``), served by gunicorn.

The host adds ``synthstack_django`` to ``INSTALLED_APPS`` and includes its URLs under ``ml/``;
``manage.py migrate`` on an empty database creates the core's schema too; a host DRF view uses
SynthStack's authentication class and exception handler.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from synthstack_django.database import django_parameters
from tests.hosts.conftest import AUTH, KEY

ROOT = Path(__file__).parents[2]
SETTINGS = "tests.hosts.django_host.settings"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    import synthstack_core.stores

    folder = Path(next(iter(synthstack_core.stores.__path__))) / "migrations"
    head = ScriptDirectory(str(folder)).get_current_head()
    assert head is not None
    return head


@pytest.fixture
def host_process_env(empty_database: str, host_env: dict[str, str]) -> dict[str, str]:
    parameters = django_parameters(empty_database)
    env = {
        **{name: value for name, value in os.environ.items() if name != "DATABASE_URL"},
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "HOST_DB_NAME": parameters["NAME"],
        "HOST_DB_USER": parameters["USER"],
        "HOST_DB_HOST": parameters["HOST"],
        "HOST_DB_PORT": parameters["PORT"],
    }
    return env


@pytest.fixture
def migrated(host_process_env: dict[str, str], empty_database: str) -> str:
    """``manage.py migrate`` of the host, on its empty database."""
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        env=host_process_env, cwd=ROOT, check=True, timeout=300,
    )  # fmt: skip
    return empty_database


def test_migrate_creates_the_core_schema(migrated: str) -> None:
    with psycopg.connect(migrated) as conn:
        version = conn.execute("SELECT version_num FROM synthstack_alembic_version").fetchall()
        tables = {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}  # fmt: skip
    assert version == [(_alembic_head(),)]
    assert {"tenants", "api_keys", "rag_collections", "rag_documents", "rag_chunks"} <= tables
    assert {"django_migrations", "auth_user"} <= tables


@pytest.fixture
def host(migrated: str, host_process_env: dict[str, str]) -> Iterator[httpx.Client]:
    """The host served by gunicorn."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "tests.hosts.django_host.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", "--timeout", "120"],
        env=host_process_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get("/ml/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "the host did not start"
                time.sleep(0.25)
            yield client
    finally:
        process.terminate()
        process.wait(30)


def _problem(response: httpx.Response) -> dict[str, object]:
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, object] = json.loads(response.content)
    return problem


def test_host_serves_synthstack_under_the_prefix(host: httpx.Client) -> None:
    embedding = host.post("/ml/api/v1/embeddings/generate", json={"text": "a host"}, headers=AUTH)
    assert embedding.status_code == 200, embedding.text
    assert len(embedding.json()["embedding"]) == embedding.json()["dimensions"]

    missing = host.get("/ml/api/v1/nothing-here", headers={"X-Request-ID": "probe-1"})
    assert missing.status_code == 404
    assert _problem(missing)["instance"] == "/ml/api/v1/nothing-here"
    assert _problem(missing)["request_id"] == "probe-1"

    wrong_method = host.delete("/ml/api/v1/embeddings/generate", headers=AUTH)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert _problem(wrong_method)["instance"] == "/ml/api/v1/embeddings/generate"

    unauthenticated = host.post("/ml/api/v1/embeddings/generate", json={"text": "no key"})
    assert unauthenticated.status_code == 401
    assert _problem(unauthenticated)["instance"] == "/ml/api/v1/embeddings/generate"

    for page in ("/ml/docs", "/ml/api/v1/docs/", "/ml/api/v1/redoc/"):
        html = host.get(page).text
        urls = re.findall(r'(?:href|src|spec-url|data-schema-url)="([^"]+)"', html)
        assert urls, page
        for url in urls:
            assert url.startswith("/ml/"), (page, url)
            assert host.get(url).status_code == 200, (page, url)
    document = host.get("/ml/api/v1/schema/").json()
    assert [server["url"] for server in document["servers"]] == ["/ml"]


def test_host_view_with_the_authentication_class(host: httpx.Client) -> None:
    good = host.get("/whoami/", headers=AUTH)
    assert good.status_code == 200, good.text
    assert good.json() == {"tenant": "host-tenant", "user": "host-tenant"}
    assert host.get("/whoami/", headers={"X-API-Key": KEY}).status_code == 200

    # Byte for byte the core's 401 problems (but for the path), with its WWW-Authenticate.
    wrong = {"Authorization": "Bearer wrong-key"}
    for headers in (wrong, {}):
        answer = host.get("/whoami/", headers={**headers, "X-Request-ID": "r1"})
        own = host.post("/ml/api/v1/embeddings/generate", json={"text": "x"},
                        headers={**headers, "X-Request-ID": "r1"})  # fmt: skip
        assert answer.status_code == own.status_code == 401
        assert answer.headers["www-authenticate"] == own.headers["www-authenticate"]
        problem, own_problem = _problem(answer), _problem(own)
        assert problem["instance"] == "/whoami/"
        own_problem["instance"] = "/whoami/"
        assert problem == own_problem
    assert _problem(host.get("/whoami/"))["code"] == "missing_api_key"
    assert _problem(host.get("/whoami/", headers=wrong))["code"] == "invalid_api_key"
