"""Tests of the local OpenAI embeddings stub, driven through the real ``openai`` SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import numpy.typing as npt
import openai
import pytest

from synthstack_testing import OpenAIStub, expected_embedding

SMALL = "text-embedding-3-small"


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as running:
        yield running


@pytest.fixture
def client(stub: OpenAIStub) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=stub.base_url, api_key=stub.api_key, max_retries=0) as sdk:
        yield sdk


def _vectors(response: openai.types.CreateEmbeddingResponse) -> npt.NDArray[np.float64]:
    return np.array([item.embedding for item in response.data], dtype=np.float64)


def _cosine(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# -- lifecycle ---------------------------------------------------------------------------------


def test_base_url_and_explicit_start_stop() -> None:
    stub = OpenAIStub(api_key="sk-other")
    with pytest.raises(RuntimeError):
        _ = stub.base_url
    stub.start()
    try:
        assert stub.running
        assert stub.base_url == f"http://127.0.0.1:{stub.port}/v1"
        assert stub.api_key == "sk-other"
        with pytest.raises(RuntimeError):
            stub.start()
    finally:
        stub.stop()
    assert not stub.running
    stub.stop()  # idempotent


def test_default_api_key() -> None:
    assert OpenAIStub().api_key == "sk-stub-key"


# -- embeddings --------------------------------------------------------------------------------


def test_single_embedding(client: openai.OpenAI, stub: OpenAIStub) -> None:
    response = client.embeddings.create(model=SMALL, input="Hello, world!")
    assert response.object == "list"
    assert response.model == SMALL
    assert len(response.data) == 1
    item = response.data[0]
    assert item.object == "embedding"
    assert item.index == 0
    vector = np.array(item.embedding)
    assert vector.shape == (1536,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(vector, expected_embedding("Hello, world!").astype(np.float64))
    # "Hello", ",", "world", "!": the documented words-plus-punctuation approximation.
    assert response.usage.prompt_tokens == 4
    assert response.usage.total_tokens == 4
    # The SDK asks for base64 by default and decodes it transparently.
    path, body, headers = stub.requests[0]
    assert path == "/v1/embeddings"
    assert body == {"input": "Hello, world!", "model": SMALL, "encoding_format": "base64"}
    assert headers["authorization"] == f"Bearer {stub.api_key}"


def test_same_text_same_vector_and_float_matches_base64(client: openai.OpenAI) -> None:
    first = client.embeddings.create(model=SMALL, input="deterministic text")
    second = client.embeddings.create(model=SMALL, input="deterministic text")
    as_float = client.embeddings.create(
        model=SMALL, input="deterministic text", encoding_format="float"
    )
    assert first.data[0].embedding == second.data[0].embedding
    assert as_float.data[0].embedding == first.data[0].embedding


def test_batch_preserves_order(client: openai.OpenAI) -> None:
    texts = [f"text number {i} about subject {i * 7}" for i in range(20)]
    response = client.embeddings.create(model=SMALL, input=texts)
    assert [item.index for item in response.data] == list(range(20))
    vectors = _vectors(response)
    for text, vector in zip(texts, vectors, strict=True):
        assert np.array_equal(vector, expected_embedding(text).astype(np.float64))
    single = client.embeddings.create(model=SMALL, input=texts[13])
    assert single.data[0].embedding == response.data[13].embedding
    assert response.usage.prompt_tokens == 6 * 20


def test_token_array_inputs(client: openai.OpenAI) -> None:
    one = client.embeddings.create(model=SMALL, input=[15339, 1917])
    assert len(one.data) == 1
    assert one.usage.prompt_tokens == 2
    many = client.embeddings.create(model=SMALL, input=[[15339, 1917], [15339, 1917, 0], [7, 8]])
    assert len(many.data) == 3
    assert many.usage.prompt_tokens == 7
    assert many.data[0].embedding == one.data[0].embedding
    vectors = _vectors(many)
    assert _cosine(vectors[0], vectors[1]) > _cosine(vectors[0], vectors[2])


@pytest.mark.parametrize("dimensions", [1, 8, 256, 1024])
def test_dimensions_shortening(client: openai.OpenAI, dimensions: int) -> None:
    text = "shorter vectors keep the leading components"
    short = np.array(
        client.embeddings.create(model=SMALL, input=text, dimensions=dimensions).data[0].embedding
    )
    assert short.shape == (dimensions,)
    assert np.linalg.norm(short) == pytest.approx(1.0, abs=1e-5)
    native = np.array(client.embeddings.create(model=SMALL, input=text).data[0].embedding)
    prefix = native[:dimensions] / np.linalg.norm(native[:dimensions])
    np.testing.assert_allclose(short, prefix, atol=1e-6)


def test_large_model(client: openai.OpenAI) -> None:
    native = client.embeddings.create(model="text-embedding-3-large", input="big")
    assert len(native.data[0].embedding) == 3072
    short = client.embeddings.create(model="text-embedding-3-large", input="big", dimensions=3072)
    assert len(short.data[0].embedding) == 3072


def test_ada_002_without_dimensions(client: openai.OpenAI) -> None:
    response = client.embeddings.create(model="text-embedding-ada-002", input="legacy")
    assert len(response.data[0].embedding) == 1536


def test_related_texts_are_more_similar(client: openai.OpenAI) -> None:
    response = client.embeddings.create(
        model=SMALL,
        input=[
            "The cat sat on the mat.",
            "A cat was sitting on the mat",
            "Quarterly revenue grew by twelve percent in Europe",
        ],
    )
    cat, similar_cat, revenue = _vectors(response)
    related = _cosine(cat, similar_cat)
    unrelated = _cosine(cat, revenue)
    assert related > 0.5
    assert abs(unrelated) < 0.2
    assert related > unrelated + 0.3


# -- OpenAI-shaped errors ----------------------------------------------------------------------


def test_ada_002_rejects_dimensions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=256)
    assert caught.value.status_code == 400
    assert caught.value.param == "dimensions"
    assert caught.value.type == "invalid_request_error"


@pytest.mark.parametrize("dimensions", [0, 1537])
def test_out_of_range_dimensions(client: openai.OpenAI, dimensions: int) -> None:
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=SMALL, input="x", dimensions=dimensions)


def test_empty_input_is_rejected(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=SMALL, input="")
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=SMALL, input=[])


def test_unknown_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="text-embedding-9-huge", input="x")
    assert caught.value.code == "model_not_found"
    assert "text-embedding-9-huge" in caught.value.message


def test_wrong_api_key(stub: OpenAIStub) -> None:
    with (
        openai.OpenAI(base_url=stub.base_url, api_key="sk-wrong-key", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.embeddings.create(model=SMALL, input="x")
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


def test_raw_error_shapes(stub: OpenAIStub) -> None:
    with httpx.Client(base_url=stub.base_url) as raw:
        missing_key = raw.post("/embeddings", json={"model": SMALL, "input": "x"})
        assert missing_key.status_code == 401
        assert set(missing_key.json()["error"]) == {"message", "type", "param", "code"}
        auth = {"Authorization": f"Bearer {stub.api_key}"}
        wrong_path = raw.post("/completions", json={}, headers=auth)
        assert wrong_path.status_code == 404
        assert wrong_path.json()["error"]["type"] == "invalid_request_error"
        unknown_param = raw.post(
            "/embeddings", json={"model": SMALL, "input": "x", "foo": 1}, headers=auth
        )
        assert unknown_param.status_code == 400
        not_json = raw.post("/embeddings", content=b"{nope", headers=auth)
        assert not_json.status_code == 400
    assert stub.requests[-1].body is None


# -- fault injection ---------------------------------------------------------------------------


def test_fail_next_429(client: openai.OpenAI, stub: OpenAIStub) -> None:
    stub.fail_next(429, retry_after=3)
    with pytest.raises(openai.RateLimitError) as caught:
        client.embeddings.create(model=SMALL, input="x")
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.code == "rate_limit_exceeded"
    assert client.embeddings.create(model=SMALL, input="x").data  # the fault was consumed


def test_fail_next_500_times(client: openai.OpenAI, stub: OpenAIStub) -> None:
    stub.fail_next(500, times=2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            client.embeddings.create(model=SMALL, input="x")
        assert caught.value.status_code == 500
        assert caught.value.type == "server_error"
    assert client.embeddings.create(model=SMALL, input="x").data


def test_sdk_retries_honour_retry_after(stub: OpenAIStub) -> None:
    stub.fail_next(503, times=2, retry_after=0.01)
    with openai.OpenAI(base_url=stub.base_url, api_key=stub.api_key, max_retries=2) as sdk:
        response = sdk.embeddings.create(model=SMALL, input="eventually")
    assert len(response.data) == 1
    assert [headers["x-stainless-retry-count"] for _, _, headers in stub.requests] == [
        "0",
        "1",
        "2",
    ]


def test_delay_next_provokes_client_timeout(client: openai.OpenAI, stub: OpenAIStub) -> None:
    stub.delay_next(2.0)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.embeddings.create(model=SMALL, input="slow", timeout=0.2)
    assert time.monotonic() - started < 1.5
    assert client.embeddings.create(model=SMALL, input="fast", timeout=2.0).data


def test_delay_without_timeout_still_answers(client: openai.OpenAI, stub: OpenAIStub) -> None:
    stub.delay_next(0.1)
    started = time.monotonic()
    assert client.embeddings.create(model=SMALL, input="x").data
    assert time.monotonic() - started >= 0.1


def test_garbage_next(client: openai.OpenAI, stub: OpenAIStub) -> None:
    stub.garbage_next()
    # The body is labelled application/json but truncated: openai 2.x lets the JSON error through.
    with pytest.raises(json.JSONDecodeError):
        client.embeddings.create(model=SMALL, input="x")
    assert client.embeddings.create(model=SMALL, input="x").data


def test_faults_are_consumed_in_order(client: openai.OpenAI, stub: OpenAIStub) -> None:
    stub.fail_next(429)
    stub.garbage_next()
    stub.fail_next(500)
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model=SMALL, input="x")
    with pytest.raises(json.JSONDecodeError):
        client.embeddings.create(model=SMALL, input="x")
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model=SMALL, input="x")
    assert client.embeddings.create(model=SMALL, input="x").data


def test_fail_next_is_thread_safe(client: openai.OpenAI, stub: OpenAIStub) -> None:
    stub.fail_next(429, times=7)

    def call(i: int) -> bool:
        try:
            client.embeddings.create(model=SMALL, input=f"text {i}")
        except openai.RateLimitError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(call, range(40)))
    assert outcomes.count(False) == 7
    assert len(stub.requests) == 40


def test_reset_clears_faults_and_log(client: openai.OpenAI, stub: OpenAIStub) -> None:
    client.embeddings.create(model=SMALL, input="x")
    stub.fail_next(500)
    stub.delay_next(5.0)
    stub.garbage_next()
    stub.reset()
    assert stub.requests == []
    assert client.embeddings.create(model=SMALL, input="x", timeout=2.0).data
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    ("status", "times", "retry_after"), [(200, 1, None), (429, 0, None), (429, 1, -1.0)]
)
def test_fail_next_rejects_bad_arguments(
    stub: OpenAIStub, status: int, times: int, retry_after: float | None
) -> None:
    with pytest.raises(ValueError):
        stub.fail_next(status, times=times, retry_after=retry_after)


def test_stop_interrupts_pending_delay_and_open_connections() -> None:
    stub = OpenAIStub().start()
    with openai.OpenAI(base_url=stub.base_url, api_key=stub.api_key, max_retries=0) as sdk:
        sdk.embeddings.create(model=SMALL, input="keep-alive connection stays open")
        stub.delay_next(30.0)
        with pytest.raises(openai.APITimeoutError):
            sdk.embeddings.create(model=SMALL, input="x", timeout=0.2)
        started = time.monotonic()
        stub.stop()
        assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_request_delayed_across_a_reset_takes_no_later_fault(kind: str) -> None:
    """A test whose client gave up on a delayed stream must not leave that request behind to take
    the stream fault the next test queues (after ``reset``, the stale request gets no answer)."""
    from synthstack_testing import AnthropicStub

    stub_type = OpenAIStub if kind == "openai" else AnthropicStub
    with stub_type() as stub:
        if kind == "openai":
            path = "/chat/completions"
            body = {
                "model": "gpt-4o-mini",
                "stream": True,
                "messages": [{"role": "user", "content": "Hi there"}],
            }
            headers = {"Authorization": f"Bearer {stub.api_key}"}
        else:
            path = "/v1/messages"
            body = {
                "model": "claude-haiku-4-5",
                "max_tokens": 64,
                "stream": True,
                "messages": [{"role": "user", "content": "Hi there"}],
            }
            headers = {"x-api-key": stub.api_key, "anthropic-version": "2023-06-01"}
        base = stub.base_url.rstrip("/")
        stub.delay_next(0.5)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                base + path, json=body, headers=headers, timeout=httpx.Timeout(5.0, read=0.1)
            )
        stub.reset()  # the next test starts
        stub.break_stream_next(after_chunks=1)
        time.sleep(1.0)  # the stale request wakes up meanwhile
        with (
            httpx.stream("POST", base + path, json=body, headers=headers, timeout=5.0) as response,
            pytest.raises(httpx.HTTPError),
        ):
            text = "".join(response.iter_text())
            # An OpenAI stream broken midway ends without its [DONE] line; Anthropic's without its
            # message_stop event.
            if "[DONE]" not in text and "message_stop" not in text:
                raise httpx.RemoteProtocolError("stream cut")
