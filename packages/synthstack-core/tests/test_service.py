"""The core end to end on real PostgreSQL, real Redis, the real model and the real OpenAI SDK."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
import redis

from synthstack_core import (
    InvalidRequest,
    ModelNotAvailable,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    Settings,
    SynthStack,
    Unauthenticated,
)
from synthstack_core.http import HttpRequest
from synthstack_core.operations import by_id as operation
from synthstack_core.security import ConfigurationError
from synthstack_core.stores.embedded import EmbeddedPostgres
from synthstack_testing import OpenAIStub

KEY = "core-test-key-0001"


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


def _settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "SYNTHSTACK_API_KEYS": f"core-tenant:{KEY}",
        "SYNTHSTACK_KEY_CACHE_SECONDS": 0,
        "SYNTHSTACK_MIGRATE_ON_START": False,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="module")
async def stack(
    database_url: str, redis_server: Any, stub: OpenAIStub
) -> AsyncIterator[SynthStack]:
    settings = _settings(
        database_url,
        REDIS_URL=redis_server.url,
        OPENAI_API_KEY=stub.api_key,
        OPENAI_BASE_URL=stub.base_url,
        SYNTHSTACK_PROVIDER_TIMEOUT_SECONDS=0.5,
        SYNTHSTACK_PROVIDER_MAX_RETRIES=0,
    )
    async with SynthStack(settings) as started:
        yield started


async def test_batch_keeps_order_and_embeds_duplicates_once(stack: SynthStack) -> None:
    batch = await stack.embeddings.batch(["beta text", "alpha text", "beta text"])
    assert batch.count == 3 and batch.dimensions == 384
    vectors = np.asarray(batch.embeddings)
    assert np.allclose(vectors[0], vectors[2])
    single = await stack.embeddings.generate("alpha text")
    assert np.allclose(vectors[1], single.embedding, atol=1e-6)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert batch.usage.total_tokens == batch.usage.prompt_tokens > 0


async def test_similarity_means_something(stack: SynthStack) -> None:
    close = await stack.embeddings.similarity("The cat sits on the mat", "A feline rests on a rug")
    far = await stack.embeddings.similarity("The cat sits on the mat", "Quarterly revenue fell")
    assert close.similarity > far.similarity + 0.3


async def test_results_are_cached_in_redis(stack: SynthStack, redis_server: Any) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        text = "a sentence only this test embeds"
        before = len(client.keys("synthstack:emb:*"))
        first = await stack.embeddings.generate(text)
        assert len(client.keys("synthstack:emb:*")) == before + 1
        again = await stack.embeddings.generate(text)
        assert again.embedding == first.embedding and again.usage == first.usage
    finally:
        client.close()


async def test_redis_outage_degrades_to_uncached(stack: SynthStack, redis_server: Any) -> None:
    redis_server.stop()
    try:
        result = await stack.embeddings.generate("served while redis is down")
        assert result.dimensions == 384
        ready = await stack.readiness()
        assert ready.status == "ready"
        assert ready.checks.cache.status == "error" and not ready.checks.cache.required
    finally:
        redis_server.start()
    assert (await stack.readiness()).checks.cache.status == "ok"


async def test_invalid_input_is_rejected_whole(stack: SynthStack) -> None:
    with pytest.raises(InvalidRequest) as info:
        await stack.embeddings.batch(["fine", "", "also fine"])
    assert info.value.errors[0].loc == ("texts", 1)
    with pytest.raises(InvalidRequest):
        await stack.embeddings.generate("nul \x00 inside")
    with pytest.raises(ModelNotAvailable):
        await stack.embeddings.generate("x", model="no-such-model")
    with pytest.raises(ModelNotAvailable):
        await stack.embeddings.generate("x", dimensions=100)


async def test_openai_models_through_the_real_sdk(stack: SynthStack, stub: OpenAIStub) -> None:
    result = await stack.embeddings.generate("hello", model="text-embedding-3-small", dimensions=64)
    assert result.dimensions == 64 and len(result.embedding) == 64
    assert abs(float(np.linalg.norm(result.embedding)) - 1.0) < 1e-5
    sent = stub.requests[-1]
    assert sent[1]["model"] == "text-embedding-3-small" and sent[1]["dimensions"] == 64
    models = stack.embeddings.models()
    assert models.data[0].id == models.default_model == "all-MiniLM-L6-v2"
    assert {"text-embedding-3-small", "text-embedding-3-large"} <= {m.id for m in models.data}


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("rate", RateLimited),
        ("server", ProviderError),
        ("garbage", ProviderError),
        ("slow", ProviderTimeout),
    ],
)
async def test_provider_failures_map_to_problems(
    stack: SynthStack, stub: OpenAIStub, fault: str, error: type[Exception]
) -> None:
    stub.reset()
    if fault == "rate":
        stub.fail_next(429, retry_after=7)
    elif fault == "server":
        stub.fail_next(500)
    elif fault == "garbage":
        stub.garbage_next()
    else:
        stub.delay_next(2.0)
    with pytest.raises(error) as info:
        await stack.embeddings.generate(f"fault {fault}", model="text-embedding-3-large")
    assert "sk-stub-key" not in str(info.value.args)
    if fault == "rate":
        assert info.value.headers["Retry-After"] == "7"  # type: ignore[attr-defined]
    stub.reset()


async def test_keys_from_settings_and_database(stack: SynthStack) -> None:
    principal = await stack.auth.authenticate({"authorization": f"Bearer {KEY}"})
    assert principal.tenant == "core-tenant" and principal.source == "settings"
    created = await stack.api_keys.create("db-tenant", "ci")
    principal = await stack.auth.authenticate({"x-api-key": created.secret})
    assert principal.tenant == "db-tenant" and principal.key_id == str(created.record.id)
    assert created.secret not in repr(await stack.api_keys.list("db-tenant"))
    await stack.api_keys.revoke(created.record.id)
    with pytest.raises(Unauthenticated):
        await stack.auth.authenticate({"x-api-key": created.secret})
    with pytest.raises(Unauthenticated):
        await stack.auth.authenticate({})
    with pytest.raises(Unauthenticated):
        await stack.auth.authenticate({"authorization": "Bearer " + created.secret[:-1] + "x"})


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {KEY},Bearer {KEY}"},
        {"authorization": f"Bearer not-a-key, Bearer {KEY}"},
        {"x-api-key": f"{KEY},{KEY}"},
        {"x-api-key": f"wrong,{KEY}", "authorization": f"Bearer {KEY}"},
    ],
)
async def test_a_repeated_credential_header_is_refused(
    stack: SynthStack, headers: dict[str, str]
) -> None:
    """The adapters give a repeated header's values joined by ``,`` (tests/cli checks the live
    servers): whichever value a proxy checked, the request is refused."""
    with pytest.raises(Unauthenticated) as refused:
        await stack.auth.authenticate(headers)
    assert refused.value.instance_code == "repeated_credentials"


async def test_production_refuses_to_start_without_keys(empty_database_url: str) -> None:
    settings = _settings(empty_database_url, SYNTHSTACK_API_KEYS="", SYNTHSTACK_ENV="production")
    with pytest.raises(ConfigurationError, match="production needs API keys"):
        await SynthStack(settings).start()


async def test_a_database_key_is_enough_for_production(empty_database_url: str) -> None:
    async with SynthStack(_settings(empty_database_url)) as first:
        created = await first.api_keys.create("prod-tenant")
    settings = _settings(empty_database_url, SYNTHSTACK_API_KEYS="", SYNTHSTACK_ENV="production")
    async with SynthStack(settings) as production:
        principal = await production.auth.authenticate({"x-api-key": created.secret})
        assert principal.tenant == "prod-tenant"
        with pytest.raises(Unauthenticated):
            await production.auth.authenticate({})


async def test_development_without_keys_only_on_loopback(empty_database_url: str) -> None:
    exposed = _settings(empty_database_url, SYNTHSTACK_API_KEYS="", SYNTHSTACK_HOST="0.0.0.0")
    with pytest.raises(ConfigurationError, match="loopback"):
        await SynthStack(exposed).start()
    async with SynthStack(_settings(empty_database_url, SYNTHSTACK_API_KEYS="")) as open_stack:
        principal = await open_stack.auth.authenticate({})
        assert principal.source == "anonymous"


async def test_database_down_makes_readiness_fail() -> None:
    """A second service on its own embedded PostgreSQL runs beside the first; then it loses it."""
    data_dir = Path(__file__).parents[3] / ".pytest-services" / f"down-{os.getpid()}"
    embedded = EmbeddedPostgres(data_dir)
    url = embedded.start()
    stack = SynthStack(Settings(DATABASE_URL=url, SYNTHSTACK_API_KEYS=f"t:{KEY}"))
    await stack.start()
    try:
        assert (await stack.readiness()).status == "ready"
        embedded.stop()
        report = await stack.readiness()
        assert report.status == "not_ready"
        assert report.checks.database.status == "error"
        assert report.checks.embedding_model.status == "ok"
        response = await stack.handle(
            operation("health-readiness"), HttpRequest("GET", "/ready", {})
        )
        assert response.status == 503
        assert b'"database":{"status":"error"' in response.body
    finally:
        await stack.aclose()


def test_cli_manages_keys(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    run = [sys.executable, "-m", "synthstack_core.cli", "keys"]
    created = subprocess.run([*run, "create", "--tenant", "cli-tenant", "--name", "laptop"],
                             env=env, capture_output=True, text=True, check=True)  # fmt: skip
    key = next(line.split()[1] for line in created.stdout.splitlines() if line.startswith("key:"))
    key_id = next(line.split()[1] for line in created.stdout.splitlines() if line.startswith("id:"))
    listed = subprocess.run([*run, "list", "--tenant", "cli-tenant"], env=env,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert key_id in listed.stdout and key not in listed.stdout and "active" in listed.stdout
    subprocess.run([*run, "revoke", key_id], env=env, capture_output=True, check=True)
    listed = subprocess.run([*run, "list", "--tenant", "cli-tenant"], env=env,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert "revoked" in listed.stdout


async def test_revoking_through_the_service_takes_effect_at_once(empty_database_url: str) -> None:
    settings = _settings(empty_database_url, SYNTHSTACK_KEY_CACHE_SECONDS=60)
    async with SynthStack(settings) as stack:
        created = await stack.create_api_key("fast-revoke")
        headers = {"authorization": f"Bearer {created.secret}"}
        assert (await stack.auth.authenticate(headers)).tenant == "fast-revoke"
        await stack.revoke_api_key(created.record.prefix)
        with pytest.raises(Unauthenticated):
            await stack.auth.authenticate(headers)


async def test_first_key_turns_development_auth_on(empty_database_url: str) -> None:
    async with SynthStack(_settings(empty_database_url, SYNTHSTACK_API_KEYS="")) as stack:
        assert (await stack.auth.authenticate({})).source == "anonymous"
        await stack.create_api_key("dev")
        with pytest.raises(Unauthenticated):
            await stack.auth.authenticate({})


async def test_a_key_created_by_another_process_turns_development_auth_on(
    empty_database_url: str,
) -> None:
    """Authentication off (development, no key at start); ``synthstack keys create`` in another
    process: one key-cache period later, a request without a key is a 401, with it a 200."""
    settings = _settings(empty_database_url, SYNTHSTACK_API_KEYS="", SYNTHSTACK_KEY_CACHE_SECONDS=1)
    models = operation("embeddings-models")

    async def status(headers: dict[str, str]) -> int:
        response = await stack.handle(
            models, HttpRequest("GET", "/api/v1/embeddings/models", headers)
        )
        return response.status

    async with SynthStack(settings) as stack:
        assert await status({}) == 200
        created = await anyio.run_process(
            [sys.executable, "-m", "synthstack_core.cli", "keys", "create", "--tenant", "later"],
            env={**os.environ, "DATABASE_URL": empty_database_url},
        )
        lines = created.stdout.decode().splitlines()
        key = next(line.split()[1] for line in lines if line.startswith("key:"))
        await anyio.sleep(1.05)  # one key-cache period
        assert await status({}) == 401
        assert await status({"authorization": f"Bearer {key}"}) == 200
        assert await status({"x-api-key": "ssk_000000000000_not-a-key"}) == 401
        assert await status({}) == 401


def test_cli_refuses_an_over_long_key_name_in_one_line(database_url: str) -> None:
    """No traceback (it showed the row's values, the key's hash among them): one line, status 2,
    and no key created."""
    env = {**os.environ, "DATABASE_URL": database_url}
    run = [sys.executable, "-m", "synthstack_core.cli", "keys"]
    for name in ("x" * 129, "n" * 500):
        refused = subprocess.run([*run, "create", "--tenant", "long-name", "--name", name],
                                 env=env, capture_output=True, text=True)  # fmt: skip
        assert refused.returncode == 2, refused.stderr
        assert refused.stdout == ""
        assert refused.stderr.startswith("error: A key's name is at most 128 characters")
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert "Traceback" not in refused.stderr and "key_hash" not in refused.stderr
    listed = subprocess.run([*run, "list", "--tenant", "long-name"], env=env,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert listed.stdout == ""
    fits = subprocess.run([*run, "create", "--tenant", "long-name", "--name", "x" * 128],
                          env=env, capture_output=True, text=True)  # fmt: skip
    assert fits.returncode == 0, fits.stderr


@pytest.mark.parametrize("name", ["", "a:b", "a,b", "-lead", "x" * 65, "space here"])
async def test_tenant_names_are_checked(stack: SynthStack, name: str) -> None:
    with pytest.raises(InvalidRequest):
        await stack.create_api_key(name)


async def test_openai_models_need_a_key_or_url(empty_database_url: str) -> None:
    async with SynthStack(_settings(empty_database_url)) as stack:
        assert [m.id for m in stack.embeddings.models().data] == ["all-MiniLM-L6-v2"]
        with pytest.raises(ModelNotAvailable):
            await stack.embeddings.generate("x", model="text-embedding-3-small")


async def test_limits_follow_the_settings(empty_database_url: str) -> None:
    settings = _settings(
        empty_database_url,
        SYNTHSTACK_MAX_TEXT_CHARS=10,
        SYNTHSTACK_MAX_BATCH_SIZE=2,
        SYNTHSTACK_MAX_BODY_BYTES=1024,
    )
    auth = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    async with SynthStack(settings) as stack:
        with pytest.raises(InvalidRequest) as too_long:
            await stack.embeddings.generate("eleven char")
        assert too_long.value.errors[0].type == "string_too_long"
        with pytest.raises(InvalidRequest) as too_many:
            await stack.embeddings.batch(["a", "b", "c"])
        assert too_many.value.errors[0].type == "too_long"
        assert (await stack.embeddings.batch(["a", "b"])).count == 2
        generate = operation("embeddings-generate")
        big = HttpRequest("POST", generate.path, auth, b'{"text": "' + b"x" * 1100 + b'"}')
        assert (await stack.handle(generate, big)).status == 413
        ok = HttpRequest("POST", generate.path, auth, b'{"text": "ten chars!"}')
        assert (await stack.handle(generate, ok)).status == 200
