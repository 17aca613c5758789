"""Language benchmark: analysis, complexity estimates and local generation, core against HTTP.

One run measures three surfaces side by side, offline (``SYNTHSTACK_ANALYSIS_LLM=off``, no OpenAI
or Anthropic variable), against one shared PostgreSQL (the embedded one, in ``bench/.data``):

* ``core``: :class:`~synthstack_core.service.SynthStack` called directly, in this process, through
  the feature methods the HTTP handlers call (``stack.analysis.sentiment(SentimentRequest(...))``,
  ``stack.generation.text(TextGenerationRequest(..., stream=True))``);
* ``fastapi``: ``synthstack serve --backend fastapi --workers 1`` (uvicorn), over HTTP;
* ``django``: ``synthstack serve --backend django --workers 1`` (gunicorn gthread), over HTTP.

It measures:

1. latency (p50/p95) of sentiment, keywords and summary of one ~500-word English text, and of a
   complexity estimate of one realistic task (the embeddings cache is off, so every estimate embeds
   its task as a new one would), and the HTTP overhead over the core;
2. local generation with SmolLM2-135M-Instruct (greedy, a fixed prompt, streamed): time to the first
   ``delta`` and completion tokens per second.

HTTP timings are end to end from one sequential keep-alive ``httpx.Client`` (encoding, the round
trip, decoding the answer); core timings are taken inside the event loop around the ``await``.
The surfaces take turns, a block of calls each (who goes first rotates), each block after an
untimed call, so that a change in outside load falls on all of them alike; the CPU other processes
used meanwhile is reported, and the run first waits (``--settle``) for the machine to go quiet.

Run it from the repository root::

    .hatch/default/bin/python bench/language.py            # full run, a few minutes
    .hatch/default/bin/python bench/language.py --quick    # smoke run
    .hatch/default/bin/python bench/language.py --json bench/results/language.json

Server logs go to ``bench/results/``. This is a benchmark, not a test: a missed target is reported
(and the exit status stays 0); only a surface that could not be measured makes it non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, aclosing, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Protocol

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs installed
from _servers import (
    API_KEY,
    API_KEYS_SETTING,
    RESULTS_DIR,
    ROOT,
    ForeignLoad,
    KeepAliveClient,
    Server,
    ServerFailed,
    database_processes,
    machine,
    parse_with_surfaces,
    percentiles_ms,
    progress,
    serve,
    server_env,
    start_database,
    wait_for_quiet,
)

SURFACES = ("core", "fastapi", "django")
#: Every surface in the order of the tables: the compared ones, and the core's pipeline after the
#: core (a diagnostic: :class:`PipelineSurface`).
ALL_SURFACES = ("core", "pipeline", "fastapi", "django")
#: No embeddings cache: every complexity estimate embeds its task, as a new task would.
CACHE_MAX_ENTRIES = 0
LOCAL_MODEL = "smollm2-135m-instruct"

# -- workload ------------------------------------------------------------------------------------

#: A support-desk retrospective with praise, complaints and figures: 511 words, 25 sentences (pysbd).
TEXT = """\
Last spring our team moved the customer support desk of a mid-sized online bookshop from email to \
a shared ticketing system. The decision was not easy. For years the three support agents had \
answered every message from one crowded inbox, and they knew its quirks by heart. But the shop had \
doubled its orders since the pandemic, replies were taking up to four days, and a survey in January \
showed that almost a third of the customers who wrote to us never ordered again. Something had to \
change, and the owners agreed to spend the quarter's small budget on it.

The first month was rough. Importing six years of old conversations failed twice, and the vendor's \
migration tool silently dropped every attachment larger than ten megabytes, including scanned \
invoices that the accountant still needed. Two agents found the new interface slow and cluttered, \
and one of them said she felt like she was filling in forms instead of talking to people. The \
automatic replies we configured sounded cold, and several loyal customers complained that they no \
longer got a personal answer. We turned most of the automation off after the second week.

Things improved once we stopped trying to copy the old inbox. We created five queues, one for each \
kind of request: orders, returns, payments, author events and everything else. Each agent owns a \
queue for a week and then rotates, so nobody is stuck with returns forever. Saved replies are now \
written by the agents themselves, in their own voice, and they edit them freely. The shared notes on \
each customer turned out to be the most useful feature of all: when a regular writes about a missing \
parcel, whoever answers can see that the last two parcels were late too, and can apologise properly \
instead of asking for the order number again.

The numbers after three months are encouraging. The median time to a first reply fell from nineteen \
hours to just under three, and the share of tickets solved with one answer rose from 41 to 63 \
percent. Refund mistakes, which used to cost us a few hundred euros every month, have almost \
disappeared, because payment requests now go to the one agent who understands the payment \
provider's dashboard. Customer satisfaction scores went up from 3.6 to 4.4 out of five, and the \
number of angry reviews mentioning support dropped sharply.

Not everything is solved. The system is expensive for a shop of our size, and the licence price will \
rise next year. Reporting is weak: we export the data to a spreadsheet every Friday to see trends, \
which takes an hour we would rather spend answering people. The mobile app still crashes when an \
agent opens a long thread, and the vendor has not fixed it despite three bug reports. Still, nobody \
on the team wants to go back to the old inbox. If we had to do it again, we would plan the \
migration more carefully, keep automation to a minimum from the start, and let the agents design \
their own workflow from day one.
"""

TASK: dict[str, Any] = {
    "title": "Add per-API-key rate limiting to the public REST endpoints",
    "description": (
        "Today every client shares one global request limit, so a single misbehaving integration "
        "can starve everyone else. Each API key should get its own budget of requests per minute, "
        "configurable per tenant, with a 429 answer and a Retry-After header when it is exceeded.\n"
        "- [ ] count requests per key in Redis, with an in-process fallback when Redis is down\n"
        "- [ ] per-tenant limits in settings and in the admin\n"
        "- [ ] 429 problem+json with Retry-After on both backends\n"
        "- [ ] document the limits in the OpenAPI contract\n"
        "- [ ] load test: the limit holds with two workers"
    ),
    "issue_type": "feature",
    "labels": ["backend", "security", "api"],
    "related_files": [
        "packages/synthstack-core/src/synthstack_core/security.py",
        "packages/synthstack-core/src/synthstack_core/stores/cache.py",
        "services/fastapi/src/synthstack_fastapi/app.py",
        "services/django/src/synthstack_django/views.py",
        "contracts/openapi.yaml",
    ],
}

#: ``operation -> (path, JSON body)``; the core gets the same body as its request model.
OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "sentiment": ("/api/v1/analysis/sentiment", {"text": TEXT}),
    "keywords": ("/api/v1/analysis/keywords", {"text": TEXT}),
    "summarize": ("/api/v1/analysis/summarize", {"text": TEXT}),
    "estimate": ("/api/v1/complexity/estimate", TASK),
}

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
GENERATION_PATH = "/api/v1/generation/text"
#: The untimed generation that starts each block: wakes the process's llama.cpp threads.
LEAD_TOKENS = 4


def generation_body(max_tokens: int) -> dict[str, Any]:
    """The streamed generation request (greedy, so every surface writes the same text)."""
    return {
        "prompt": PROMPT,
        "model": LOCAL_MODEL,
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": True,
    }


@dataclass(frozen=True)
class Sizes:
    """How many calls each measurement makes per surface."""

    calls: int
    runs: int
    max_tokens: int
    warmup_calls: int = 3
    warmup_runs: int = 2


# -- surfaces ------------------------------------------------------------------------------------


@dataclass
class Generation:
    """One streamed generation, timed from sending the request (seconds)."""

    first_delta: float
    done: float
    completion_tokens: int
    prompt_tokens: int
    text: str

    @property
    def tokens_per_second(self) -> float:
        """Completion tokens over the whole generation time (request to ``done``)."""
        return self.completion_tokens / self.done

    @property
    def decode_tokens_per_second(self) -> float | None:
        """Tokens after the first, over the time after the first ``delta``: the decoding rate."""
        if self.completion_tokens < 2 or self.done <= self.first_delta:
            return None
        return (self.completion_tokens - 1) / (self.done - self.first_delta)


class Surface(Protocol):
    """Something that serves the language features."""

    name: str

    def call(self, operation: str) -> tuple[float, dict[str, Any]]:
        """Run ``operation`` once: the seconds it took and the answer as JSON data."""
        ...

    def generate(self, max_tokens: int) -> Generation:
        """One streamed generation of :data:`PROMPT`."""
        ...


class CoreSurface:
    """``SynthStack`` in this process, driven by one event loop kept for the whole run.

    The clock runs inside the loop, around the ``await`` of the feature method alone; the request
    model is built before (over HTTP, parsing the body is part of the overhead).
    """

    name = "core"

    def __init__(self, database_url: str) -> None:
        from synthstack_core.schemas.analysis import (
            KeywordsRequest,
            SentimentRequest,
            SummarizeRequest,
        )
        from synthstack_core.schemas.complexity import ComplexityEstimateRequest
        from synthstack_core.schemas.generation import TextGenerationRequest
        from synthstack_core.service import SynthStack
        from synthstack_core.settings import Settings

        settings = Settings(
            DATABASE_URL=database_url,
            SYNTHSTACK_API_KEYS=API_KEYS_SETTING,
            SYNTHSTACK_CACHE_MAX_ENTRIES=CACHE_MAX_ENTRIES,
            SYNTHSTACK_ANALYSIS_LLM="off",
        )
        self.stack = SynthStack(settings)
        self.runner = asyncio.Runner()
        stack = self.stack
        # operation -> (the request model's validator, the feature method the handler awaits);
        # ``stack.analysis`` exists only once started, hence the lambdas.
        self._requests: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[Any], Any]]] = {
            "sentiment": (SentimentRequest.model_validate, lambda r: stack.analysis.sentiment(r)),
            "keywords": (KeywordsRequest.model_validate, lambda r: stack.analysis.keywords(r)),
            "summarize": (SummarizeRequest.model_validate, lambda r: stack.analysis.summarize(r)),
            "estimate": (
                ComplexityEstimateRequest.model_validate,
                lambda r: stack.complexity.estimate(r),
            ),
        }
        self._generation_request = TextGenerationRequest.model_validate

    def __enter__(self) -> CoreSurface:
        try:
            self.runner.run(self.stack.start())
        except BaseException:
            self.runner.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.runner.run(self.stack.aclose())
        finally:
            self.runner.close()

    def call(self, operation: str) -> tuple[float, dict[str, Any]]:
        """``await stack.analysis.<operation>(Request(...))``."""
        build, method = self._requests[operation]
        request = build(OPERATIONS[operation][1])

        async def timed() -> tuple[float, Any]:
            start = time.perf_counter()
            response = await method(request)
            return time.perf_counter() - start, response

        elapsed, response = self.runner.run(timed())
        return elapsed, response.model_dump(mode="json")

    def generate(self, max_tokens: int) -> Generation:
        """``stack.generation.text(TextGenerationRequest(..., stream=True))``, events iterated."""
        request = self._generation_request(generation_body(max_tokens))
        return self.runner.run(self._stream(request))

    async def _stream(self, request: Any) -> Generation:
        from synthstack_core.operations import EventStream

        start = time.perf_counter()
        result = await self.stack.generation.text(request)
        if not isinstance(result, EventStream):
            raise RuntimeError("core: generation did not stream")
        first: float | None = None
        parts: list[str] = []
        done: Any = None
        async with aclosing(result.events) as events:
            async for name, payload in events:
                if name == "delta":
                    if first is None:
                        first = time.perf_counter() - start
                    parts.append(getattr(payload, "text", ""))
                elif name == "done":
                    done = payload
                    break
        end = time.perf_counter() - start
        _expect(first is not None and done is not None, "core: no delta or no done event")
        assert first is not None  # for the type checker
        return Generation(
            first, end, done.usage.completion_tokens, done.usage.prompt_tokens, "".join(parts)
        )


class PipelineSurface:
    """The core's own HTTP pipeline in this process: ``await stack.handle(operation, request)``.

    A diagnostic, not one of the compared surfaces: what both adapters call for every request
    (authentication, the body check, parsing and validating it, the feature, rendering the JSON
    answer), without a web framework, a socket or a client. HTTP minus this is the adapter, the
    server and the transport.
    """

    name = "pipeline"

    def __init__(self, core: CoreSurface) -> None:
        from synthstack_core.operations import OPERATIONS as REGISTRY

        self._core = core
        self._operations = {op.path: op for op in REGISTRY if op.method == "POST"}

    def _request(self, path: str, body: dict[str, Any]) -> tuple[Any, Any]:
        from synthstack_core.http import HttpRequest

        data = json.dumps(body).encode()
        headers = {
            "authorization": f"Bearer {API_KEY}",
            "content-type": "application/json",
            "content-length": str(len(data)),
        }
        return self._operations[path], HttpRequest("POST", path, headers, data)

    def call(self, operation: str) -> tuple[float, dict[str, Any]]:
        """``stack.handle`` of the operation's request; the answer's body decoded."""
        path, body = OPERATIONS[operation]
        op, request = self._request(path, body)
        stack = self._core.stack

        async def timed() -> tuple[float, Any]:
            start = time.perf_counter()
            response = await stack.handle(op, request)
            return time.perf_counter() - start, response

        elapsed, response = self._core.runner.run(timed())
        _expect(response.status == 200, f"pipeline: {response.status} {response.body[:300]!r}")
        answer: dict[str, Any] = json.loads(response.body)
        return elapsed, answer

    def generate(self, max_tokens: int) -> Generation:
        """The streamed generation through ``stack.handle``: its server-sent event chunks."""
        op, request = self._request(GENERATION_PATH, generation_body(max_tokens))
        return self._core.runner.run(self._stream(op, request))

    async def _stream(self, op: Any, request: Any) -> Generation:
        start = time.perf_counter()
        response = await self._core.stack.handle(op, request)
        stream = response.stream
        if response.status != 200 or stream is None:
            raise RuntimeError(f"pipeline: no stream ({response.status} {response.body[:300]!r})")
        first: float | None = None
        parts: list[str] = []
        done: dict[str, Any] | None = None
        async with aclosing(stream) as chunks:
            async for chunk in chunks:
                event, _, data = chunk.decode().partition("\ndata: ")
                if event == "event: delta":
                    if first is None:
                        first = time.perf_counter() - start
                    parts.append(json.loads(data)["text"])
                elif event == "event: done":
                    done = json.loads(data)
        end = time.perf_counter() - start
        _expect(first is not None and done is not None, "pipeline: no delta or no done event")
        assert first is not None and done is not None  # for the type checker
        usage = done["usage"]
        return Generation(
            first, end, usage["completion_tokens"], usage["prompt_tokens"], "".join(parts)
        )


class HttpSurface(KeepAliveClient):
    """A running server, called by one sequential client over a keep-alive connection."""

    def call(self, operation: str) -> tuple[float, dict[str, Any]]:
        """``POST`` the operation's body; timed until the answer is decoded."""
        path, body = OPERATIONS[operation]
        start = time.perf_counter()
        response = self._client.post(path, json=body)
        payload: dict[str, Any] = response.json()
        elapsed = time.perf_counter() - start
        _expect(response.status_code == 200, f"{self.name}: {response.status_code} {payload}")
        return elapsed, payload

    def generate(self, max_tokens: int) -> Generation:
        """``POST /api/v1/generation/text`` with ``stream: true``, read line by line.

        The first ``delta`` counts when its ``event: delta`` line arrives.
        """
        start = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        done: dict[str, Any] | None = None
        with self._client.stream("POST", GENERATION_PATH, json=generation_body(max_tokens)) as r:
            if r.status_code != 200:
                r.read()
                raise RuntimeError(f"{self.name}: {r.status_code} {r.text}")
            event = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                    if event == "delta" and first is None:
                        first = time.perf_counter() - start
                elif line.startswith("data: "):
                    data = json.loads(line.removeprefix("data: "))
                    if event == "delta":
                        parts.append(data["text"])
                    elif event == "done":
                        done = data
                    elif event == "error":
                        raise RuntimeError(f"{self.name}: error event {data}")
        end = time.perf_counter() - start
        _expect(first is not None and done is not None, f"{self.name}: no delta or no done event")
        assert first is not None and done is not None  # for the type checker
        usage = done["usage"]
        return Generation(
            first, end, usage["completion_tokens"], usage["prompt_tokens"], "".join(parts)
        )

    def health_latency(self, repeats: int) -> list[float]:
        """Round trips of ``GET /health`` (no auth, no body): the transport's floor."""
        times: list[float] = []
        for _ in range(repeats):
            start = time.perf_counter()
            response = self._client.get("/health")
            response.json()
            times.append(time.perf_counter() - start)
        return times


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class Contender:
    """One surface in the run: its raw timings (seconds), first answers, and how it ended."""

    surface: Surface
    server: Server | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    generations: list[Generation] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def name(self) -> str:
        """The surface's name."""
        return self.surface.name


@dataclass(frozen=True)
class Phase:
    """``count`` timed steps per surface in blocks of ``block``, each after ``lead`` untimed ones."""

    name: str
    count: int
    block: int
    step: Callable[[Contender], None]
    lead: Callable[[Contender], None] | None = None


def _guarded(contender: Contender, step: Callable[[Contender], None]) -> bool:
    """``step(contender)``; False when the surface has failed (now or before)."""
    if contender.error is not None:
        return False
    try:
        step(contender)
    except (RuntimeError, httpx.HTTPError) as exc:
        contender.error = f"{type(exc).__name__}: {exc}"
        progress(f"{contender.name}: FAILED: {contender.error}")
        return False
    return True


def _run_phase(contenders: Sequence[Contender], phase: Phase, own: OwnProcesses) -> float | None:
    """Run ``phase`` on every surface, taking turns; the foreign load (cores) meanwhile."""
    with ForeignLoad(own) as load:
        for turn, start in enumerate(range(0, phase.count, phase.block)):
            active = [c for c in contenders if c.error is None]
            if not active:
                break
            shift = turn % len(active)
            for contender in active[shift:] + active[:shift]:
                if phase.lead is not None:
                    _guarded(contender, phase.lead)
                for _ in range(min(phase.block, phase.count - start)):
                    if not _guarded(contender, phase.step):
                        break
    return load.cores


OwnProcesses = Callable[[], Sequence[psutil.Process]]


def measure(
    contenders: Sequence[Contender], sizes: Sizes, own: OwnProcesses
) -> dict[str, float | None]:
    """Every measurement on every surface, interleaved; the foreign load of each phase."""

    def timed(operation: str) -> Callable[[Contender], None]:
        def step(contender: Contender) -> None:
            seconds, answer = contender.surface.call(operation)
            contender.samples.setdefault(operation, []).append(seconds)
            contender.answers.setdefault(operation, answer)

        return step

    def untimed(operation: str) -> Callable[[Contender], None]:
        def step(contender: Contender) -> None:
            contender.surface.call(operation)

        return step

    def warm_up(contender: Contender) -> None:
        for operation in OPERATIONS:
            for _ in range(sizes.warmup_calls):
                contender.surface.call(operation)
        for _ in range(sizes.warmup_runs):
            contender.surface.generate(sizes.max_tokens)

    def generate(contender: Contender) -> None:
        contender.generations.append(contender.surface.generate(sizes.max_tokens))

    def wake(contender: Contender) -> None:
        contender.surface.generate(LEAD_TOKENS)

    block = max(1, sizes.calls // 10)
    phases = [Phase("warm-up", 1, 1, warm_up)]
    phases += [
        Phase(operation, sizes.calls, block, timed(operation), lead=untimed(operation))
        for operation in OPERATIONS
    ]
    phases.append(Phase("generation", sizes.runs, 2, generate, lead=wake))
    load: dict[str, float | None] = {}
    for phase in phases:
        progress(f"{phase.name}: {phase.count} per surface")
        load[phase.name] = _run_phase(contenders, phase, own)
    return load


# -- results -------------------------------------------------------------------------------------


@dataclass
class SurfaceResult:
    """The figures of one surface (latencies in ms)."""

    surface: str
    latency_ms: dict[str, dict[str, float | None]] = field(default_factory=dict)
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    generation_p50_ms: float | None = None
    tokens_per_s: float | None = None
    decode_tokens_per_s: float | None = None
    completion_tokens: float | None = None
    prompt_tokens: int | None = None
    runs: int = 0
    health_p50_ms: float | None = None
    error: str | None = None


def summarise(contender: Contender) -> SurfaceResult:
    """The figures of one surface from its raw timings."""
    result = SurfaceResult(surface=contender.name, error=contender.error)
    for operation in OPERATIONS:
        p50, p95 = percentiles_ms(contender.samples.get(operation, []))
        count = len(contender.samples.get(operation, []))
        result.latency_ms[operation] = {"p50": p50, "p95": p95, "calls": float(count)}
    runs = contender.generations
    if runs:
        result.runs = len(runs)
        result.ttft_p50_ms, result.ttft_p95_ms = percentiles_ms([g.first_delta for g in runs])
        result.generation_p50_ms = percentiles_ms([g.done for g in runs])[0]
        result.tokens_per_s = statistics.median(g.tokens_per_second for g in runs)
        decode = [r for g in runs if (r := g.decode_tokens_per_second) is not None]
        result.decode_tokens_per_s = statistics.median(decode) if decode else None
        result.completion_tokens = statistics.mean(g.completion_tokens for g in runs)
        result.prompt_tokens = runs[0].prompt_tokens
    if isinstance(contender.surface, HttpSurface) and contender.error is None:
        result.health_p50_ms = percentiles_ms(contender.surface.health_latency(200))[0]
    return result


@dataclass
class Check:
    """One target: the measured value and whether it holds."""

    name: str
    value: float | None
    limit: str
    passed: bool | None = None

    def status(self) -> str:
        """PASS, FAIL or N/A (not measured)."""
        return "N/A" if self.passed is None else ("PASS" if self.passed else "FAIL")


def overhead(
    results: dict[str, SurfaceResult], backend: str, operation: str
) -> tuple[float | None, float | None]:
    """(HTTP p50 - core p50 in ms, HTTP p50 / core p50) of ``operation`` on ``backend``."""
    core = results.get("core")
    http = results.get(backend)
    if core is None or http is None:
        return None, None
    base = core.latency_ms.get(operation, {}).get("p50")
    over = http.latency_ms.get(operation, {}).get("p50")
    if base is None or over is None or base <= 0:
        return None, None
    return over - base, over / base


def evaluate(results: dict[str, SurfaceResult]) -> list[Check]:
    """The targets: HTTP overhead <= 10 % of core time (summary, keywords); TTFT <= core + 20 ms."""
    checks: list[Check] = []
    for backend in ("fastapi", "django"):
        for operation in ("summarize", "keywords"):
            _, ratio = overhead(results, backend, operation)
            share = None if ratio is None else (ratio - 1) * 100
            checks.append(
                Check(
                    f"{backend} {operation} p50 HTTP overhead (% of core)",
                    share,
                    "<= 10",
                    None if share is None else share <= 10,
                )
            )
    core_ttft = results.get("core", SurfaceResult("core")).ttft_p50_ms
    for backend in ("fastapi", "django"):
        ttft = results.get(backend, SurfaceResult(backend)).ttft_p50_ms
        extra = None if ttft is None or core_ttft is None else ttft - core_ttft
        checks.append(
            Check(
                f"{backend} TTFT p50 over core (ms)",
                extra,
                "<= 20",
                None if extra is None else extra <= 20,
            )
        )
    return checks


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_latency(results: dict[str, SurfaceResult]) -> str:
    """Latency per operation and surface, with the HTTP/core ratios, as a Markdown table."""
    names = [n for n in ALL_SURFACES if n in results and results[n].error is None]
    backends = [n for n in names if n in ("fastapi", "django")]
    header = "| operation | " + " | ".join(f"{n} p50 / p95 (ms)" for n in names)
    header += "".join(f" | {b}/core (p50) | {b} overhead (ms)" for b in backends) + " |"
    lines = [header, "|---|" + "---:|" * (len(names) + 2 * len(backends))]
    for operation in OPERATIONS:
        cells = [
            f"{_fmt(lat.get('p50'), 2)} / {_fmt(lat.get('p95'), 2)}"
            for lat in (results[n].latency_ms.get(operation, {}) for n in names)
        ]
        for backend in backends:
            extra, ratio = overhead(results, backend, operation)
            cells += [_fmt(ratio, 3), _fmt(extra, 2)]
        lines.append(f"| {operation} | " + " | ".join(cells) + " |")
    core_ttft = results["core"].ttft_p50_ms if "core" in names else None
    cells = [
        f"{_fmt(results[n].ttft_p50_ms, 1)} / {_fmt(results[n].ttft_p95_ms, 1)}" for n in names
    ]
    for backend in backends:
        ttft = results[backend].ttft_p50_ms
        if ttft is None or not core_ttft:
            cells += ["-", "-"]
        else:
            cells += [_fmt(ttft / core_ttft, 3), _fmt(ttft - core_ttft, 2)]
    lines.append("| generation: time to first token | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_generation(results: dict[str, SurfaceResult]) -> str:
    """Local generation per surface, as a Markdown table."""
    lines = [
        "| surface | runs | TTFT p50 / p95 (ms) | whole generation p50 (ms) "
        "| tokens/s (completion / whole time) | decode tokens/s (after the first) "
        "| completion tokens (mean) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ALL_SURFACES:
        r = results.get(name)
        if r is None:
            continue
        if r.error is not None:
            lines.append(f"| {name} | not measured: {r.error.splitlines()[0]} | | | | | |")
            continue
        lines.append(
            f"| {name} | {r.runs} | {_fmt(r.ttft_p50_ms)} / {_fmt(r.ttft_p95_ms)} "
            f"| {_fmt(r.generation_p50_ms, 0)} | {_fmt(r.tokens_per_s)} "
            f"| {_fmt(r.decode_tokens_per_s)} | {_fmt(r.completion_tokens)} |"
        )
    return "\n".join(lines)


def render_checks(checks: Sequence[Check]) -> str:
    """The targets as a Markdown list."""
    return "\n".join(
        f"- **{c.status()}** {c.name}: {_fmt(c.value, 2)} (target {c.limit})" for c in checks
    )


def same_answers(contenders: Sequence[Contender]) -> dict[str, bool | None]:
    """Whether every measured surface gave the same answer (per operation, and the generated
    text); None when fewer than two surfaces answered."""
    agree: dict[str, bool | None] = {}
    measured = [c for c in contenders if c.error is None]
    for operation in OPERATIONS:
        answers = [c.answers[operation] for c in measured if operation in c.answers]
        agree[operation] = None if len(answers) < 2 else all(a == answers[0] for a in answers)
    texts = {c.generations[0].text for c in measured if c.generations}
    agree["generation"] = None if len(measured) < 2 else len(texts) == 1
    return agree


# -- main ----------------------------------------------------------------------------------------


def _terminate(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small N: a smoke run")
    parser.add_argument(
        "--calls", type=int, default=None, help="timed calls per operation and surface (50)"
    )
    parser.add_argument("--runs", type=int, default=None, help="timed generations per surface (10)")
    parser.add_argument(
        "--max-tokens", type=int, default=64, help="max_tokens of a generation (64)"
    )
    parser.add_argument(
        "--no-pipeline",
        dest="pipeline",
        action="store_false",
        help="leave out the diagnostic surface `pipeline` (the core's stack.handle in-process)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    args = parse_with_surfaces(parser, argv, SURFACES)
    return args


def offline_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` without any remote chat or embedding provider, analyses offline."""
    cleaned = {
        key: value
        for key, value in env.items()
        if not key.startswith(("OPENAI_", "ANTHROPIC_"))
        and key not in ("SYNTHSTACK_LLM_MODEL", "EMBEDDING_MODEL")
    }
    cleaned["SYNTHSTACK_ANALYSIS_LLM"] = "off"
    return cleaned


def start_contenders(
    stack: ExitStack, args: argparse.Namespace, database_url: str
) -> tuple[list[Contender], dict[str, SurfaceResult]]:
    """Start every chosen surface (servers first); those that cannot start are reported."""
    env = offline_environment(server_env(database_url, None, cache_max_entries=CACHE_MAX_ENTRIES))
    contenders: list[Contender] = []
    failed: dict[str, SurfaceResult] = {}
    for name in sorted(args.surfaces, key=lambda s: s == "core"):
        try:
            if name == "core":
                core = stack.enter_context(CoreSurface(database_url))
                contenders.append(Contender(core))
                if args.pipeline:
                    contenders.append(Contender(PipelineSurface(core)))
                continue
            log_path = RESULTS_DIR / f"server-language-{name}.log"
            progress(f"{name}: starting the server (log: {log_path.relative_to(ROOT)})")
            started = time.monotonic()
            server = stack.enter_context(
                serve(name, env, startup_timeout=args.startup_timeout, log_path=log_path)
            )
            progress(f"{name}: healthy after {time.monotonic() - started:.1f}s")
            surface = HttpSurface(name, server.base_url)
            stack.callback(surface.close)
            contenders.append(Contender(surface, server))
        except (ServerFailed, RuntimeError, OSError) as exc:
            progress(f"{name}: FAILED to start: {exc}")
            failed[name] = SurfaceResult(name, error=f"{type(exc).__name__}: {exc}")
    order = {name: i for i, name in enumerate(ALL_SURFACES)}
    contenders.sort(key=lambda c: order[c.name])
    return contenders, failed


def own_processes(contenders: Sequence[Contender]) -> OwnProcesses:
    """This process, the servers' trees and PostgreSQL's processes, listed when called."""

    def listed() -> list[psutil.Process]:
        processes = [psutil.Process(), *database_processes()]
        for contender in contenders:
            if contender.server is not None:
                with suppress(psutil.Error):
                    processes.extend(contender.server.processes())
        return processes

    return listed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every chosen surface was measured."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C stops the run cleanly even when started in the background (where SIGINT is ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    offline = offline_environment(dict(os.environ))  # the core reads settings from it too
    for key in set(os.environ) - set(offline):
        del os.environ[key]
    os.environ.update(offline)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quick = args.quick
    sizes = Sizes(
        calls=args.calls or (10 if quick else 50),
        runs=args.runs or (4 if quick else 10),
        max_tokens=args.max_tokens,
        warmup_calls=1 if quick else 3,
        warmup_runs=1 if quick else 2,
    )
    info = machine()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)

    with ExitStack() as stack:
        database_url = start_database(stack)
        contenders, results = start_contenders(stack, args, database_url)
        if args.settle > 0:
            info["cpu_percent_before"] = wait_for_quiet(args.settle)
        started = time.monotonic()
        load = measure(contenders, sizes, own_processes(contenders))
        info["measuring_seconds"] = round(time.monotonic() - started, 1)
        info["load_average_end"] = list(os.getloadavg())
        results.update({c.name: summarise(c) for c in contenders})
        agree = same_answers(contenders)
        samples = {c.name: c.samples for c in contenders}
        generations = {c.name: [asdict(g) for g in c.generations] for c in contenders}
        progress("stopping the servers and the embedded PostgreSQL")

    results = {name: results[name] for name in ALL_SURFACES if name in results}
    checks = evaluate(results)
    words = len(TEXT.split())
    print()
    print(f"machine: {info['nproc']} cores, {info['cpu_model']}, {info['memory_gb']} GB")
    print(
        f"sizes: {asdict(sizes)}; text: {words} words; generation: {LOCAL_MODEL}, greedy, "
        f"max_tokens {sizes.max_tokens}; measuring took {info['measuring_seconds']} s\n"
    )
    print(render_latency(results))
    print()
    print(render_generation(results))
    print()
    print(render_checks(checks))
    print()
    print(
        "CPU used by other processes while measuring (cores, of "
        f"{info['nproc']}): " + ", ".join(f"{k} {_fmt(v, 2)}" for k, v in load.items())
    )
    print(
        f"load average at start {', '.join(f'{v:.2f}' for v in info['load_average_start'])}; "
        f"at end {', '.join(f'{v:.2f}' for v in info['load_average_end'])}"
    )
    floor = ", ".join(
        f"{r.surface} {_fmt(r.health_p50_ms, 3)} ms"
        for r in results.values()
        if r.health_p50_ms is not None
    )
    if floor:
        print(f"GET /health p50 (HTTP client + server floor): {floor}")
    print(
        "same answer on every surface: "
        + ", ".join(f"{k} {'-' if v is None else ('yes' if v else 'NO')}" for k, v in agree.items())
    )

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": info,
            "sizes": asdict(sizes),
            "text_words": words,
            "task": TASK,
            "prompt": PROMPT,
            "results": {name: asdict(result) for name, result in results.items()},
            "checks": [{**asdict(c), "status": c.status()} for c in checks],
            "foreign_load_cores": load,
            "same_answers": agree,
            "samples_ms": {
                name: {op: [round(s * 1000, 4) for s in values] for op, values in d.items()}
                for name, d in samples.items()
            },
            "generations": generations,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        progress(f"results written to {args.json}")
    return 1 if any(r.error is not None for r in results.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: servers and the embedded PostgreSQL stopped", file=sys.stderr)
        sys.exit(130)
