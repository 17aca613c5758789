"""Shared by the host projects' tests: an empty database and the environment SynthStack reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

KEY = "host-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def empty_database(postgres_server_url: str) -> Iterator[str]:
    """A new database with nothing in it (not migrated), dropped afterwards."""
    import psycopg

    name = f"synthstack_host_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = postgres_server_url.partition("?")
    yield base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def host_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """SynthStack's settings in a host: one key of tenant ``host-tenant``, no Redis, no OpenAI."""
    env = {
        "SYNTHSTACK_ENV": "development",
        "SYNTHSTACK_API_KEYS": f"host-tenant:{KEY}",
        "SYNTHSTACK_ANALYSIS_LLM": "off",
        "REDIS_URL": "",
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
