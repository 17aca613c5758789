"""Both backends in-process on one real database, Redis and the OpenAI stub.

The FastAPI app runs with its lifespan (schemathesis keeps an ASGI app's lifespan alive for the
session); the Django project runs as a WSGI app. They share the database and the environment, so
whatever differs between their answers is a difference of the adapters.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from synthstack_testing import OpenAIStub

KEY_A = "parity-key-tenant-a"
KEY_B = "parity-key-tenant-b"
AUTH = {"Authorization": f"Bearer {KEY_A}"}


@pytest.fixture(scope="session")
def openai_stub() -> Iterator[OpenAIStub]:
    """The local stub of OpenAI's API."""
    with OpenAIStub() as stub:
        yield stub


@pytest.fixture(scope="session")
def service_env(
    database_url: str,
    redis_server: Any,
    openai_stub: OpenAIStub,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """The environment both backends read their settings from."""
    env = {
        # Uploads spool here (tests check it is empty after each request) up to 1 MiB.
        "SYNTHSTACK_UPLOAD_DIR": str(tmp_path_factory.mktemp("uploads")),
        "SYNTHSTACK_MAX_UPLOAD_BYTES": str(1024 * 1024),
        # Audio: 512 KiB and 30 s, so that the limits are reached with small fixtures.
        "SYNTHSTACK_MAX_AUDIO_BYTES": str(512 * 1024),
        "SYNTHSTACK_MAX_AUDIO_SECONDS": "30",
        # Analyses from the offline analysers (the stub's JSON is no analysis); the chat-model
        # path is tested with apps of its own (tests/parity/test_language_llm.py).
        "SYNTHSTACK_ANALYSIS_LLM": "off",
        "SYNTHSTACK_ENV": "development",
        # No worker: jobs stay queued, so their answers are deterministic (tests/parity/
        # test_jobs_parity.py); tests/jobs/ runs real worker processes.
        "SYNTHSTACK_WORKER": "none",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "SYNTHSTACK_API_KEYS": f"tenant-a:{KEY_A},tenant-b:{KEY_B}",
        "OPENAI_API_KEY": openai_stub.api_key,
        "OPENAI_BASE_URL": openai_stub.base_url,
        "SYNTHSTACK_KEY_CACHE_SECONDS": "0",
        "SYNTHSTACK_PROVIDER_MAX_RETRIES": "0",
        "DJANGO_SECRET_KEY": "parity-tests-secret-key-not-for-production",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield env
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def fastapi_app(service_env: dict[str, str]) -> Any:
    """A FastAPI app for schemathesis, which runs its lifespan on its own loop."""
    from synthstack_fastapi import create_app

    return create_app()


@pytest.fixture(scope="session")
def django_app(service_env: dict[str, str]) -> Iterator[Any]:
    """The Django project's WSGI application, with Django's own tables migrated."""
    from tests.django_support import configure_django

    configure_django(service_env["DATABASE_URL"], service_env)
    from django.core.wsgi import get_wsgi_application

    from synthstack_django.service import reset_stack

    yield get_wsgi_application()
    # Closed while the database still runs: closing writes the usage it counted.
    reset_stack()


@pytest.fixture(scope="session")
def fastapi_client(service_env: dict[str, str]) -> Iterator[httpx.Client]:
    """An HTTP client of a FastAPI app of its own (its lifespan's loop owns its pools)."""
    from fastapi.testclient import TestClient

    from synthstack_fastapi import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client


def wsgi_transport(app: Any) -> httpx.WSGITransport:
    """httpx's WSGI transport, giving the app ``PATH_INFO`` as PEP 3333 and gunicorn do.

    httpx puts the decoded path there as text (``café``); a WSGI server gives its UTF-8 bytes read
    as latin-1 (``cafÃ©``), which is what Django decodes. Without this, a non-ASCII path would reach
    Django garbled in-process only.
    """

    def pep3333_app(environ: dict[str, Any], start_response: Any) -> Any:
        environ["PATH_INFO"] = environ["PATH_INFO"].encode("utf-8").decode("latin-1")
        return app(environ, start_response)

    return httpx.WSGITransport(app=pep3333_app)


@pytest.fixture(scope="session")
def django_client(django_app: Any) -> Iterator[httpx.Client]:
    """An HTTP client of the Django app."""
    with httpx.Client(transport=wsgi_transport(django_app), base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="session")
def clients(fastapi_client: httpx.Client, django_client: httpx.Client) -> dict[str, httpx.Client]:
    """Both backends by name."""
    return {"fastapi": fastapi_client, "django": django_client}


@contextmanager
def rebuilt_clients(
    django_app: Any, env: Mapping[str, str | None]
) -> Iterator[dict[str, httpx.Client]]:
    """Both backends built again with ``env`` changed (``None`` removes a variable): a FastAPI app
    of its own, and the process's Django service restarted; afterwards the environment is restored
    and the Django service restarted again."""
    from fastapi.testclient import TestClient

    from synthstack_core import Settings
    from synthstack_django.service import reset_stack
    from synthstack_fastapi import create_app

    saved = {name: os.environ.get(name) for name in env}

    def apply(values: Mapping[str, str | None]) -> None:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    apply(env)
    reset_stack()
    try:
        with (
            TestClient(create_app(Settings()), raise_server_exceptions=False) as fastapi,
            httpx.Client(
                transport=wsgi_transport(django_app), base_url="http://testserver"
            ) as django,
        ):
            yield {"fastapi": fastapi, "django": django}
    finally:
        apply(saved)
        reset_stack()


@pytest.fixture
def upload_dir(service_env: dict[str, str]) -> Iterator[Path]:
    """The spool directory of uploads, checked empty before and after the test."""
    path = Path(service_env["SYNTHSTACK_UPLOAD_DIR"])
    assert list(path.iterdir()) == []
    yield path
    assert list(path.iterdir()) == [], "a request left a temporary file behind"
