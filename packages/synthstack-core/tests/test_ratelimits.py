"""Rate limits (``SYNTHSTACK_RATE_LIMITS`` and tenants' overrides) in the request pipeline.

The setting's parsing and validation; then real stacks on a real PostgreSQL and a real Redis: the
N+1-th request of a key is a 429 with ``Retry-After`` and the draft's ``RateLimit`` headers, every
answer after the count carries ``RateLimit``, ``/health`` and ``/ready`` are never limited, two
stacks on one Redis share a counter, a tenant's stored override beats the setting, and a Redis
outage falls back to counting in the process. Token budgets (``SYNTHSTACK_TOKEN_BUDGET``): spent by
the usage a chat model (the OpenAI stub) reports, streamed or not, per tenant.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from pydantic import ValidationError

from synthstack_core import Settings, SynthStack
from synthstack_core.http import HttpRequest, HttpResponse
from synthstack_core.operations import by_id as operation
from synthstack_core.ratelimits import RateLimitDecision, parse_rate, parse_rate_limits
from synthstack_core.security import ConfigurationError
from synthstack_testing import OpenAIStub

KEY_A = "rate-limit-key-a-0001"
KEY_A2 = "rate-limit-key-a-0002"
KEY_B = "rate-limit-key-b-0001"
POLICY = re.compile(r'^"(?P<name>[a-z]+)";q=(?P<q>\d+);w=(?P<w>\d+)$')
REMAINING = re.compile(r'^"(?P<name>[a-z]+)";r=(?P<r>\d+);t=(?P<t>\d+)$')


# -- the setting -----------------------------------------------------------------------------


def test_the_setting_is_parsed_by_name() -> None:
    rules = parse_rate_limits(" default=600/minute ; generation=60 per minute;rag=10/2 seconds; ")
    assert {name: (r.amount, r.get_expiry()) for name, r in rules.items()} == {
        "default": (600, 60),
        "generation": (60, 60),
        "rag": (10, 2),
    }
    assert parse_rate_limits("") == {} and parse_rate_limits(" ; ") == {}
    assert parse_rate("unlimited", allow_unlimited=True) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("default", "is not `group=rate`"),
        ("default=600/fortnight", "is not a rate"),
        ("default=0/minute", "is not a rate"),
        ("default=10/minute,5/second", "is not a rate"),
        ("default=unlimited", "is not a rate"),
        ("Generation=1/minute", "is not a group name"),
        ("health=1/second", "never limited"),
        ("rag=1/second;rag=2/second", "given twice"),
    ],
)
def test_an_invalid_setting_fails_naming_it(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTHSTACK_RATE_LIMITS", value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "SYNTHSTACK_RATE_LIMITS" in str(caught.value)
    assert message in str(caught.value)


def test_the_headers_follow_the_draft() -> None:
    decision = RateLimitDecision("generation", 60, 60, 12, 7)
    assert decision.headers() == [
        ("RateLimit-Policy", '"generation";q=60;w=60'),
        ("RateLimit", '"generation";r=12;t=7'),
    ]


# -- through the pipeline ----------------------------------------------------------------------


def _settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "SYNTHSTACK_API_KEYS": f"rl-a:{KEY_A},rl-a:{KEY_A2},rl-b:{KEY_B}",
        "SYNTHSTACK_KEY_CACHE_SECONDS": 0,
        "SYNTHSTACK_RATE_LIMIT_CACHE_SECONDS": 0,
        "SYNTHSTACK_MIGRATE_ON_START": False,
        **overrides,
    }
    return Settings(**values)


async def _call(
    stack: SynthStack,
    operation_id: str,
    key: str | None = KEY_A,
    body: bytes | None = None,
    *,
    header: str = "authorization",
) -> HttpResponse:
    op = operation(operation_id)
    headers = {"x-request-id": "rate-limit-test"}
    if key is not None:
        headers[header] = f"Bearer {key}" if header == "authorization" else key
    if body is not None:
        headers["content-type"] = "application/json"
    return await stack.handle(op, HttpRequest(op.method, op.path, headers, body or b""))


def _headers(response: HttpResponse) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers}


def _left(response: HttpResponse) -> tuple[str, int, int]:
    """The policy, remaining requests and reset seconds of ``RateLimit``."""
    found = REMAINING.fullmatch(_headers(response)["ratelimit"])
    assert found is not None, response.headers
    return found["name"], int(found["r"]), int(found["t"])


@pytest.fixture
def clean_redis(redis_server: Any) -> Iterator[Any]:
    """The session's Redis without any rate-limit counter (before and after the test)."""

    def clear() -> None:
        client = redis.Redis.from_url(redis_server.url)
        try:
            keys = list(client.scan_iter("synthstack:ratelimit*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    clear()
    yield redis_server
    clear()


@pytest.fixture(params=["memory", "redis"])
async def limited(
    request: pytest.FixtureRequest, module_database_url: str, clean_redis: Any
) -> AsyncIterator[SynthStack]:
    """A stack with 3 embeddings requests a minute per key, 5 of everything else."""
    redis_url = {"REDIS_URL": clean_redis.url} if request.param == "redis" else {}
    settings = _settings(
        module_database_url,
        SYNTHSTACK_RATE_LIMITS="default=5/minute;embeddings=3/minute",
        **redis_url,
    )
    async with SynthStack(settings) as stack:
        assert stack.rate_limiter.storage == request.param
        yield stack


async def test_the_request_over_the_limit_is_a_429_with_the_drafts_headers(
    limited: SynthStack,
) -> None:
    for expected in (2, 1, 0):
        response = await _call(limited, "embeddings-models")
        assert response.status == 200
        headers = _headers(response)
        assert headers["ratelimit-policy"] == '"embeddings";q=3;w=60'
        name, remaining, reset = _left(response)
        assert (name, remaining) == ("embeddings", expected)
        assert 58 <= reset <= 60
    refused = await _call(limited, "embeddings-models")
    assert refused.status == 429
    headers = _headers(refused)
    assert headers["content-type"] == "application/problem+json"
    assert 58 <= int(headers["retry-after"]) <= 60
    assert headers["ratelimit-policy"] == '"embeddings";q=3;w=60'
    assert _left(refused)[:2] == ("embeddings", 0)
    problem = json.loads(refused.body)
    assert problem["status"] == 429 and problem["code"] == "rate_limited"
    assert problem["instance"] == "/api/v1/embeddings/models"
    assert problem["request_id"] == "rate-limit-test"
    assert limited.rate_limiter.refused == 1
    # Counted before the body is read: a malformed body is refused for the limit, not parsed.
    malformed = await _call(limited, "embeddings-generate", body=b"{not json")
    assert malformed.status == 429
    # Another group has its own policy and counter (here `default`'s).
    other = await _call(limited, "generation-models")
    assert other.status == 200 and _left(other)[:2] == ("default", 4)
    # Another key of the same tenant, and another tenant's key, count on their own.
    assert _left(await _call(limited, "embeddings-models", KEY_A2))[:2] == ("embeddings", 2)
    assert _left(await _call(limited, "embeddings-models", KEY_B))[:2] == ("embeddings", 2)


async def test_every_answer_after_the_count_carries_ratelimit(limited: SynthStack) -> None:
    invalid = await _call(limited, "embeddings-generate", body=b'{"text": 5}')
    assert invalid.status == 422
    assert _left(invalid)[:2] == ("embeddings", 2)
    malformed = await _call(limited, "embeddings-generate", body=b"{")
    assert malformed.status == 400
    assert _left(malformed)[:2] == ("embeddings", 1)
    # Before the count: an unauthenticated request is neither counted nor told about limits.
    unauthenticated = await _call(limited, "embeddings-models", key="not-a-key-of-anyone")
    assert unauthenticated.status == 401
    assert "ratelimit" not in _headers(unauthenticated)
    assert _left(await _call(limited, "embeddings-models"))[:2] == ("embeddings", 0)


async def test_a_key_counts_the_same_whichever_header_carries_it(limited: SynthStack) -> None:
    assert _left(await _call(limited, "embeddings-models"))[1] == 2
    assert _left(await _call(limited, "embeddings-models", header="x-api-key"))[1] == 1


async def test_health_and_readiness_are_never_limited(
    module_database_url: str, clean_redis: Any
) -> None:
    settings = _settings(module_database_url, SYNTHSTACK_RATE_LIMITS="default=1/minute")
    async with SynthStack(settings, backend="fastapi") as stack:  # /health names its backend
        assert (await _call(stack, "embeddings-models")).status == 200
        assert (await _call(stack, "embeddings-models")).status == 429
        for _ in range(3):
            for operation_id in ("health-liveness", "health-readiness"):
                response = await _call(stack, operation_id)
                assert response.status in (200, 503)
                assert not {"ratelimit", "ratelimit-policy", "retry-after"} & set(
                    _headers(response)
                )


async def test_no_setting_no_limit_and_no_header(module_database_url: str) -> None:
    async with SynthStack(_settings(module_database_url)) as stack:
        for _ in range(5):
            response = await _call(stack, "embeddings-models")
            assert response.status == 200
            assert "ratelimit" not in _headers(response)


async def test_two_stacks_on_one_redis_share_a_counter(
    module_database_url: str, clean_redis: Any
) -> None:
    settings = _settings(
        module_database_url, SYNTHSTACK_RATE_LIMITS="rag=4/minute", REDIS_URL=clean_redis.url
    )
    async with SynthStack(settings) as one, SynthStack(settings) as two:
        seen = [_left(await _call(stack, "rag-stats"))[1] for stack in (one, two, one, two)]
        assert seen == [3, 2, 1, 0]
        assert (await _call(one, "rag-stats")).status == 429
        assert (await _call(two, "rag-stats")).status == 429
        # `default` is not set: other groups are not limited at all.
        assert "ratelimit" not in _headers(await _call(one, "embeddings-models"))


async def test_a_tenants_override_beats_the_setting(
    module_database_url: str, clean_redis: Any
) -> None:
    settings = _settings(
        module_database_url,
        SYNTHSTACK_RATE_LIMITS="default=50/minute;embeddings=50/minute",
        REDIS_URL=clean_redis.url,
    )
    async with SynthStack(settings) as stack:
        assert _left(await _call(stack, "embeddings-models"))[:2] == ("embeddings", 49)
        await stack.rate_limits.set("rl-a", "embeddings", "2/hour")
        await stack.rate_limits.set("rl-a", "default", "unlimited")
        try:
            response = await _call(stack, "embeddings-models")
            assert _headers(response)["ratelimit-policy"] == '"embeddings";q=2;w=3600'
            assert _left(response)[1] == 1
            assert (await _call(stack, "embeddings-models")).status == 200
            assert (await _call(stack, "embeddings-models")).status == 429
            # `unlimited`: no limit for the tenant's `default` groups, so no header either.
            for _ in range(3):
                response = await _call(stack, "generation-models")
                assert response.status == 200 and "ratelimit" not in _headers(response)
            # Only that tenant: another keeps the setting's limits.
            assert _left(await _call(stack, "embeddings-models", KEY_B))[:2] == ("embeddings", 49)
            assert [(o.tenant, o.policy, o.rate) for o in await stack.rate_limits.list("rl-a")] == [
                ("rl-a", "default", "unlimited"),
                ("rl-a", "embeddings", "2/hour"),
            ]
        finally:
            assert await stack.rate_limits.clear("rl-a") == 2
        # Cleared: the setting applies again (a new limit, a new counter).
        assert _left(await _call(stack, "generation-models"))[:2] == ("default", 49)


async def test_an_edit_applies_after_the_cache_period(
    module_database_url: str, clean_redis: Any
) -> None:
    settings = _settings(
        module_database_url,
        SYNTHSTACK_RATE_LIMITS="default=50/minute",
        SYNTHSTACK_RATE_LIMIT_CACHE_SECONDS=3600,
    )
    async with SynthStack(settings) as stack:
        assert _left(await _call(stack, "rag-stats"))[:2] == ("default", 49)
        await stack.rate_limits.set("rl-a", "rag", "1/minute")
        try:
            # Remembered for the cache period: the edit is not seen yet...
            assert _left(await _call(stack, "rag-stats"))[:2] == ("default", 48)
            stack.rate_limiter.forget("rl-a")  # ... as if the period had passed
            assert _left(await _call(stack, "rag-stats"))[:2] == ("rag", 0)
        finally:
            await stack.rate_limits.clear("rl-a")


async def test_a_redis_outage_falls_back_to_counting_in_process(
    module_database_url: str, clean_redis: Any
) -> None:
    settings = _settings(
        module_database_url, SYNTHSTACK_RATE_LIMITS="default=3/minute", REDIS_URL=clean_redis.url
    )
    async with SynthStack(settings) as stack:
        assert _left(await _call(stack, "rag-stats"))[1] == 2
        clean_redis.stop()
        try:
            # No 500: counted in the process (a counter of its own) while Redis is away.
            down = await _call(stack, "rag-stats")
            assert down.status == 200 and _left(down)[1] == 2
            assert stack.rate_limiter.storage == "memory"
            assert _left(await _call(stack, "rag-stats"))[1] == 1
        finally:
            clean_redis.start()
        # Redis is tried again after the pause (5 s), and used: its counter went with the
        # restarted server (no persistence), so it counts afresh.
        await asyncio.sleep(5.2)
        assert _left(await _call(stack, "rag-stats"))[1] == 2
        assert stack.rate_limiter.storage == "redis"


async def test_an_unknown_group_fails_the_start(module_database_url: str) -> None:
    settings = _settings(module_database_url, SYNTHSTACK_RATE_LIMITS="generaton=5/minute")
    with pytest.raises(ConfigurationError, match="SYNTHSTACK_RATE_LIMITS names 'generaton'"):
        await SynthStack(settings).start()


async def test_an_invalid_override_is_refused(module_database_url: str) -> None:
    from synthstack_core.errors import InvalidRequest

    async with SynthStack(_settings(module_database_url)) as stack:
        with pytest.raises(InvalidRequest, match="Invalid rate"):
            await stack.rate_limits.set("rl-a", "embeddings", "lots")
        with pytest.raises(InvalidRequest, match="Invalid policy"):
            await stack.rate_limits.set("rl-a", "health", "1/minute")
        assert await stack.rate_limits.list("rl-a") == []


# -- token budgets -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai_stub() -> Iterator[OpenAIStub]:
    """The local stub of OpenAI's API: chat completions with their usage."""
    with OpenAIStub() as stub:
        yield stub


@pytest.fixture
async def budgeted(
    module_database_url: str, openai_stub: OpenAIStub, clean_redis: Any
) -> AsyncIterator[SynthStack]:
    """A stack whose tenants may each spend 30 chat-model tokens a minute, counted in Redis."""
    settings = _settings(
        module_database_url,
        SYNTHSTACK_TOKEN_BUDGET="30/minute",
        REDIS_URL=clean_redis.url,
        OPENAI_API_KEY=openai_stub.api_key,
        OPENAI_BASE_URL=openai_stub.base_url,
        SYNTHSTACK_PROVIDER_MAX_RETRIES=0,
    )
    async with SynthStack(settings) as stack:
        yield stack


def _prompt(stream: bool = False) -> bytes:
    body = {"prompt": "Say something short about cats.", "max_tokens": 8, "stream": stream}
    return json.dumps(body).encode()


async def test_a_tenants_token_budget_is_spent_by_real_usage(budgeted: SynthStack) -> None:
    spent: list[int] = []
    for _ in range(30):
        response = await _call(budgeted, "generation-text", body=_prompt())
        if response.status != 200:
            break
        spent.append(json.loads(response.body)["usage"]["total_tokens"])
    # Served while tokens were left, whatever the last one cost; refused once none are left.
    assert spent and sum(spent[:-1]) < 30 <= sum(spent)
    assert response.status == 429
    headers = _headers(response)
    assert headers["ratelimit-policy"] == '"tokens";q=30;w=60'
    assert _left(response)[:2] == ("tokens", 0)
    assert 1 <= int(headers["retry-after"]) <= 60
    assert json.loads(response.body)["code"] == "rate_limited"
    # The budget is the tenant's: another tenant is served.
    assert (await _call(budgeted, "generation-text", KEY_B, body=_prompt())).status == 200
    # An override lifts it for that tenant.
    await budgeted.rate_limits.set("rl-a", "tokens", "unlimited")
    try:
        assert (await _call(budgeted, "generation-text", body=_prompt())).status == 200
    finally:
        await budgeted.rate_limits.clear("rl-a")


async def test_streamed_generations_spend_the_budget_too(budgeted: SynthStack) -> None:
    statuses = []
    for _ in range(30):
        response = await _call(budgeted, "generation-text", KEY_B, body=_prompt(stream=True))
        statuses.append(response.status)
        if response.status != 200:
            break
        assert response.stream is not None
        events = b"".join([chunk async for chunk in response.stream])
        assert b"event: done" in events
    # Counted when each stream ended; refused before any output once the budget is spent.
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}
    assert response.stream is None
    assert _left(response)[:2] == ("tokens", 0)
