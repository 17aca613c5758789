"""The chat providers: the real ``openai`` and ``anthropic`` SDKs against the local stubs, and the
offline SmolLM2 model for real; the registry and its default-model rules."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Literal

import pytest

from synthstack_core.errors import (
    ModelNotAvailable,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    SynthStackError,
)
from synthstack_core.providers.factory import build_llm_registry
from synthstack_core.providers.llm import (
    ChatCompletion,
    ChatDelta,
    ChatMessage,
    ChatRequest,
    LLMProvider,
    LLMRegistry,
)
from synthstack_core.providers.llm_anthropic import AnthropicLLMProvider, accepts_prefill
from synthstack_core.providers.llm_local import LOCAL_MODEL_ID, LocalLLMProvider
from synthstack_core.providers.llm_openai import OpenAILLMProvider
from synthstack_core.providers.openai_client import OpenAIClient
from synthstack_core.ratelimits import BudgetedLLMProvider
from synthstack_core.settings import Settings
from synthstack_testing import AnthropicStub, OpenAIStub, expected_chat_reply

Remote = Literal["openai", "anthropic"]
MODELS: dict[Remote, str] = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
QUESTION = "What colour is the sky on a clear day?"


@pytest.fixture(scope="module")
def openai_stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as stub:
        yield stub


@pytest.fixture(scope="module")
def anthropic_stub() -> Iterator[AnthropicStub]:
    with AnthropicStub() as stub:
        yield stub


def _make_provider(
    kind: Remote,
    openai_stub: OpenAIStub,
    anthropic_stub: AnthropicStub,
    *,
    timeout: float = 5.0,
    max_retries: int = 0,
    api_key: str | None = None,
) -> LLMProvider:
    if kind == "openai":
        openai_stub.reset()
        client = OpenAIClient(
            api_key=api_key or openai_stub.api_key,
            base_url=openai_stub.base_url,
            timeout=timeout,
            max_retries=max_retries,
        )
        return OpenAILLMProvider(client, models=("gpt-4o-mini", "gpt-4o"))
    anthropic_stub.reset()
    return AnthropicLLMProvider(
        api_key=api_key or anthropic_stub.api_key,
        base_url=anthropic_stub.base_url,
        models=("claude-haiku-4-5", "claude-sonnet-4-5"),
        timeout=timeout,
        max_retries=max_retries,
    )


async def _close(provider: LLMProvider) -> None:
    """Close the provider, and the client an OpenAI provider was given (a stack's own closes it)."""
    await provider.aclose()
    if isinstance(provider, OpenAILLMProvider):
        await provider.client.aclose()


@pytest.fixture(params=["openai", "anthropic"])
def kind(request: pytest.FixtureRequest) -> Remote:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def stub(
    kind: Remote, openai_stub: OpenAIStub, anthropic_stub: AnthropicStub
) -> OpenAIStub | AnthropicStub:
    return openai_stub if kind == "openai" else anthropic_stub


@pytest.fixture
async def provider(
    kind: Remote, openai_stub: OpenAIStub, anthropic_stub: AnthropicStub
) -> AsyncIterator[LLMProvider]:
    provider = _make_provider(kind, openai_stub, anthropic_stub)
    yield provider
    await _close(provider)


def _request(
    kind: Remote, *, max_tokens: int = 64, json_output: bool = False, text: str = QUESTION
) -> ChatRequest:
    return ChatRequest(
        (ChatMessage("system", "You are terse."), ChatMessage("user", text)),
        MODELS[kind],
        max_tokens=max_tokens,
        temperature=0.2,
        json_output=json_output,
    )


async def _collect(
    provider: LLMProvider, request: ChatRequest
) -> tuple[list[ChatDelta], ChatCompletion]:
    deltas: list[ChatDelta] = []
    final: list[ChatCompletion] = []
    async for item in provider.stream(request):
        assert not final, "nothing may follow the completion"
        if isinstance(item, ChatDelta):
            deltas.append(item)
        else:
            final.append(item)
    assert len(final) == 1
    return deltas, final[0]


def _assert_clean(error: SynthStackError, *secrets: str) -> None:
    """No key and no provider text in what a caller would see."""
    for secret in secrets:
        assert secret not in error.detail
        assert secret not in str(error)
    assert "Injected fault" not in error.detail


# -- remote providers --------------------------------------------------------------------------


async def test_complete(kind: Remote, provider: LLMProvider) -> None:
    completion = await provider.complete(_request(kind))
    expected = expected_chat_reply(MODELS[kind], QUESTION, max_tokens=64)
    assert completion.content == expected.content
    assert completion.finish_reason == "stop"
    assert completion.model == MODELS[kind]
    assert completion.usage.completion_tokens == expected.completion_tokens
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


async def test_complete_cut_by_max_tokens(kind: Remote, provider: LLMProvider) -> None:
    completion = await provider.complete(_request(kind, max_tokens=3))
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 3
    assert completion.content == expected_chat_reply(MODELS[kind], QUESTION, max_tokens=3).content


async def test_stream_pieces_then_one_completion(kind: Remote, provider: LLMProvider) -> None:
    deltas, completion = await _collect(provider, _request(kind))
    expected = expected_chat_reply(MODELS[kind], QUESTION, max_tokens=64)
    assert [d.text for d in deltas] == list(expected.tokens)
    assert completion.content == "".join(d.text for d in deltas) == expected.content
    assert completion.finish_reason == "stop"
    assert completion.usage.completion_tokens == expected.completion_tokens
    assert completion.usage.prompt_tokens > 0


async def test_stream_usage_matches_complete(kind: Remote, provider: LLMProvider) -> None:
    whole = await provider.complete(_request(kind, max_tokens=5))
    _, streamed = await _collect(provider, _request(kind, max_tokens=5))
    assert streamed.usage == whole.usage
    assert streamed.finish_reason == whole.finish_reason == "length"


async def test_json_output(
    kind: Remote, provider: LLMProvider, stub: OpenAIStub | AnthropicStub
) -> None:
    completion = await provider.complete(_request(kind, json_output=True))
    assert json.loads(completion.content)["ok"] is True
    body = stub.requests[-1].body
    if kind == "openai":
        assert body["response_format"] == {"type": "json_object"}
        assert "json" in body["messages"][0]["content"].lower()
    else:
        assert body["messages"][-1] == {"role": "assistant", "content": "{"}
        assert "JSON" in body["system"]
    deltas, streamed = await _collect(provider, _request(kind, json_output=True))
    assert json.loads("".join(d.text for d in deltas)) == json.loads(streamed.content)


async def test_system_messages(
    kind: Remote, provider: LLMProvider, stub: OpenAIStub | AnthropicStub
) -> None:
    await provider.complete(_request(kind))
    body = stub.requests[-1].body
    if kind == "openai":
        assert body["messages"][0] == {"role": "system", "content": "You are terse."}
        assert body["max_tokens"] == 64  # a compatible base URL gets max_tokens
    else:
        assert body["system"] == "You are terse."
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert "temperature" not in body  # the Messages API takes no sampling parameters now


async def test_rate_limited_with_retry_after(
    kind: Remote, provider: LLMProvider, stub: OpenAIStub | AnthropicStub
) -> None:
    stub.fail_next(429, retry_after=7)
    with pytest.raises(RateLimited) as caught:
        await provider.complete(_request(kind))
    assert caught.value.headers["Retry-After"] == "7"
    _assert_clean(caught.value, stub.api_key)
    stub.fail_next(429, retry_after=3)
    with pytest.raises(RateLimited) as caught:
        await _collect(provider, _request(kind))
    assert caught.value.headers["Retry-After"] == "3"


async def test_server_error_after_retries(
    kind: Remote, openai_stub: OpenAIStub, anthropic_stub: AnthropicStub
) -> None:
    provider = _make_provider(kind, openai_stub, anthropic_stub, max_retries=2)
    stub = openai_stub if kind == "openai" else anthropic_stub
    try:
        stub.fail_next(500, times=3, retry_after=0.01)
        with pytest.raises(ProviderError) as caught:
            await provider.complete(_request(kind))
        assert type(caught.value) is ProviderError
        assert caught.value.status == 502
        assert len(stub.requests) == 3  # the first try and two retries
        _assert_clean(caught.value, stub.api_key)
        # A retry that succeeds is invisible to the caller.
        stub.fail_next(503, retry_after=0.01)
        completion = await provider.complete(_request(kind))
        assert completion.finish_reason == "stop"
    finally:
        await _close(provider)


async def test_timeout(
    kind: Remote, openai_stub: OpenAIStub, anthropic_stub: AnthropicStub
) -> None:
    provider = _make_provider(kind, openai_stub, anthropic_stub, timeout=0.3)
    stub = openai_stub if kind == "openai" else anthropic_stub
    try:
        stub.delay_next(2.0)
        with pytest.raises(ProviderTimeout) as caught:
            await provider.complete(_request(kind))
        assert caught.value.status == 504
        stub.delay_next(2.0)
        with pytest.raises(ProviderTimeout):
            await _collect(provider, _request(kind))
    finally:
        await _close(provider)


async def test_garbage_body(
    kind: Remote, provider: LLMProvider, stub: OpenAIStub | AnthropicStub
) -> None:
    stub.garbage_next()
    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request(kind))
    _assert_clean(caught.value, stub.api_key)
    stub.garbage_next()  # a stream request answered with a JSON body cut short
    with pytest.raises(ProviderError):
        await _collect(provider, _request(kind))


async def test_garbage_event_midway_raises_from_the_iterator(
    kind: Remote, provider: LLMProvider, stub: OpenAIStub | AnthropicStub
) -> None:
    stub.break_stream_next(after_chunks=3, garbage=True)
    seen: list[ChatDelta | ChatCompletion] = []
    with pytest.raises(ProviderError) as caught:
        async for item in provider.stream(_request(kind)):
            seen.append(item)
    assert len(seen) >= 3 and all(isinstance(item, ChatDelta) for item in seen)
    _assert_clean(caught.value, stub.api_key)


async def test_stream_cut_midway_raises_from_the_iterator(
    kind: Remote, provider: LLMProvider, stub: OpenAIStub | AnthropicStub
) -> None:
    stub.break_stream_next(after_chunks=4)
    seen: list[ChatDelta | ChatCompletion] = []
    with pytest.raises(ProviderError) as caught:
        async for item in provider.stream(_request(kind)):
            seen.append(item)
    assert 1 <= len(seen) <= 5 and all(isinstance(item, ChatDelta) for item in seen)
    assert caught.value.status == 502


async def test_first_delta_before_the_end(
    kind: Remote, provider: LLMProvider, stub: OpenAIStub | AnthropicStub
) -> None:
    stub.token_delay = 0.03
    started = time.perf_counter()
    first = None
    async for _item in provider.stream(_request(kind, max_tokens=20)):
        if first is None:
            first = time.perf_counter() - started
    total = time.perf_counter() - started
    assert first is not None
    assert first < total - 0.3  # 19 more tokens, 30 ms apart, came after the first one


async def test_closing_a_stream_early_closes_the_connection(
    kind: Remote, provider: LLMProvider, stub: OpenAIStub | AnthropicStub
) -> None:
    stub.token_delay = 0.05
    iterator = provider.stream(_request(kind, max_tokens=40))
    assert isinstance(await anext(iterator), ChatDelta)
    assert isinstance(await anext(iterator), ChatDelta)
    await iterator.aclose()  # type: ignore[attr-defined]
    assert await asyncio.to_thread(stub.wait_for_aborted_stream, 5.0)
    assert stub.finished_streams == 0


async def test_cancelling_a_stream_closes_the_connection(
    kind: Remote, provider: LLMProvider, stub: OpenAIStub | AnthropicStub
) -> None:
    stub.token_delay = 0.05
    streaming = asyncio.Event()

    async def consume() -> None:
        async for _ in provider.stream(_request(kind, max_tokens=40)):
            streaming.set()

    task = asyncio.create_task(consume())
    # Cancel once pieces flow, not after a fixed time: a first request that is slow to leave (the
    # SDK's client being made, a busy machine) would otherwise be cancelled before the stub ever
    # saw it, and no stream would be there to abort.
    await asyncio.wait_for(streaming.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(stub.wait_for_aborted_stream, 5.0)
    assert stub.finished_streams == 0


async def test_a_wrong_key_is_never_repeated(
    kind: Remote, openai_stub: OpenAIStub, anthropic_stub: AnthropicStub
) -> None:
    secret = "sk-live-THIS-KEY-MUST-NOT-LEAK-0123456789"
    provider = _make_provider(kind, openai_stub, anthropic_stub, api_key=secret)
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(_request(kind))
        assert "401" in caught.value.detail
        _assert_clean(caught.value, secret, secret[-4:], "x-api-key", "Incorrect API key")
        with pytest.raises(ProviderError) as caught:
            await _collect(provider, _request(kind))
        _assert_clean(caught.value, secret, secret[-4:])
    finally:
        await _close(provider)


async def test_unknown_model_upstream_is_a_provider_error(
    kind: Remote, provider: LLMProvider
) -> None:
    request = ChatRequest((ChatMessage("user", "hi"),), "no-such-model", 8, 0.0)
    with pytest.raises(ProviderError) as caught:
        await provider.complete(request)
    assert "404" in caught.value.detail


def test_prefill_only_where_anthropic_accepts_it() -> None:
    assert accepts_prefill("claude-haiku-4-5") and accepts_prefill("claude-3-5-haiku-latest")
    assert accepts_prefill("claude-sonnet-4-5-20250929")
    assert not accepts_prefill("claude-opus-4-6") and not accepts_prefill("claude-sonnet-5")
    assert not accepts_prefill("claude-mythos-preview")


# -- registry ----------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "SYNTHSTACK_LLM_MODEL",
        "SYNTHSTACK_LOCAL_LLM",
        "SYNTHSTACK_OPENAI_CHAT_MODELS",
        "SYNTHSTACK_ANTHROPIC_CHAT_MODELS",
    ):
        monkeypatch.delenv(name, raising=False)


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _registry(settings: Settings) -> LLMRegistry:
    """The chat models ``settings`` configure, as a stack builds them."""
    openai = OpenAIClient.from_settings(settings) if settings.openai_configured else None
    return build_llm_registry(settings, openai)


@pytest.mark.usefixtures("clean_env")
def test_registry_local_only() -> None:
    registry = _registry(_settings())
    assert registry.default_id == LOCAL_MODEL_ID
    assert not registry.remote_configured
    assert [spec.id for spec in registry.specs()] == [LOCAL_MODEL_ID]
    spec, provider = registry.lookup(None)
    assert isinstance(provider, BudgetedLLMProvider)  # spends the tenant's token budget
    local = provider.inner
    assert isinstance(local, LocalLLMProvider) and not local.loaded  # nothing loaded yet
    assert spec.provider == "local"


@pytest.mark.usefixtures("clean_env")
def test_registry_default_prefers_openai_then_anthropic() -> None:
    both = _registry(_settings(openai_api_key="sk-a", anthropic_api_key="sk-b"))
    assert both.default_id == "gpt-4o-mini"
    assert both.remote_configured
    assert [p.name for p in both.providers] == ["openai", "anthropic", "local"]
    anthropic_only = _registry(_settings(anthropic_api_key="sk-b"))
    assert anthropic_only.default_id == "claude-haiku-4-5"
    compatible = _registry(
        _settings(openai_base_url="http://127.0.0.1:1/v1", openai_chat_models="llama3.1,qwen2.5")
    )
    assert compatible.default_id == "llama3.1"
    assert compatible.lookup("qwen2.5")[0].provider == "openai"


@pytest.mark.usefixtures("clean_env")
def test_registry_configured_default_and_unknown_models() -> None:
    registry = _registry(_settings(anthropic_api_key="sk-b", llm_model="claude-sonnet-4-5"))
    assert registry.default_id == "claude-sonnet-4-5"
    assert registry.lookup(None)[0].id == "claude-sonnet-4-5"
    assert registry.lookup(LOCAL_MODEL_ID)[1].name == "local"
    with pytest.raises(ModelNotAvailable) as caught:
        registry.lookup("gpt-4o")  # OpenAI is not configured here
    assert caught.value.status == 422
    assert "claude-haiku-4-5" in caught.value.detail and LOCAL_MODEL_ID in caught.value.detail
    with pytest.raises(ValueError, match="gpt-4o"):  # fail fast at start
        _registry(_settings(llm_model="gpt-4o"))


@pytest.mark.usefixtures("clean_env")
def test_registry_without_any_model() -> None:
    registry = _registry(_settings(local_llm_enabled=False))
    assert registry.specs() == [] and registry.default_id is None
    with pytest.raises(ModelNotAvailable, match="none"):
        registry.lookup(None)
    assert LLMRegistry([], None).providers == []


@pytest.mark.usefixtures("clean_env")
def test_settings_validate_chat_fields() -> None:
    settings = _settings(openai_chat_models=" a , b ", llm_model="  ")
    assert settings.openai_chat_models == ("a", "b")
    assert settings.llm_model is None
    assert settings.max_generation_tokens == 4096
    with pytest.raises(ValueError, match="listed twice"):
        _settings(openai_chat_models="a,a")
    with pytest.raises(ValueError):
        _settings(max_generation_tokens=0)


# -- the local model, for real -----------------------------------------------------------------


@pytest.fixture(scope="module")
async def local() -> AsyncIterator[LocalLLMProvider]:
    provider = LocalLLMProvider(threads=1, context_tokens=1024)
    await provider.check()
    yield provider
    await provider.aclose()


def _local_request(text: str, *, max_tokens: int = 12, json_output: bool = False) -> ChatRequest:
    return ChatRequest(
        (ChatMessage("user", text),), LOCAL_MODEL_ID, max_tokens, 0.0, json_output=json_output
    )


async def test_local_complete(local: LocalLLMProvider) -> None:
    completion = await local.complete(_local_request("Name three colours.", max_tokens=8))
    assert completion.model == LOCAL_MODEL_ID
    assert completion.content.strip()
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 8
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 8
    # Greedy decoding is deterministic.
    assert (await local.complete(_local_request("Name three colours.", max_tokens=8))) == completion


async def test_local_stream(local: LocalLLMProvider) -> None:
    started = time.perf_counter()
    first = None
    deltas: list[ChatDelta] = []
    final = None
    async for item in local.stream(_local_request("Tell me about the sea.", max_tokens=16)):
        if isinstance(item, ChatDelta):
            first = first or time.perf_counter()
            deltas.append(item)
        else:
            final = item
    done = time.perf_counter()
    assert final is not None and first is not None
    assert len(deltas) > 1
    assert first < done  # pieces arrive while the model is still generating
    assert final.content == "".join(d.text for d in deltas)
    assert first - started < (done - started) * 0.9
    whole = await local.complete(_local_request("Tell me about the sea.", max_tokens=16))
    assert whole.content == final.content and whole.usage == final.usage


async def test_local_usage_counts_with_the_model_tokenizer(local: LocalLLMProvider) -> None:
    short = await local.complete(_local_request("Say hi.", max_tokens=1))
    longer = await local.complete(_local_request("Say hi." + " word" * 10, max_tokens=1))
    # " word" is one token of SmolLM2's vocabulary.
    assert longer.usage.prompt_tokens == short.usage.prompt_tokens + 10
    assert short.usage.completion_tokens == 1


COUNTING = "Count from 1 to 1000, one number per line."


async def _wait_until_idle(local: LocalLLMProvider) -> None:
    # The model's lock is a threading lock: poll it (there is no event to await).
    for _ in range(3000):
        if not local.busy:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the generation did not stop")


async def test_local_early_close_stops_the_generation(
    local: LocalLLMProvider, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="synthstack_core.providers.llm_local"):
        iterator = local.stream(_local_request(COUNTING, max_tokens=900))
        assert isinstance(await anext(iterator), ChatDelta)
        assert local.busy
        await iterator.aclose()  # type: ignore[attr-defined]
        # The worker thread stops between tokens and frees the model for the next request.
        await _wait_until_idle(local)
    stopped = [r.getMessage() for r in caplog.records if "stopped by its caller" in r.message]
    assert len(stopped) == 1
    assert int(stopped[0].split()[-2]) < 100  # of the 900 tokens it was allowed
    completion = await local.complete(_local_request("Hi", max_tokens=2))
    assert completion.usage.completion_tokens <= 2


async def test_local_cancellation_stops_the_generation(
    local: LocalLLMProvider, caplog: pytest.LogCaptureFixture
) -> None:
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in local.stream(_local_request(COUNTING, max_tokens=900)):
            first.set()

    with caplog.at_level(logging.DEBUG, logger="synthstack_core.providers.llm_local"):
        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await _wait_until_idle(local)
    assert any("stopped by its caller" in r.message for r in caplog.records)


async def test_local_json_output(local: LocalLLMProvider) -> None:
    completion = await local.complete(
        _local_request("Give a person with name and age.", max_tokens=40, json_output=True)
    )
    assert completion.finish_reason == "stop"
    assert isinstance(json.loads(completion.content), dict)


async def test_local_temperature_samples(local: LocalLLMProvider) -> None:
    request = ChatRequest((ChatMessage("user", "Write a word."),), LOCAL_MODEL_ID, 6, 1.5)
    answers = {(await local.complete(request)).content for _ in range(4)}
    assert len(answers) > 1  # a fresh seed per request


async def test_local_prompt_longer_than_the_context() -> None:
    small = LocalLLMProvider(threads=1, context_tokens=256)
    try:
        with pytest.raises(SynthStackError) as caught:
            await small.complete(_local_request("word " * 400, max_tokens=4))
        assert caught.value.status == 422
    finally:
        await small.aclose()
