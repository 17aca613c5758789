"""Embeddings benchmark: the core in-process against the FastAPI and Django backends over HTTP.

One run measures three surfaces with the local model (all-MiniLM-L6-v2, int8 ONNX), side by side,
against one shared PostgreSQL (the embedded one, in ``bench/.data``):

* ``core``: :class:`~synthstack_core.service.SynthStack` called directly, in this process;
* ``fastapi``: ``synthstack serve --backend fastapi --workers 1`` (uvicorn), over HTTP;
* ``django``: ``synthstack serve --backend django --workers 1`` (gunicorn gthread), over HTTP.

For each it measures single-text latency (cold: every text new; cached: one text repeated),
batch-of-64 throughput (cold and cached) and the serving process's resident memory, then checks the
performance targets. HTTP timings are end to end from one sequential keep-alive ``httpx.Client``:
request encoding, the round trip and decoding the JSON answer all count.

All three run at once and take turns, a block of calls each, so that a change in load from outside
the benchmark (the machine may be shared) falls on all of them alike; the CPU other processes used
meanwhile is reported, and the run first waits (``--settle``) for the machine to go quiet.

Run it from the repository root::

    .hatch/default/bin/python bench/embeddings.py            # full run, a few minutes
    .hatch/default/bin/python bench/embeddings.py --quick    # smoke run
    .hatch/default/bin/python bench/embeddings.py --json bench/results/embeddings.json

Server logs go to ``bench/results/``. This is a benchmark, not a test: a missed target is reported
(and the exit status stays 0); only a surface that could not be measured makes it non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Protocol, TypeVar

import httpx
import numpy as np
import psutil  # type: ignore[import-untyped]  # no stubs installed
from _servers import (
    API_KEYS_SETTING,
    RESULTS_DIR,
    ROOT,
    ForeignLoad,
    KeepAliveClient,
    Server,
    ServerFailed,
    machine,
    parse_with_surfaces,
    percentiles_ms,
    progress,
    serve,
    server_env,
    start_database,
    wait_for_quiet,
)

DIMENSIONS = 384
BATCH_SIZE = 64
#: Far more than one run embeds (a few thousand texts per surface), so nothing is ever evicted.
CACHE_MAX_ENTRIES = 200_000
SURFACES = ("core", "fastapi", "django")

T = TypeVar("T")


# -- workload ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How many requests each measurement makes."""

    warmup: int
    single_cold: int
    single_cached: int
    batch_warmup: int
    batch_cold: int
    batch_cached: int

    @classmethod
    def full(cls) -> Sizes:
        """The sizes the targets are judged on."""
        return cls(
            warmup=20,
            single_cold=200,
            single_cached=500,
            batch_warmup=3,
            batch_cold=20,
            batch_cached=20,
        )

    @classmethod
    def quick(cls) -> Sizes:
        """A smoke run: every code path, little statistical weight."""
        return cls(
            warmup=5, single_cold=30, single_cached=50, batch_warmup=1, batch_cold=3, batch_cached=3
        )


_SUBJECTS = (
    "The billing service",
    "Our new onboarding flow",
    "A regional supplier",
    "The customer support team",
    "The nightly backup job",
    "An anonymous reviewer",
    "The mobile app",
    "Our warehouse manager",
    "The search index",
    "A long-time subscriber",
    "The marketing dashboard",
    "The payment gateway",
)
_VERBS = (
    "flagged",
    "quietly rejected",
    "approved",
    "summarised",
    "could not process",
    "praised",
    "double-charged",
    "reindexed",
    "escalated",
    "complained about",
)
_OBJECTS = (
    "three duplicate invoices",
    "the delayed shipment of winter jackets",
    "an unusually large refund request",
    "the quarterly usage report",
    "a broken password reset link",
    "the updated privacy policy",
    "several hundred stale product listings",
    "the slow checkout page",
    "a handwritten letter of thanks",
    "the new pricing tiers",
)
_PLACES = (
    "in the Frankfurt warehouse",
    "on the staging cluster",
    "at the Lisbon office",
    "in the European region",
    "on the help desk queue",
    "",
    "",
)
_TIMES = (
    "shortly after the Monday deployment",
    "during the holiday sale",
    "late on Friday evening",
    "before the audit",
    "for the second time this week",
    "",
    "",
)


class SentenceFactory:
    """Realistic, never-repeating sentences of about 10 to 20 words.

    Every surface gets a factory with the same seed, so all three embed texts of the same lengths;
    the tag (run nonce, surface, counter) makes each text new even to a cache shared across
    surfaces and runs (Redis).
    """

    def __init__(self, *, seed: int, tag: str) -> None:
        self._random = random.Random(seed)
        self._tag = tag
        self._count = 0

    def sentence(self) -> str:
        """The next unique sentence."""
        self._count += 1
        pick = self._random.choice
        words = [pick(_SUBJECTS), pick(_VERBS), pick(_OBJECTS), pick(_PLACES), pick(_TIMES)]
        body = " ".join(word for word in words if word)
        return f"{body} (ticket {self._tag}-{self._count})."

    def batch(self, size: int = BATCH_SIZE) -> list[str]:
        """``size`` unique sentences."""
        return [self.sentence() for _ in range(size)]


# -- surfaces ------------------------------------------------------------------------------------


class Surface(Protocol):
    """Something that embeds; each call returns its own duration in seconds."""

    name: str

    def embed_one(self, text: str) -> float:
        """Embed one text; the seconds it took."""
        ...

    def embed_batch(self, texts: list[str]) -> float:
        """Embed a batch; the seconds it took."""
        ...


async def _timed(awaitable: Awaitable[T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = await awaitable
    return time.perf_counter() - start, result


class CoreSurface:
    """``SynthStack`` in this process, driven by one event loop kept for the whole run.

    The clock runs inside the loop, around the ``await`` alone, so the core is not charged for
    entering and leaving the loop on each call.
    """

    name = "core"

    def __init__(self, database_url: str, redis_url: str | None) -> None:
        from synthstack_core.service import SynthStack
        from synthstack_core.settings import Settings

        settings = Settings(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            SYNTHSTACK_API_KEYS=API_KEYS_SETTING,
            SYNTHSTACK_CACHE_MAX_ENTRIES=CACHE_MAX_ENTRIES,
        )
        self._stack = SynthStack(settings)
        self._runner = asyncio.Runner()

    def __enter__(self) -> CoreSurface:
        try:
            self._runner.run(self._stack.start())
        except BaseException:
            self._runner.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._runner.run(self._stack.aclose())
        finally:
            self._runner.close()

    def embed_one(self, text: str) -> float:
        """``await stack.embeddings.generate(text)``."""
        elapsed, response = self._runner.run(_timed(self._stack.embeddings.generate(text)))
        _expect(len(response.embedding) == DIMENSIONS, "core: wrong embedding size")
        return elapsed

    def embed_batch(self, texts: list[str]) -> float:
        """``await stack.embeddings.batch(texts)``."""
        elapsed, response = self._runner.run(_timed(self._stack.embeddings.batch(texts)))
        _expect(response.count == len(texts), "core: wrong number of embeddings")
        return elapsed


class HttpSurface(KeepAliveClient):
    """A running server, called by one sequential client over a keep-alive connection."""

    def _post(self, path: str, body: dict[str, Any]) -> tuple[float, Any]:
        start = time.perf_counter()
        response = self._client.post(path, json=body)
        payload = response.json()
        elapsed = time.perf_counter() - start
        _expect(response.status_code == 200, f"{self.name}: {response.status_code} {payload}")
        return elapsed, payload

    def embed_one(self, text: str) -> float:
        """``POST /api/v1/embeddings/generate``."""
        elapsed, payload = self._post("/api/v1/embeddings/generate", {"text": text})
        _expect(len(payload["embedding"]) == DIMENSIONS, f"{self.name}: wrong embedding size")
        return elapsed

    def embed_batch(self, texts: list[str]) -> float:
        """``POST /api/v1/embeddings/batch``."""
        elapsed, payload = self._post("/api/v1/embeddings/batch", {"texts": texts})
        _expect(payload["count"] == len(texts), f"{self.name}: wrong number of embeddings")
        return elapsed

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
class SurfaceResult:
    """Everything measured on one surface (latencies in ms, throughput in sentences/s)."""

    surface: str
    single_cold_p50_ms: float | None = None
    single_cold_p95_ms: float | None = None
    single_cached_p50_ms: float | None = None
    single_cached_p95_ms: float | None = None
    batch_cold_per_s: float | None = None
    batch_cached_per_s: float | None = None
    rss_mb: float | None = None
    tree_rss_mb: float | None = None
    health_p50_ms: float | None = None
    error: str | None = None


@dataclass
class Contender:
    """One surface in the run: its texts, its raw timings (seconds) and how it ended."""

    surface: Surface
    sentences: SentenceFactory
    server: Server | None = None
    repeated: str = ""
    fixed: list[str] = field(default_factory=list)
    samples: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None

    @property
    def name(self) -> str:
        """The surface's name."""
        return self.surface.name

    def record(self, phase: str, seconds: float) -> None:
        """Keep one timing of ``phase``."""
        self.samples.setdefault(phase, []).append(seconds)


def _throughput(seconds: Sequence[float], per_call: int) -> float | None:
    return per_call * len(seconds) / float(sum(seconds)) if seconds else None


Step = Callable[[Contender], float]


@dataclass(frozen=True)
class Phase:
    """One measurement: ``count`` timed calls of ``step`` per surface, in ``turns`` blocks.

    ``prime`` runs once per surface first (it fills the cache for the cached phases). Each block
    starts with ``lead`` untimed calls: after another surface's turn, the first few calls of a
    process run measurably slower (ONNX Runtime's threads of the previous process still spin, and
    this one's caches and threads are cold), which would otherwise be charged to the turn-taking,
    not to the surface.
    """

    name: str
    count: int
    step: Step
    turns: int = 1
    lead: int = 0
    prime: Step | None = None
    key: str | None = None  # where the timings go; None: a warm-up, not kept


def _run_phase(
    contenders: Sequence[Contender], phase: Phase, own: Sequence[psutil.Process]
) -> float | None:
    """Run ``phase`` on every surface, taking turns; the foreign load meanwhile.

    The surfaces take turns, a block of consecutive calls each (who goes first rotates), so a
    change in outside load during the run falls on all of them alike. A surface that fails leaves
    the run; the others go on.
    """
    size = max(1, -(-phase.count // max(1, phase.turns)))
    with ForeignLoad(own) as load:
        for contender in contenders:
            if phase.prime is not None and contender.error is None:
                _guarded(contender, phase.prime)
        for turn, start in enumerate(range(0, phase.count, size)):
            active = [c for c in contenders if c.error is None]
            if not active:
                break
            shift = turn % len(active)
            for contender in active[shift:] + active[:shift]:
                for _ in range(phase.lead):
                    _guarded(contender, phase.step)
                for _ in range(min(size, phase.count - start)):
                    seconds = _guarded(contender, phase.step)
                    if seconds is None:
                        break
                    if phase.key is not None:
                        contender.record(phase.key, seconds)
    return load.cores


def _guarded(contender: Contender, step: Step) -> float | None:
    """``step(contender)``, or ``None`` when the surface has failed (now or before)."""
    if contender.error is not None:
        return None
    try:
        return step(contender)
    except (RuntimeError, httpx.HTTPError) as exc:
        contender.error = f"{type(exc).__name__}: {exc}"
        progress(f"{contender.name}: FAILED: {contender.error}")
        return None


def measure(
    contenders: Sequence[Contender], sizes: Sizes, own: Sequence[psutil.Process]
) -> dict[str, float | None]:
    """Every measurement on every surface, interleaved; the foreign load of each phase."""

    def new_one(c: Contender) -> float:
        return c.surface.embed_one(c.sentences.sentence())

    def prime_one(c: Contender) -> float:
        c.repeated = c.sentences.sentence()
        return c.surface.embed_one(c.repeated)

    def same_one(c: Contender) -> float:
        return c.surface.embed_one(c.repeated)

    def new_batch(c: Contender) -> float:
        return c.surface.embed_batch(c.sentences.batch())

    def prime_batch(c: Contender) -> float:
        c.fixed = c.sentences.batch()
        return c.surface.embed_batch(c.fixed)

    def same_batch(c: Contender) -> float:
        return c.surface.embed_batch(c.fixed)

    phases = [
        Phase("warm-up", sizes.warmup, new_one),
        Phase("single cold", sizes.single_cold, new_one, turns=10, lead=5, key="single_cold"),
        Phase(
            "single cached",
            sizes.single_cached,
            same_one,
            turns=10,
            lead=5,
            prime=prime_one,
            key="single_cached",
        ),
        Phase("batch warm-up", sizes.batch_warmup, new_batch),
        Phase("batch cold", sizes.batch_cold, new_batch, turns=4, lead=1, key="batch_cold"),
        Phase(
            "batch cached",
            sizes.batch_cached,
            same_batch,
            turns=4,
            lead=1,
            prime=prime_batch,
            key="batch_cached",
        ),
    ]
    load: dict[str, float | None] = {}
    for phase in phases:
        progress(f"{phase.name}: {phase.count} per surface")
        load[phase.name] = _run_phase(contenders, phase, own)
    return load


def summarise(contender: Contender) -> SurfaceResult:
    """The figures of one surface from its raw timings."""
    samples = contender.samples
    result = SurfaceResult(surface=contender.name, error=contender.error)
    result.single_cold_p50_ms, result.single_cold_p95_ms = percentiles_ms(
        samples.get("single_cold", [])
    )
    result.single_cached_p50_ms, result.single_cached_p95_ms = percentiles_ms(
        samples.get("single_cached", [])
    )
    result.batch_cold_per_s = _throughput(samples.get("batch_cold", []), BATCH_SIZE)
    result.batch_cached_per_s = _throughput(samples.get("batch_cached", []), BATCH_SIZE)
    if contender.server is None:  # the core: this (benchmark) process
        result.rss_mb = result.tree_rss_mb = psutil.Process().memory_info().rss / 2**20
    elif contender.error is None:
        result.rss_mb, result.tree_rss_mb = contender.server.memory()
    if isinstance(contender.surface, HttpSurface) and contender.error is None:
        result.health_p50_ms = percentiles_ms(contender.surface.health_latency(200))[0]
    return result


# -- diagnostics ---------------------------------------------------------------------------------


def json_costs(repeats: int = 30) -> dict[str, float]:
    """What the JSON of a 64 x 384 batch answer costs, in ms (median of ``repeats``).

    Server side: ``ndarray.tolist()`` and building the response model (both also paid by the core
    API) and rendering it to JSON (paid only over HTTP). Client side: ``json.loads``.
    """
    from synthstack_core.schemas.common import Usage
    from synthstack_core.schemas.embeddings import BatchEmbeddingResponse

    generator = np.random.default_rng(0)
    vectors = generator.standard_normal((BATCH_SIZE, DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def median_ms(action: Callable[[], object]) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            action()
            times.append(time.perf_counter() - start)
        return float(np.median(times)) * 1000.0

    def build() -> BatchEmbeddingResponse:
        return BatchEmbeddingResponse(
            embeddings=vectors.tolist(),
            model="all-MiniLM-L6-v2",
            dimensions=DIMENSIONS,
            count=BATCH_SIZE,
            usage=Usage(prompt_tokens=1, total_tokens=1),
        )

    model = build()
    body = model.__pydantic_serializer__.to_json(model)
    return {
        "tolist_ms": median_ms(vectors.tolist),
        "build_response_model_ms": median_ms(build),
        "render_json_ms": median_ms(lambda: model.__pydantic_serializer__.to_json(model)),
        "client_json_loads_ms": median_ms(lambda: json.loads(body)),
        "body_bytes": float(len(body)),
    }


# -- targets and report --------------------------------------------------------------------------


@dataclass
class Check:
    """One target: what it compares, the measured value and whether it holds."""

    name: str
    value: float | None
    limit: str
    passed: bool | None = field(default=None)

    def status(self) -> str:
        """PASS, FAIL or N/A (not measured)."""
        return "N/A" if self.passed is None else ("PASS" if self.passed else "FAIL")


def _check(name: str, value: float | None, limit: str, holds: Callable[[float], bool]) -> Check:
    return Check(name, value, limit, None if value is None else holds(value))


def _at_most(limit: float) -> Callable[[float], bool]:
    def holds(value: float) -> bool:
        return value <= limit

    return holds


def evaluate(results: dict[str, SurfaceResult]) -> list[Check]:
    """The performance targets, judged on the measured figures."""
    core = results.get("core", SurfaceResult("core"))
    core_batch = core.batch_cold_per_s
    checks = [
        _check("core cold batch (sentences/s)", core_batch, ">= 400", lambda v: v >= 400),
    ]
    for backend in ("fastapi", "django"):
        http = results.get(backend, SurfaceResult(backend))
        ratio = (
            http.batch_cold_per_s / core_batch
            if http.batch_cold_per_s is not None and core_batch
            else None
        )
        checks.append(_check(f"{backend} cold batch / core", ratio, ">= 0.85", lambda v: v >= 0.85))
    for backend, limit in (("fastapi", 2.0), ("django", 4.0)):
        http = results.get(backend, SurfaceResult(backend))
        overhead = (
            http.single_cold_p50_ms - core.single_cold_p50_ms
            if http.single_cold_p50_ms is not None and core.single_cold_p50_ms is not None
            else None
        )
        checks.append(
            _check(
                f"{backend} single cold p50 overhead (ms)",
                overhead,
                f"<= {limit:g}",
                _at_most(limit),
            )
        )
    for name in SURFACES:
        result = results.get(name, SurfaceResult(name))
        speedup = (
            result.single_cold_p50_ms / result.single_cached_p50_ms
            if result.single_cold_p50_ms is not None and result.single_cached_p50_ms
            else None
        )
        checks.append(
            _check(
                f"{name} cached speed-up (p50 cold / cached)", speedup, ">= 10", lambda v: v >= 10
            )
        )
    for backend in ("fastapi", "django"):
        rss = results.get(backend, SurfaceResult(backend)).rss_mb
        checks.append(_check(f"{backend} worker RSS (MB)", rss, "<= 450", lambda v: v <= 450))
    return checks


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_table(results: dict[str, SurfaceResult]) -> str:
    """The measured figures as a Markdown table."""
    header = (
        "| surface | single cold p50 / p95 (ms) | single cached p50 / p95 (ms) "
        "| batch 64 cold (sent/s) | batch 64 cached (sent/s) | RSS worker / tree (MB) |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    for name in SURFACES:
        r = results.get(name)
        if r is None:
            continue
        if r.error is not None:
            lines.append(f"| {name} | not measured: {r.error.splitlines()[0]} | | | | |")
            continue
        lines.append(
            f"| {name} "
            f"| {_fmt(r.single_cold_p50_ms, 2)} / {_fmt(r.single_cold_p95_ms, 2)} "
            f"| {_fmt(r.single_cached_p50_ms, 3)} / {_fmt(r.single_cached_p95_ms, 3)} "
            f"| {_fmt(r.batch_cold_per_s, 0)} | {_fmt(r.batch_cached_per_s, 0)} "
            f"| {_fmt(r.rss_mb, 0)} / {_fmt(r.tree_rss_mb, 0)} |"
        )
    return "\n".join(lines)


def render_checks(checks: Sequence[Check]) -> str:
    """The targets as a Markdown list."""
    return "\n".join(
        f"- **{c.status()}** {c.name}: {_fmt(c.value, 2)} (target {c.limit})" for c in checks
    )


# -- main ----------------------------------------------------------------------------------------


def _terminate(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small N: a smoke run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument(
        "--redis", metavar="URL", help="use this Redis as the cache (default: in-process)"
    )
    args = parse_with_surfaces(parser, argv, SURFACES)
    return args


def start_contenders(
    stack: ExitStack, args: argparse.Namespace, database_url: str, nonce: int
) -> tuple[list[Contender], dict[str, SurfaceResult]]:
    """Start every chosen surface (servers first); those that cannot start are reported."""
    env = server_env(database_url, args.redis, cache_max_entries=CACHE_MAX_ENTRIES)
    contenders: list[Contender] = []
    failed: dict[str, SurfaceResult] = {}
    for index, name in enumerate(sorted(args.surfaces, key=lambda s: s == "core")):
        sentences = SentenceFactory(seed=2024, tag=f"{nonce}{index}")
        try:
            if name == "core":
                core = stack.enter_context(CoreSurface(database_url, args.redis))
                contenders.append(Contender(core, sentences))
                continue
            log_path = RESULTS_DIR / f"server-{name}.log"
            progress(f"{name}: starting the server (log: {log_path.relative_to(ROOT)})")
            started = time.monotonic()
            server = stack.enter_context(
                serve(name, env, startup_timeout=args.startup_timeout, log_path=log_path)
            )
            progress(f"{name}: healthy after {time.monotonic() - started:.1f}s")
            surface = HttpSurface(name, server.base_url)
            stack.callback(surface.close)
            contenders.append(Contender(surface, sentences, server))
        except (ServerFailed, RuntimeError, OSError) as exc:
            progress(f"{name}: FAILED to start: {exc}")
            failed[name] = SurfaceResult(name, error=f"{type(exc).__name__}: {exc}")
    order = {name: i for i, name in enumerate(SURFACES)}
    contenders.sort(key=lambda c: order[c.name])
    return contenders, failed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every chosen surface was measured."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C stops the run cleanly even when started in the background (where SIGINT is ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sizes = Sizes.quick() if args.quick else Sizes.full()
    info = machine()
    nonce = random.SystemRandom().randrange(1000, 10000)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)

    with ExitStack() as stack:
        database_url = start_database(stack)
        contenders, results = start_contenders(stack, args, database_url, nonce)
        own = [psutil.Process()]
        for contender in contenders:
            if contender.server is not None:
                own.extend(contender.server.processes())
        if args.settle > 0:
            info["cpu_percent_before"] = wait_for_quiet(args.settle)
        load = measure(contenders, sizes, own)
        results.update({c.name: summarise(c) for c in contenders})
        samples = {c.name: c.samples for c in contenders}
        progress("stopping the servers and the embedded PostgreSQL")
    diagnostics = json_costs()

    info["load_average_end"] = list(os.getloadavg())
    results = {name: results[name] for name in SURFACES if name in results}
    checks = evaluate(results)
    print()
    print(f"machine: {info['nproc']} cores, {info['cpu_model']}, {info['memory_gb']} GB")
    print(f"sizes: {asdict(sizes)}; cache: {'redis' if args.redis else 'in-process'}\n")
    print(render_table(results))
    print()
    print(render_checks(checks))
    print()
    print(
        "CPU used by other processes while measuring (cores, of "
        f"{info['nproc']}): " + ", ".join(f"{k} {_fmt(v, 2)}" for k, v in load.items())
    )
    health = ", ".join(
        f"{r.surface} {_fmt(r.health_p50_ms, 3)} ms"
        for r in results.values()
        if r.health_p50_ms is not None
    )
    if health:
        print(f"GET /health p50 (HTTP client + server floor): {health}")
    print(
        f"JSON of a 64x384 batch answer ({diagnostics['body_bytes'] / 1000:.0f} kB), median ms: "
        + ", ".join(
            f"{key.removesuffix('_ms')} {value:.2f}"
            for key, value in diagnostics.items()
            if key.endswith("_ms")
        )
    )

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": info,
            "sizes": asdict(sizes),
            "cache": "redis" if args.redis else "memory",
            "results": {name: asdict(result) for name, result in results.items()},
            "checks": [{**asdict(c), "status": c.status()} for c in checks],
            "foreign_load_cores": load,
            "json_costs": diagnostics,
            "samples_ms": {
                name: {phase: [round(s * 1000, 4) for s in values] for phase, values in d.items()}
                for name, d in samples.items()
            },
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
