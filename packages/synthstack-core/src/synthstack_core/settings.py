"""Every setting of the service, read from the environment (and an optional ``.env`` file).

The variable names of the seed's Configuration section (``OPENAI_API_KEY``, ``DATABASE_URL``,
``REDIS_URL``, ``QDRANT_URL``, ...) keep their meaning; SynthStack's own settings are prefixed
``SYNTHSTACK_``. Invalid values fail at start-up, never at the first request.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from limits import RateLimitItem
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from synthstack_core.ratelimits import parse_rate, parse_rate_limits

__all__ = [
    "DEFAULT_MAX_CHUNKS_PER_DOCUMENT",
    "DEFAULT_TENANT",
    "TENANT_NAME_PATTERN",
    "ApiKeyEntry",
    "Settings",
]

DEFAULT_TENANT = "default"
#: Chunks per document (``SYNTHSTACK_MAX_CHUNKS_PER_DOCUMENT``). Measured on the largest document
#: (1,000,000 characters) at the default chunk size (256 tokens, overlap 32), local model: English
#: Markdown 1,652 chunks, numbers 2,360, hex strings 3,171, Chinese 4,593; Chinese counts about
#: twice the tokens in OpenAI's ``cl100k_base`` (~9,100 chunks). At ``chunk_size`` 16 the same
#: documents make 26,000-79,000 chunks, each one embedded: that is what the limit refuses.
DEFAULT_MAX_CHUNKS_PER_DOCUMENT = 10_000
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
    database_pool_size: int = Field(
        5,
        ge=1,
        le=200,
        validation_alias=_env("SYNTHSTACK_DATABASE_POOL_SIZE"),
        description="PostgreSQL connections a process keeps open (up to 10 more under load).",
    )
    database_connect_timeout: int = Field(
        5,
        ge=0,
        le=300,
        validation_alias=_env("SYNTHSTACK_DATABASE_CONNECT_TIMEOUT"),
        description="Seconds a new PostgreSQL connection may take before the request needing it "
        "is answered 503 (0 = as long as the operating system tries). Over TCP, a pooled "
        "connection whose server stops answering is dropped after about three times this long "
        "(TCP keep-alives and user timeout).",
    )
    data_dir: Path = Field(Path(".synthstack"), validation_alias=_env("SYNTHSTACK_DATA_DIR"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))
    qdrant_url: str | None = Field(None, validation_alias=_env("QDRANT_URL"))
    vector_store: Literal["pgvector", "qdrant"] = Field(
        "pgvector",
        validation_alias=_env("SYNTHSTACK_VECTOR_STORE", "VECTOR_STORE"),
        description="Where new collections keep their vectors (existing ones keep theirs).",
    )
    hnsw_ef_search: int = Field(
        100,
        ge=10,
        le=1000,
        validation_alias=_env("SYNTHSTACK_HNSW_EF_SEARCH"),
        description="pgvector's HNSW candidate list per dense search (`hnsw.ef_search`): higher "
        "finds more of the exact nearest neighbours in large collections of near-equidistant "
        "vectors, at a proportional cost.",
    )
    qdrant_path: str | None = Field(
        None,
        validation_alias=_env("SYNTHSTACK_QDRANT_PATH", "QDRANT_PATH"),
        description="Qdrant local mode without QDRANT_URL: a folder (default `<data dir>/qdrant`)"
        " or `:memory:`.",
    )
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
    max_upload_bytes: int = Field(
        20 * 1_048_576,
        ge=1024,
        validation_alias=_env("SYNTHSTACK_MAX_UPLOAD_BYTES"),
        description="The largest document upload (POST /api/v1/rag/documents), in bytes.",
    )
    max_chunks_per_document: int = Field(
        DEFAULT_MAX_CHUNKS_PER_DOCUMENT,
        ge=1,
        validation_alias=_env("SYNTHSTACK_MAX_CHUNKS_PER_DOCUMENT"),
        description="The most chunks one document may be split into (413 `too_many_chunks` "
        "above, before anything is embedded or stored).",
    )
    upload_dir: Path | None = Field(
        None,
        validation_alias=_env("SYNTHSTACK_UPLOAD_DIR"),
        description="Where uploads are spooled while a request runs (default: the system's).",
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
        description="Local model inference runs at once, one core each; 0 = one per core.",
    )

    # -- transcription (features/transcription.py) ----------------------------------------------
    max_audio_bytes: int = Field(
        25 * 1_048_576,
        ge=1024,
        validation_alias=_env("SYNTHSTACK_MAX_AUDIO_BYTES"),
        description="The largest audio upload to transcribe, in bytes (OpenAI's limit: 25 MB).",
    )
    max_audio_seconds: float = Field(
        3600.0,
        gt=0,
        le=86_400,
        validation_alias=_env("SYNTHSTACK_MAX_AUDIO_SECONDS"),
        description="The longest audio to transcribe; longer is a 413 `audio_too_long`.",
    )
    transcription_model: str = Field(
        "whisper-tiny.en",
        validation_alias=_env("SYNTHSTACK_TRANSCRIPTION_MODEL"),
        description="The default transcription model.",
    )
    whisper_threads: int = Field(
        0,
        ge=0,
        le=64,
        validation_alias=_env("SYNTHSTACK_WHISPER_THREADS"),
        description="CTranslate2 threads for the local Whisper model; 0 = one per core.",
    )
    whisper_beam_size: int = Field(
        5,
        ge=1,
        le=10,
        validation_alias=_env("SYNTHSTACK_WHISPER_BEAM_SIZE"),
        description="Beam width of the local Whisper model (1 = greedy: faster, less accurate).",
    )
    # VAD on every clip by default: it costs little and keeps Whisper from hearing "you" in noise.
    whisper_vad_min_seconds: float = Field(
        0.0,
        ge=0,
        validation_alias=_env("SYNTHSTACK_WHISPER_VAD_MIN_SECONDS"),
        description="Audio at least this long goes through the VAD filter (0 = all audio).",
    )
    # A setting, not a measurement: every worker quotes the same figure (0.05 is the benchmark's,
    # providers/whisper_local.BENCHMARK_RTF).
    whisper_real_time_factor: float = Field(
        0.05,
        gt=0,
        le=100,
        validation_alias=_env("SYNTHSTACK_WHISPER_REAL_TIME_FACTOR"),
        description="Processing seconds per audio second that `estimate-cost` quotes for the "
        "local Whisper model (default: the benchmark's, on 2 cores).",
    )
    cache_max_entries: int = Field(
        10_000, ge=0, validation_alias=_env("SYNTHSTACK_CACHE_MAX_ENTRIES")
    )
    cache_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=1, validation_alias=_env("SYNTHSTACK_CACHE_TTL_SECONDS")
    )
    cache_shared_across_tenants: bool = Field(
        False,
        validation_alias=_env("SYNTHSTACK_CACHE_SHARED_ACROSS_TENANTS"),
        description="Let every tenant hit the cache entries of every other (one embedding per "
        "text for all). Off: each tenant's entries are its own, so no tenant can tell by timing "
        "what another one sent.",
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
    rate_limits: str = Field(
        "",
        validation_alias=_env("SYNTHSTACK_RATE_LIMITS"),
        description="Requests per API key and group of operations, e.g. "
        "`default=600/minute;generation=60/minute` (`default`: every group without its own "
        "entry); unset or empty = no limits. Tenants' overrides are stored in the database.",
    )
    token_budget: str = Field(
        "",
        validation_alias=_env("SYNTHSTACK_TOKEN_BUDGET"),
        description="Chat-model tokens (prompt and completion, as the model counts them) each "
        "tenant may spend per window, e.g. `100000/minute`; unset or empty = no budget. A "
        "tenant's override of `tokens` replaces it.",
    )
    rate_limit_cache_seconds: float = Field(
        10.0,
        ge=0,
        le=3600,
        validation_alias=_env("SYNTHSTACK_RATE_LIMIT_CACHE_SECONDS"),
        description="How long a tenant's rate-limit overrides are remembered by a process (so an "
        "edit applies within this delay).",
    )
    usage_flush_seconds: float = Field(
        5.0,
        ge=0.05,
        le=3600,
        validation_alias=_env("SYNTHSTACK_USAGE_FLUSH_SECONDS"),
        description="How often a process writes the usage it counted to PostgreSQL (a crash loses "
        "at most this much of its usage; a clean shutdown loses none).",
    )
    max_active_requests: int = Field(
        8,
        ge=1,
        le=10_000,
        validation_alias=_env("SYNTHSTACK_MAX_ACTIVE_REQUESTS"),
        description="Requests a process runs at once (the others wait in order); the probes and "
        "`/metrics` do not count. 8 is the Django backend's threads per worker.",
    )
    max_queued_requests: int = Field(
        0,
        ge=0,
        le=100_000,
        validation_alias=_env("SYNTHSTACK_MAX_QUEUED_REQUESTS"),
        description="Requests a process keeps waiting for a place; one more is refused at once "
        "with 503 `overloaded` and `Retry-After`. 0 = unbounded (nothing refused).",
    )
    bind_host: str = Field(
        "127.0.0.1",
        validation_alias=_env("SYNTHSTACK_HOST"),
        description="The address the server binds; auth may be off only on loopback.",
    )
    migrate_on_start: bool = Field(True, validation_alias=_env("SYNTHSTACK_MIGRATE_ON_START"))

    # -- operating it (observability.py) --------------------------------------------------------
    metrics_token: SecretStr | None = Field(
        None,
        validation_alias=_env("SYNTHSTACK_METRICS_TOKEN"),
        description="`GET /metrics` answers a caller sending `Authorization: Bearer <this>` "
        "(16+ characters); unset, only a loopback client in development may read it, and "
        "everyone else gets a 404.",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        validation_alias=_env("SYNTHSTACK_LOG_FORMAT"),
        description="`json`: one JSON object per log line (one per request from the access "
        "log); `text`: plain lines.",
    )
    plugins: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        None,
        validation_alias=_env("SYNTHSTACK_PLUGINS"),
        description="The plugins (`synthstack.modules` entry points) to serve, comma-separated; "
        "unset = every installed one, empty = none.",
    )

    # -- jobs (features/jobs) -------------------------------------------------------------------
    worker: Literal["embedded", "none"] | None = Field(
        None,
        validation_alias=_env("SYNTHSTACK_WORKER"),
        description="`embedded`: each server process also runs jobs (a Procrastinate worker on "
        "its event loop); `none`: only `synthstack worker` runs them. Unset = `embedded` in "
        "development, `none` in production.",
    )
    worker_concurrency: int = Field(
        1,
        ge=1,
        le=64,
        validation_alias=_env("SYNTHSTACK_WORKER_CONCURRENCY"),
        description="Jobs one worker (embedded, or `synthstack worker` without --concurrency) "
        "runs at once.",
    )
    job_max_attempts: int = Field(
        4,
        ge=1,
        le=20,
        validation_alias=_env("SYNTHSTACK_JOB_MAX_ATTEMPTS"),
        description="Runs of a job whose provider failed (429, 5xx) before it fails (runs the "
        "database failed do not count); the waits between them grow (2, 4, 8... s), or are the "
        "provider's Retry-After (at most 300 s).",
    )
    job_stalled_seconds: float = Field(
        30.0,
        ge=1,
        le=3600,
        validation_alias=_env("SYNTHSTACK_JOB_STALLED_SECONDS"),
        description="A worker silent this long (it beats every third of it) is taken for dead: "
        "its running jobs are queued again.",
    )
    job_embed_batching: bool = Field(
        True,
        validation_alias=_env("SYNTHSTACK_JOB_EMBED_BATCHING"),
        description="Jobs a worker runs at once share embedding runs: texts of indexing jobs "
        "that wait for the model are embedded together, sorted by length.",
    )
    job_retention_seconds: int = Field(
        7 * 24 * 3600,
        ge=60,
        validation_alias=_env("SYNTHSTACK_JOB_RETENTION_SECONDS"),
        description="How long a finished job (its status, result or error) stays readable.",
    )

    # -- chat models (providers/llm.py) ---------------------------------------------------------
    anthropic_base_url: str | None = Field(
        None,
        validation_alias=_env("ANTHROPIC_BASE_URL"),
        description="Another base URL for Anthropic's API (a proxy or a local stub).",
    )
    llm_model: str | None = Field(
        None,
        validation_alias=_env("SYNTHSTACK_LLM_MODEL"),
        description=(
            "The default chat model; it must be served here. Unset = the first remote "
            "provider's default (OpenAI before Anthropic), else the local model."
        ),
    )
    openai_chat_models: Annotated[tuple[str, ...], NoDecode] = Field(
        ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"),
        validation_alias=_env("SYNTHSTACK_OPENAI_CHAT_MODELS"),
        description=(
            "Comma-separated chat models served through OpenAI or OPENAI_BASE_URL, "
            "the default first (e.g. the model names a vLLM or Ollama server knows)."
        ),
    )
    anthropic_chat_models: Annotated[tuple[str, ...], NoDecode] = Field(
        ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1"),
        validation_alias=_env("SYNTHSTACK_ANTHROPIC_CHAT_MODELS"),
        description="Comma-separated Anthropic chat models, the default first.",
    )
    analysis_llm: Literal["auto", "off"] = Field(
        "auto",
        validation_alias=_env("SYNTHSTACK_ANALYSIS_LLM"),
        description="`auto`: text analysis and complexity estimates come from the default chat "
        "model when a remote provider is configured; `off`: always from the offline analysers.",
    )
    local_llm_enabled: bool = Field(
        True,
        validation_alias=_env("SYNTHSTACK_LOCAL_LLM"),
        description="Serve the offline SmolLM2-135M-Instruct model (loaded on first use).",
    )
    local_llm_threads: int = Field(
        1,
        ge=0,
        le=64,
        validation_alias=_env("SYNTHSTACK_LOCAL_LLM_THREADS"),
        description=(
            "llama.cpp threads for the local model; 0 = one per core. One is the default: on a "
            "shared 2-core machine two threads spin-wait for each other (providers/llm_local.py)."
        ),
    )
    local_llm_context_tokens: int = Field(
        2048,
        ge=256,
        le=8192,
        validation_alias=_env("SYNTHSTACK_LOCAL_LLM_CONTEXT_TOKENS"),
        description="The local model's context window (prompt + answer); SmolLM2 knows 8192.",
    )
    max_generation_tokens: int = Field(
        4096,
        ge=1,
        le=131_072,
        validation_alias=_env("SYNTHSTACK_MAX_GENERATION_TOKENS"),
        description="The largest `max_tokens` a chat request may ask for.",
    )

    @field_validator("openai_chat_models", "anthropic_chat_models", mode="before")
    @classmethod
    def _split_model_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(item.strip() for item in value.split(",") if item.strip())
        if isinstance(value, list | tuple):
            if not value:
                raise ValueError("list at least one chat model")
            if len(set(value)) != len(value):
                raise ValueError("a chat model is listed twice")
        return value

    @field_validator("plugins", mode="before")
    @classmethod
    def _split_plugin_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("anthropic_base_url", "llm_model", mode="before")
    @classmethod
    def _blank_llm_setting_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator(
        "database_url",
        "redis_url",
        "qdrant_url",
        "qdrant_path",
        "openai_base_url",
        "worker",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("openai_api_key", "anthropic_api_key", "metrics_token", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("rate_limits", mode="after")
    @classmethod
    def _check_rate_limits(cls, value: str) -> str:
        parse_rate_limits(value)  # a ValueError names the setting (its alias) at start-up
        return value

    @field_validator("token_budget", mode="after")
    @classmethod
    def _check_token_budget(cls, value: str) -> str:
        if value.strip():
            parse_rate(value)
        return value

    def parsed_token_budget(self) -> RateLimitItem | None:
        """``SYNTHSTACK_TOKEN_BUDGET`` (``None``: no budget)."""
        return parse_rate(self.token_budget) if self.token_budget.strip() else None

    def parsed_rate_limits(self) -> dict[str, RateLimitItem]:
        """``SYNTHSTACK_RATE_LIMITS`` by policy name (``default`` or a group)."""
        return parse_rate_limits(self.rate_limits)

    @field_validator("metrics_token")
    @classmethod
    def _long_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("SYNTHSTACK_METRICS_TOKEN needs 16 or more characters")
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
    def worker_mode(self) -> Literal["embedded", "none"]:
        """Whether the server processes run jobs (``SYNTHSTACK_WORKER``, else by environment)."""
        if self.worker is not None:
            return self.worker
        return "embedded" if self.development else "none"

    @property
    def development(self) -> bool:
        """``SYNTHSTACK_ENV`` is ``development`` (the default): what loosens the rules for a
        caller on this machine (authentication off without keys, ``/metrics`` from loopback)."""
        return self.env == "development"

    @property
    def openai_configured(self) -> bool:
        """OpenAI (or an OpenAI-compatible server) can be called."""
        return self.openai_api_key is not None or self.openai_base_url is not None
