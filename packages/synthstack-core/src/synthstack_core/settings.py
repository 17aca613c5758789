"""Every setting of the service, read from the environment (and an optional ``.env`` file).

The variable names of the seed's Configuration section (``OPENAI_API_KEY``, ``DATABASE_URL``,
``REDIS_URL``, ``QDRANT_URL``, ...) keep their meaning; SynthStack's own settings are prefixed
``SYNTHSTACK_``. Invalid values fail at start-up, never at the first request.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_TENANT", "TENANT_NAME_PATTERN", "ApiKeyEntry", "Settings"]

DEFAULT_TENANT = "default"
#: What a tenant name may be: what ``SYNTHSTACK_API_KEYS`` can spell (no `:` or `,`).
TENANT_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_TENANT_NAME = re.compile(TENANT_NAME_PATTERN)


class ApiKeyEntry:
    """One entry of ``SYNTHSTACK_API_KEYS``: ``key`` or ``tenant:key``."""

    __slots__ = ("key", "tenant")

    def __init__(self, tenant: str, key: str) -> None:
        self.tenant = tenant
        self.key = key

    def __repr__(self) -> str:  # never print the key itself
        return f"ApiKeyEntry(tenant={self.tenant!r}, key='***')"


def _env(name: str, *more: str) -> AliasChoices:
    return AliasChoices(name, *more)


class Settings(BaseSettings):
    """The service's configuration. Each field names its environment variable."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    env: Literal["development", "production"] = Field(
        "development", validation_alias=_env("SYNTHSTACK_ENV")
    )
    api_keys: SecretStr = Field(
        SecretStr(""),
        validation_alias=_env("SYNTHSTACK_API_KEYS"),
        description="Comma-separated API keys, each `key` or `tenant:key`.",
    )
    database_url: str | None = Field(
        None,
        validation_alias=_env("DATABASE_URL"),
        description="PostgreSQL URL; unset = embedded PostgreSQL in the data directory.",
    )
    data_dir: Path = Field(Path(".synthstack"), validation_alias=_env("SYNTHSTACK_DATA_DIR"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))
    qdrant_url: str | None = Field(None, validation_alias=_env("QDRANT_URL"))
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    anthropic_api_key: SecretStr | None = Field(None, validation_alias=_env("ANTHROPIC_API_KEY"))
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        validation_alias=_env("EMBEDDING_MODEL"),
        description="The default embedding model.",
    )

    max_body_bytes: int = Field(
        1_048_576, ge=1024, validation_alias=_env("SYNTHSTACK_MAX_BODY_BYTES")
    )
    max_batch_size: int = Field(
        128, ge=1, le=2048, validation_alias=_env("SYNTHSTACK_MAX_BATCH_SIZE")
    )
    max_text_chars: int = Field(
        20_000, ge=1, le=1_000_000, validation_alias=_env("SYNTHSTACK_MAX_TEXT_CHARS")
    )

    # 32 measured ~12% faster than 64 on 2 cores (less padding once texts are sorted by length) and
    # keeps ONNX Runtime's memory arena ~85 MB smaller (docs/benchmarks.md).
    embedding_batch_size: int = Field(
        32, ge=1, le=1024, validation_alias=_env("SYNTHSTACK_EMBEDDING_BATCH_SIZE")
    )
    embedding_threads: int = Field(
        0,
        ge=0,
        le=64,
        validation_alias=_env("SYNTHSTACK_EMBEDDING_THREADS"),
        description="ONNX Runtime intra-op threads for the local model; 0 = one per core.",
    )
    cache_max_entries: int = Field(
        10_000, ge=0, validation_alias=_env("SYNTHSTACK_CACHE_MAX_ENTRIES")
    )
    cache_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=1, validation_alias=_env("SYNTHSTACK_CACHE_TTL_SECONDS")
    )
    provider_timeout_seconds: float = Field(
        30.0, gt=0, le=600, validation_alias=_env("SYNTHSTACK_PROVIDER_TIMEOUT_SECONDS")
    )
    provider_max_retries: int = Field(
        2, ge=0, le=10, validation_alias=_env("SYNTHSTACK_PROVIDER_MAX_RETRIES")
    )
    key_cache_seconds: float = Field(
        10.0,
        ge=0,
        le=3600,
        validation_alias=_env("SYNTHSTACK_KEY_CACHE_SECONDS"),
        description="How long a database API key lookup is remembered (revocation delay).",
    )
    bind_host: str = Field(
        "127.0.0.1",
        validation_alias=_env("SYNTHSTACK_HOST"),
        description="The address the server binds; auth may be off only on loopback.",
    )
    migrate_on_start: bool = Field(True, validation_alias=_env("SYNTHSTACK_MIGRATE_ON_START"))

    @field_validator("database_url", "redis_url", "qdrant_url", "openai_base_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("openai_api_key", "anthropic_api_key", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _check_keys(self) -> Settings:
        self.parsed_api_keys()  # raises ValueError on a malformed entry
        return self

    def parsed_api_keys(self) -> list[ApiKeyEntry]:
        """The entries of ``SYNTHSTACK_API_KEYS``; a bare key belongs to the ``default`` tenant."""
        entries: list[ApiKeyEntry] = []
        for raw in self.api_keys.get_secret_value().split(","):
            item = raw.strip()
            if not item:
                continue
            tenant, sep, key = item.partition(":")
            if not sep:
                tenant, key = DEFAULT_TENANT, item
            tenant, key = tenant.strip(), key.strip()
            if not _TENANT_NAME.fullmatch(tenant) or len(key) < 8:
                raise ValueError(
                    "SYNTHSTACK_API_KEYS entries are `key` or `tenant:key`: keys of 8+ characters, "
                    "tenants of 1-64 letters, digits, `.`, `_` or `-`"
                )
            entries.append(ApiKeyEntry(tenant, key))
        return entries

    @property
    def openai_configured(self) -> bool:
        """OpenAI (or an OpenAI-compatible server) can be called."""
        return self.openai_api_key is not None or self.openai_base_url is not None
