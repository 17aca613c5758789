"""Settings read the documented variables and fail fast on bad values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from synthstack_core.settings import Settings


def test_seed_variable_names_keep_their_meaning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/synthstack")
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379")
    monkeypatch.setenv("QDRANT_URL", "http://qdrant:6333")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = Settings()
    assert settings.database_url == "postgresql://u:p@db:5432/synthstack"
    assert settings.redis_url == "redis://redis:6379"
    assert settings.qdrant_url == "http://qdrant:6333"
    assert settings.openai_configured


def test_api_keys_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHSTACK_API_KEYS", "plain-key-123, acme:acme-key-456:with-colon")
    entries = Settings().parsed_api_keys()
    assert [(e.tenant, e.key) for e in entries] == [
        ("default", "plain-key-123"),
        ("acme", "acme-key-456:with-colon"),
    ]
    assert "acme-key" not in repr(entries)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SYNTHSTACK_API_KEYS", "short"),
        ("SYNTHSTACK_ENV", "staging"),
        ("SYNTHSTACK_MAX_BATCH_SIZE", "0"),
        ("SYNTHSTACK_MAX_BODY_BYTES", "10"),
    ],
)
def test_bad_values_fail_at_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_blank_urls_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", " ")
    monkeypatch.setenv("OPENAI_API_KEY", "")
    settings = Settings()
    assert settings.redis_url is None
    assert not settings.openai_configured
