"""Usage per tenant and hour (``synthstack_core.usage``, ``stores/usage.py``, ``GET /api/v1/usage``)
on a real PostgreSQL.

The recorder adds counts up in memory and writes them by upsert (adding to what is stored, from
several processes at once); a failed write keeps its counts and a shutdown writes what is left.
Through real stacks: every authenticated request is counted by operation and status, the features
count texts embedded, chat-model tokens (the OpenAI stub's reported usage, streamed or not), audio
seconds and bytes ingested, each tenant reads only its own, and bad ranges are 422s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from synthstack_core import Settings, SynthStack
from synthstack_core.features.audio import AudioUpload
from synthstack_core.http import HttpRequest, HttpResponse
from synthstack_core.operations import by_id as operation
from synthstack_core.schemas.transcription import TranscriptionParameters
from synthstack_core.stores.database import Database
from synthstack_core.stores.usage import UsageRepository
from synthstack_core.usage import HOUR_SECONDS, Quantities, UsageBatch, UsageRecorder
from synthstack_testing import OpenAIStub

KEY_A = "usage-key-a-0001"
KEY_B = "usage-key-b-0001"
AUDIO = Path(__file__).parent / "fixtures" / "audio" / "speech.wav"
#: 2026-12-05T10:00:00Z, and the hours around it.
TEN = int(datetime(2026, 12, 5, 10, tzinfo=UTC).timestamp())


def _at(hour: int) -> datetime:
    return datetime.fromtimestamp(hour, tz=UTC)


class Clock:
    """A clock the test moves (the recorder's hour is read from it)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- the recorder and the store ----------------------------------------------------------------


@pytest.fixture
async def repository(empty_database_url: str) -> AsyncIterator[UsageRepository]:
    database = Database(empty_database_url)
    yield UsageRepository(database)
    await database.aclose()


async def test_counts_are_added_up_by_hour_and_written_as_sums(
    repository: UsageRepository,
) -> None:
    clock = Clock(TEN + 10)
    recorder = UsageRecorder(repository.write, flush_seconds=3600, clock=clock)
    for status in (200, 200, 422):
        recorder.request("acme", "embeddings-generate", status)
    recorder.add("acme", Quantities(texts_embedded=3, prompt_tokens=5))
    clock.now = TEN + HOUR_SECONDS + 5  # the next hour
    recorder.request("acme", "embeddings-generate", 200)
    recorder.add("acme", Quantities(audio_seconds=1.25, bytes_ingested=100))
    recorder.request("other", "rag-index", 201)
    assert await recorder.flush()
    assert not recorder.pending
    # A second write adds to the stored counts.
    recorder.request("acme", "embeddings-generate", 200)
    recorder.add("acme", Quantities(texts_embedded=2, completion_tokens=7))
    assert await recorder.flush()

    hours = await repository.hourly("acme", _at(TEN), _at(TEN + 2 * HOUR_SECONDS))
    assert [h.hour for h in hours] == [_at(TEN), _at(TEN + HOUR_SECONDS)]
    first, second = hours
    assert first.requests == {("embeddings-generate", 200): 2, ("embeddings-generate", 422): 1}
    assert first.quantities == Quantities(texts_embedded=3, prompt_tokens=5)
    assert second.requests == {("embeddings-generate", 200): 2}
    assert second.quantities == Quantities(
        texts_embedded=2, completion_tokens=7, audio_seconds=1.25, bytes_ingested=100
    )
    # The range is [start, end) over hour starts; another tenant's rows are not there.
    assert [h.hour for h in await repository.hourly("acme", _at(TEN + 1), _at(TEN + 7200))] == [
        _at(TEN + HOUR_SECONDS)
    ]
    assert await repository.hourly("acme", _at(TEN), _at(TEN)) == []
    others = await repository.hourly("other", _at(TEN), _at(TEN + 2 * HOUR_SECONDS))
    assert [(h.hour, h.requests) for h in others] == [
        (_at(TEN + HOUR_SECONDS), {("rag-index", 201): 1})
    ]
    await recorder.aclose()


async def test_processes_writing_the_same_rows_at_once_lose_nothing(
    repository: UsageRepository,
) -> None:
    recorders = [
        UsageRecorder(repository.write, flush_seconds=3600, clock=Clock(TEN)) for _ in range(4)
    ]
    for _round in range(5):
        for recorder in recorders:
            for tenant in ("t1", "t2", "t3"):
                recorder.request(tenant, "rag-search", 200)
                recorder.add(tenant, Quantities(texts_embedded=1, audio_seconds=0.5))
        assert all(await asyncio.gather(*(recorder.flush() for recorder in recorders)))
    for tenant in ("t1", "t2", "t3"):
        (hour,) = await repository.hourly(tenant, _at(TEN), _at(TEN + HOUR_SECONDS))
        assert hour.requests == {("rag-search", 200): 20}
        assert hour.quantities == Quantities(texts_embedded=20, audio_seconds=10.0)


async def test_a_failed_write_keeps_its_counts_and_a_lost_shutdown_says_so(
    postgres_server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A database that does not exist: every write fails, as in an outage.
    base, _, _ = postgres_server_url.partition("?")
    gone = Database(
        base.rsplit("/", 1)[0] + "/no_such_database_usage?" + _query(postgres_server_url)
    )
    recorder = UsageRecorder(UsageRepository(gone).write, flush_seconds=3600, clock=Clock(TEN))
    recorder.request("acme", "rag-search", 200)
    recorder.add("acme", Quantities(prompt_tokens=4))
    with caplog.at_level(logging.WARNING, logger="synthstack_core.usage"):
        assert not await recorder.flush()
        assert recorder.failed_writes == 1
        # Kept, and added to by later requests.
        recorder.request("acme", "rag-search", 200)
        pending = recorder.pending
        assert pending.requests == {("acme", TEN, "rag-search", 200): 2}
        assert pending.quantities == {("acme", TEN): Quantities(prompt_tokens=4)}
        await recorder.aclose()
    assert "usage not written" in caplog.text
    lost = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(lost) == 1 and "usage lost at shutdown: 2 requests" in lost[0].getMessage()
    assert "4 prompt_tokens" in lost[0].getMessage() and "'acme'" in lost[0].getMessage()
    await gone.aclose()


def _query(url: str) -> str:
    return url.partition("?")[2]


async def test_the_periodic_write_runs_and_closing_writes_the_rest(
    repository: UsageRepository,
) -> None:
    recorder = UsageRecorder(repository.write, flush_seconds=0.05, clock=Clock(TEN))
    recorder.start()
    recorder.request("acme", "rag-search", 200)
    for _ in range(100):  # written within a few periods, by nobody but the recorder's task
        await asyncio.sleep(0.05)
        if await repository.hourly("acme", _at(TEN), _at(TEN + HOUR_SECONDS)):
            break
    assert not recorder.pending
    (hour,) = await repository.hourly("acme", _at(TEN), _at(TEN + HOUR_SECONDS))
    assert hour.requests == {("rag-search", 200): 1}
    recorder.flush_seconds = 3600  # from now on, only closing writes
    await asyncio.sleep(0.1)  # the task is asleep for the new period once its current one ends
    recorder.request("acme", "rag-search", 503)
    await recorder.aclose()
    (hour,) = await repository.hourly("acme", _at(TEN), _at(TEN + HOUR_SECONDS))
    assert hour.requests == {("rag-search", 200): 1, ("rag-search", 503): 1}
    # After closing, a late count is refused loudly rather than kept where nothing writes it.
    recorder.request("acme", "rag-search", 200)
    assert not recorder.pending


async def test_an_empty_batch_writes_nothing(repository: UsageRepository) -> None:
    await repository.write(UsageBatch())
    recorder = UsageRecorder(repository.write)
    assert await recorder.flush()
    recorder.add("acme", Quantities())  # nothing used: nothing counted
    assert not recorder.pending


# -- through the pipeline ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai_stub() -> Iterator[OpenAIStub]:
    """OpenAI's API, locally: chat completions with their usage, transcriptions."""
    with OpenAIStub() as stub:
        yield stub


def _settings(database_url: str, stub: OpenAIStub, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "SYNTHSTACK_API_KEYS": f"usage-a:{KEY_A},usage-b:{KEY_B}",
        "SYNTHSTACK_KEY_CACHE_SECONDS": 0,
        "SYNTHSTACK_MIGRATE_ON_START": False,
        "OPENAI_API_KEY": stub.api_key,
        "OPENAI_BASE_URL": stub.base_url,
        "SYNTHSTACK_PROVIDER_MAX_RETRIES": 0,
        # Only what the test asks for is written, when it asks (and when the stack closes).
        "SYNTHSTACK_USAGE_FLUSH_SECONDS": 3600,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
async def stack(empty_database_url: str, openai_stub: OpenAIStub) -> AsyncIterator[SynthStack]:
    async with SynthStack(_settings(empty_database_url, openai_stub)) as started:
        yield started


async def _call(
    stack: SynthStack,
    operation_id: str,
    key: str | None = KEY_A,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> HttpResponse:
    op = operation(operation_id)
    headers = {"x-request-id": "usage-test"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    raw = b""
    if body is not None:
        headers["content-type"] = "application/json"
        raw = json.dumps(body).encode()
    path = op.path + ("?" + urlencode(query) if query else "")
    return await stack.handle(op, HttpRequest(op.method, path, headers, raw, query=query or {}))


async def _usage(stack: SynthStack, key: str = KEY_A, **query: str) -> dict[str, Any]:
    response = await _call(stack, "usage-get", key, query=query)
    assert response.status == 200, response.body
    report: dict[str, Any] = json.loads(response.body)
    return report


async def _streamed(response: HttpResponse) -> bytes:
    assert response.stream is not None
    return b"".join([chunk async for chunk in response.stream])


async def test_each_tenant_reads_its_own_requests_and_quantities(
    stack: SynthStack, openai_stub: OpenAIStub
) -> None:
    texts = ["first text", "second text", "first text"]
    assert (await _call(stack, "embeddings-batch", body={"texts": texts})).status == 200
    assert (await _call(stack, "embeddings-generate", body={"text": 5})).status == 422
    assert (await _call(stack, "embeddings-generate", None, body={"text": "x"})).status == 401
    content = "Café au lait. " * 40
    indexed = await _call(stack, "rag-index", body={"content": content, "source": "menu"})
    assert indexed.status == 200
    chunks = json.loads(indexed.body)["chunks_created"]
    prompt = {"prompt": "Say something short about cats.", "max_tokens": 8}
    generated = await _call(stack, "generation-text", body=prompt)
    assert generated.status == 200
    usage = json.loads(generated.body)["usage"]
    streamed = await _call(stack, "generation-text", body={**prompt, "stream": True})
    events = await _streamed(streamed)
    final = json.loads(events.split(b"event: done\ndata: ")[1].split(b"\n\n")[0])
    # Tenant B: one request, which A must not see.
    assert (await _call(stack, "embeddings-models", KEY_B)).status == 200

    report = await _usage(stack)
    assert report["tenant"] == "usage-a"
    (hour,) = report["hours"]
    assert hour["requests"] == [
        {"operation_id": "embeddings-batch", "status": 200, "requests": 1},
        {"operation_id": "embeddings-generate", "status": 422, "requests": 1},
        {"operation_id": "generation-text", "status": 200, "requests": 2},
        {"operation_id": "rag-index", "status": 200, "requests": 1},
    ]
    # Every text a request embedded (a duplicate too): the batch's, and the document's chunks.
    assert hour["texts_embedded"] == len(texts) + chunks
    assert hour["bytes_ingested"] == len(content.encode())
    assert hour["prompt_tokens"] == usage["prompt_tokens"] + final["usage"]["prompt_tokens"]
    assert (
        hour["completion_tokens"]
        == usage["completion_tokens"] + final["usage"]["completion_tokens"]
    )
    assert hour["audio_seconds"] == 0
    totals = report["totals"]
    assert totals["requests"] == 5 and totals["by_operation"] == hour["requests"]
    assert {k: v for k, v in totals.items() if k not in ("requests", "by_operation")} == {
        k: v for k, v in hour.items() if k not in ("hour", "requests")
    }
    # B sees its own request alone (its usage-get is not in its own answer; A's is not B's).
    other = await _usage(stack, KEY_B)
    assert other["tenant"] == "usage-b"
    assert other["totals"]["by_operation"] == [
        {"operation_id": "embeddings-models", "status": 200, "requests": 1}
    ]
    # A's first usage-get is in A's next report.
    again = await _usage(stack)
    assert {"operation_id": "usage-get", "status": 200, "requests": 1} in again["totals"][
        "by_operation"
    ]
    assert other["totals"]["texts_embedded"] == 0 and other["totals"]["prompt_tokens"] == 0


async def test_transcribed_audio_is_counted_in_seconds(stack: SynthStack) -> None:
    # The pipeline binds the caller's tenant; here the service is called as its handler is.
    stack.usage.recorder.bind("usage-a")
    upload = AudioUpload(AUDIO, filename="speech.wav", size=AUDIO.stat().st_size)
    result = await stack.transcription.transcribe(
        upload, TranscriptionParameters(model="whisper-1")
    )
    stack.usage.recorder.bind(None)
    assert result.transcript.duration > 0
    report = await _usage(stack)
    assert report["totals"]["audio_seconds"] == pytest.approx(result.transcript.duration, abs=1e-3)


async def test_a_jobs_usage_is_its_tenants(
    empty_database_url: str, openai_stub: OpenAIStub
) -> None:
    # No worker in the process: the job is run here, as a worker runs it (outside any request).
    settings = _settings(empty_database_url, openai_stub, SYNTHSTACK_WORKER="none")
    async with SynthStack(settings) as stack:
        content = "Thé à la menthe. " * 40
        op = operation("rag-index")
        headers = {
            "authorization": f"Bearer {KEY_B}",
            "content-type": "application/json",
            "prefer": "respond-async",
        }
        raw = json.dumps({"content": content, "source": "menu"}).encode()
        submitted = await stack.handle(op, HttpRequest(op.method, op.path, headers, raw))
        assert submitted.status == 202, submitted.body
        job_id = uuid.UUID(json.loads(submitted.body)["id"])
        stack.usage.recorder.bind(None)  # what the request left bound is not the job's
        await asyncio.create_task(stack.jobs.run(job_id, attempt=1))
        job = await stack.jobs.get("usage-b", job_id)
        assert job.status == "succeeded" and job.result is not None
        totals = (await _usage(stack, KEY_B))["totals"]
        # The bytes when the request submitted them, the chunks when the job embedded them.
        assert totals["bytes_ingested"] == len(content.encode())
        assert totals["texts_embedded"] == job.result["chunks_created"] > 0
        assert (await _usage(stack))["totals"]["texts_embedded"] == 0


async def test_the_library_outside_a_request_counts_nothing(stack: SynthStack) -> None:
    await stack.embeddings.generate("a text of no request", tenant="usage-a")
    assert not stack.usage.recorder.pending


@pytest.mark.parametrize(
    ("query", "code", "where"),
    [
        ({"from": "2026-12-05T10:00:00Z", "to": "2026-12-05T09:00:00Z"}, "invalid_range", "from"),
        ({"from": "2026-10-01T00:00:00Z", "to": "2026-11-02T00:00:01Z"}, "range_too_long", "to"),
        ({"from": "2026-10-01T00:00:00Z"}, "range_too_long", "to"),  # to: now
        ({"to": "0001-01-01T00:30:00Z"}, "invalid_range", "to"),  # a day before year 1
        ({"from": "0001-01-01T00:00:00+01:00"}, "invalid_range", "from"),
        ({"from": "2026-12-05T10:00:00"}, "invalid_request", "from"),  # no offset
        ({"to": "yesterday"}, "invalid_request", "to"),
        ({"to": "0.5"}, "invalid_request", "to"),  # no UNIX times: RFC 3339 only
        ({"from": "2026-12-05"}, "invalid_request", "from"),
    ],
)
async def test_a_bad_range_is_a_422(
    stack: SynthStack, query: dict[str, str], code: str, where: str
) -> None:
    response = await _call(stack, "usage-get", query=query)
    assert response.status == 422
    problem = json.loads(response.body)
    assert problem["code"] == code
    assert [error["loc"] for error in problem["errors"]] == [["query", where]]


async def test_the_range_is_whole_hours_from_the_hour_of_from(stack: SynthStack) -> None:
    before = datetime.now(UTC)
    hour = before.replace(minute=0, second=0, microsecond=0)
    assert (await _call(stack, "embeddings-models")).status == 200
    later = (before + timedelta(hours=2)).isoformat()
    report = await _usage(stack, **{"from": before.isoformat(), "to": later})
    # The hour holding `from` is included whole.
    assert report["start"] == hour.isoformat().replace("+00:00", "Z")
    assert report["totals"]["by_operation"] == [
        {"operation_id": "embeddings-models", "status": 200, "requests": 1}
    ]
    assert all(h["hour"] >= report["start"] for h in report["hours"])
    # `to` is exclusive: the hour starting at `to` is left out.
    earlier = await _usage(stack, **{"to": hour.isoformat()})
    assert earlier["hours"] == [] and earlier["totals"]["requests"] == 0
    default = await _usage(stack)  # the last 24 hours, up to now
    assert {"operation_id": "embeddings-models", "status": 200, "requests": 1} in default["totals"][
        "by_operation"
    ]
    # 31 days exactly is allowed.
    month = await _usage(stack, **{"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"})
    assert month["hours"] == [] and month["end"] == "2026-11-01T00:00:00Z"


async def test_closing_the_stack_writes_what_was_counted(
    empty_database_url: str, openai_stub: OpenAIStub
) -> None:
    async with SynthStack(_settings(empty_database_url, openai_stub)) as stack:
        for _ in range(3):
            assert (await _call(stack, "embeddings-models", KEY_B)).status == 200
        assert stack.usage.recorder.pending.requests  # not written yet (a period of an hour)
    database = Database(empty_database_url)
    try:
        now = datetime.now(UTC)
        hours = await UsageRepository(database).hourly(
            "usage-b", now.replace(minute=0, second=0, microsecond=0), now
        )
    finally:
        await database.aclose()
    assert sum(h.requests.get(("embeddings-models", 200), 0) for h in hours) == 3
