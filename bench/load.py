"""Load test: both backends side by side at rising concurrency, an overload probe and a soak.

Starts ``synthstack serve`` with FastAPI (uvicorn) and with Django (gunicorn), one worker each, on
one embedded PostgreSQL (``bench/.data``, or ``--database-url``), the cache off (every embedding is
real inference), and drives them in turns from one asyncio driver (httpx, keep-alive connections,
one connection per client):

* **steps**: ``POST /api/v1/embeddings/generate`` (one short text), ``POST /api/v1/rag/search``
  (hybrid, on a small collection indexed at start) and ``GET /health``, each at every
  ``--clients`` level for ``--seconds``; each client sends its next request as soon as the last one
  is answered. Per backend x operation x concurrency: throughput, p50/p99 latency, errors (any
  non-2xx but 503, or a transport error), shed (503) and whether the step held (p99 <= 250 ms, no
  error, nothing shed).
* **overload** (``--overload N``): N embedding and N search requests sent at once, each on its own
  connection, as the issue's probe did; p50/p99 per operation and what was shed.
* **soak** (``--soak-seconds``): a mixed load (embeddings, search, health in turn) on both backends
  at once, ``--soak-clients`` clients each; the worker's RSS after warm-up and at the end.

``--admission 10000/0,8/0,8/16`` runs all of it once per pair of ``SYNTHSTACK_MAX_ACTIVE_REQUESTS``
/ ``SYNTHSTACK_MAX_QUEUED_REQUESTS`` (``10000/0``: everything admitted at once, as before admission
control; ``8/0``: the defaults), both backends restarted for each. ``--json PATH`` writes every figure.

    hatch run bench-load --clients 1,4,16,64 --seconds 10 --soak-seconds 600 --json load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import numpy as np
import psutil  # type: ignore[import-untyped]  # no stubs installed
from _servers import (
    API_KEY,
    RESULTS_DIR,
    ROOT,
    ForeignLoad,
    Server,
    ServerFailed,
    add_server_options,
    database_processes,
    machine,
    progress,
    serve,
    server_env,
    start_database,
    wait_for_quiet,
)

BACKENDS = ("fastapi", "django")
OPERATIONS = ("embeddings", "search", "health")
COLLECTION = "load-bench"
#: A step holds when its p99 is at most this and nothing failed or was shed.
P99_TARGET_MS = 250.0

# A small collection (about one chunk a document) of plain sentences on a few subjects.
_SUBJECTS = (
    "PostgreSQL keeps its tables in pages of eight kilobytes and writes a log before each change",
    "A vector index answers nearest-neighbour queries without comparing every stored vector",
    "Gunicorn forks worker processes that each serve requests with a pool of threads",
    "Uvicorn runs an asyncio event loop that interleaves many connections in one thread",
    "Sentence embeddings map a text to a point so that similar meanings lie close together",
    "Rate limits protect a shared service from one client taking every worker",
    "A bounded queue turns overload into fast refusals instead of ever longer waits",
    "Prometheus scrapes counters and histograms from an HTTP endpoint at a fixed interval",
)
_ANGLES = (
    "This note explains why it matters in production.",
    "Operators measure it before changing any setting.",
    "The trade-off is latency against throughput.",
    "It fails in surprising ways when the machine is shared.",
    "Tests prove the behaviour with real processes.",
)
QUERIES = (
    "how does a vector index find neighbours",
    "why bound the queue of waiting requests",
    "worker processes and threads in gunicorn",
    "write-ahead log in postgres",
    "what do sentence embeddings capture",
    "scraping metrics with prometheus",
)


def documents() -> list[tuple[str, str]]:
    """(id, content) of the collection's documents: 40 of them."""
    return [
        (f"doc-{i:02d}-{j}", f"{subject}. {angle}")
        for i, subject in enumerate(_SUBJECTS)
        for j, angle in enumerate(_ANGLES)
    ]


# -- figures -------------------------------------------------------------------------------------


@dataclass
class Step:
    """One backend x operation x concurrency."""

    backend: str
    operation: str
    clients: int
    seconds: float = 0.0
    requests: int = 0
    ok: int = 0
    errors: int = 0
    shed: int = 0
    throughput: float | None = None
    first_ms: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    retry_after: list[str] = field(default_factory=list)
    foreign_load_cores: float | None = None
    #: The server's own means over the step (its /metrics): in the core, and the model's run.
    core_mean_ms: float | None = None
    inference_mean_ms: float | None = None

    @property
    def held(self) -> bool:
        """p99 within the target, no error, nothing shed."""
        return (
            self.requests > 0
            and self.errors == 0
            and self.shed == 0
            and self.p99_ms is not None
            and self.p99_ms <= P99_TARGET_MS
        )


def _pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if values else None


class Tally:
    """What one step's clients saw."""

    def __init__(self) -> None:
        self.latencies: list[float] = []  # of the 2xx answers
        self.statuses: Counter[str] = Counter()
        self.retry_after: Counter[str] = Counter()

    def add(self, status: str, seconds: float, retry_after: str | None = None) -> None:
        self.statuses[status] += 1
        if status.startswith("2"):
            self.latencies.append(seconds)
        if retry_after is not None:
            self.retry_after[retry_after] += 1

    def into(self, step: Step, seconds: float) -> Step:
        step.seconds = round(seconds, 3)
        step.requests = sum(self.statuses.values())
        step.shed = self.statuses.get("503", 0)
        step.ok = sum(n for s, n in self.statuses.items() if s.startswith("2"))
        step.errors = step.requests - step.ok - step.shed
        step.throughput = round(step.ok / seconds, 2) if seconds > 0 else None
        p50, p99 = _pct(self.latencies, 50), _pct(self.latencies, 99)
        step.first_ms = round(1000.0 * min(self.latencies), 2) if self.latencies else None
        step.p50_ms = None if p50 is None else round(p50, 2)
        step.p99_ms = None if p99 is None else round(p99, 2)
        step.error_rate = round(step.errors / step.requests, 4) if step.requests else None
        step.statuses = dict(self.statuses)
        step.retry_after = sorted(self.retry_after)
        return step


# -- driving -------------------------------------------------------------------------------------


def request_of(operation: str) -> Callable[[httpx.AsyncClient, int], Any]:
    """A function sending the ``n``-th request of ``operation``."""
    if operation == "embeddings":
        return lambda client, n: client.post(
            "/api/v1/embeddings/generate", json={"text": f"load test sentence number {n}"}
        )
    if operation == "search":
        return lambda client, n: client.post(
            "/api/v1/rag/search",
            json={"query": f"{QUERIES[n % len(QUERIES)]} {n}", "collection": COLLECTION,
                  "limit": 5, "mode": "hybrid"},
        )  # fmt: skip
    if operation == "health":
        return lambda client, _n: client.get("/health")
    raise ValueError(operation)


async def _send(
    client: httpx.AsyncClient, send: Callable[[httpx.AsyncClient, int], Any], n: int, tally: Tally
) -> None:
    start = time.perf_counter()
    try:
        response = await send(client, n)
    except httpx.HTTPError as exc:
        tally.add(f"transport:{type(exc).__name__}", time.perf_counter() - start)
        return
    tally.add(str(response.status_code), time.perf_counter() - start,
              response.headers.get("retry-after") if response.status_code == 503 else None)  # fmt: skip


#: One TLS context for every client (the servers speak plain HTTP): httpx loads the CA bundle
#: for each client made without one, ~50-100 ms of the driver's CPU each, which at 64 clients
#: stalled the driver's loop for seconds and showed as the servers' latency.
_TLS = ssl.create_default_context()


def _client(base_url: str) -> httpx.AsyncClient:
    # One connection per client: each client task holds its own keep-alive connection.
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=httpx.Timeout(300.0),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        verify=_TLS,
    )


async def drive(
    base_url: str, operations: Sequence[str], clients: int, seconds: float, tally: Tally
) -> float:
    """``clients`` closed-loop clients for ``seconds`` (operations taken in turn); the wall time
    until the last answer."""
    sends = [request_of(op) for op in operations]
    counter = iter(range(10**9))
    # Every client made before the clock starts (making one costs the driver's CPU).
    pool = [_client(base_url) for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    async def one(index: int) -> None:
        async with pool[index] as client:
            k = index
            while time.perf_counter() < deadline:
                n = next(counter)
                await _send(client, sends[k % len(sends)], n, tally)
                k += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    return time.perf_counter() - start


async def burst(base_url: str, per_operation: int) -> tuple[dict[str, Tally], float]:
    """``per_operation`` embedding and as many search requests, all sent at once; what they got
    and the seconds until the last answer."""
    tallies = {"embeddings": Tally(), "search": Tally()}
    clients = [_client(base_url) for _ in range(2 * per_operation)]
    try:
        jobs = []
        for i in range(per_operation):
            for k, op in enumerate(("embeddings", "search")):
                client = clients[2 * i + k]
                jobs.append(_send(client, request_of(op), 1_000_000 + 2 * i + k, tallies[op]))
        start = time.perf_counter()
        await asyncio.gather(*jobs)
        wall = time.perf_counter() - start
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return tallies, wall


# -- the server's own account (GET /metrics) -----------------------------------------------------

OPERATION_IDS = {
    "embeddings": "embeddings-generate",
    "search": "rag-search",
    "health": "health-liveness",
}


def read_metrics(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The server's metrics samples (development: loopback reads them without a token)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base_url}/metrics", timeout=30.0).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def server_means(
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    after: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    operation: str,
) -> dict[str, float | None]:
    """Mean milliseconds, between two reads, of a request of ``operation`` in the core (from the
    core seeing it to its response) and of one local embedding run (the model alone)."""

    def mean(name: str, labels: dict[str, str]) -> float | None:
        key = tuple(sorted(labels.items()))
        total = after.get((f"{name}_sum", key), 0.0) - before.get((f"{name}_sum", key), 0.0)
        count = after.get((f"{name}_count", key), 0.0) - before.get((f"{name}_count", key), 0.0)
        return round(1000.0 * total / count, 2) if count > 0 else None

    return {
        "core_mean_ms": mean(
            "synthstack_http_request_duration_seconds", {"operation_id": OPERATION_IDS[operation]}
        ),
        "inference_mean_ms": mean(
            "synthstack_model_inference_seconds", {"kind": "embedding", "model": "all-MiniLM-L6-v2"}
        ),
    }


# -- set-up --------------------------------------------------------------------------------------


def index_collection(base_url: str) -> None:
    """(Re)create the collection and index its documents."""
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=300.0
    ) as client:
        client.delete(f"/api/v1/rag/collections/{COLLECTION}")
        created = client.post("/api/v1/rag/collections", json={"name": COLLECTION})
        if created.status_code not in (200, 201):
            raise RuntimeError(f"creating the collection: {created.status_code} {created.text}")
        for doc_id, content in documents():
            answer = client.post(
                "/api/v1/rag/index",
                json={"content": content, "collection": COLLECTION, "document_id": doc_id,
                      "source": f"load/{doc_id}"},
            )  # fmt: skip
            if answer.status_code not in (200, 201):
                raise RuntimeError(f"indexing {doc_id}: {answer.status_code} {answer.text}")


def warm(base_url: str) -> None:
    """Load the model and fill the pools: a few requests of each operation."""
    tally = Tally()
    asyncio.run(drive(base_url, OPERATIONS, 2, 2.0, tally))
    bad = {s: n for s, n in tally.statuses.items() if not s.startswith("2")}
    if bad:
        raise RuntimeError(f"warm-up failed at {base_url}: {bad}")


# -- one run -------------------------------------------------------------------------------------


def run_variant(
    args: argparse.Namespace,
    database_url: str,
    admission: tuple[int, int] | None,
    info: dict[str, Any],
) -> dict[str, Any]:
    """Every step, the overload probe and the soak with one admission setting."""
    label = "env" if admission is None else f"{admission[0]}-{admission[1]}"
    result: dict[str, Any] = {"admission": label, "steps": [], "overload": {}, "soak": {}}
    with ExitStack() as stack:
        env = server_env(database_url, None, cache_max_entries=0)
        if admission is not None:
            env["SYNTHSTACK_MAX_ACTIVE_REQUESTS"] = str(admission[0])
            env["SYNTHSTACK_MAX_QUEUED_REQUESTS"] = str(admission[1])
        servers: dict[str, Server] = {}
        for backend in args.backends:
            log_path = RESULTS_DIR / f"server-load-{backend}-{label}.log"
            progress(f"{backend} (admission {label}): starting (log: {log_path.relative_to(ROOT)})")
            servers[backend] = stack.enter_context(
                serve(backend, env, startup_timeout=args.startup_timeout, log_path=log_path)
            )

        def own() -> list[psutil.Process]:
            procs = [psutil.Process(), *database_processes()]
            for server in servers.values():
                procs.extend(server.processes())
            return procs

        index_collection(next(iter(servers.values())).base_url)
        for server in servers.values():
            warm(server.base_url)
        if args.settle > 0:
            info[f"cpu_percent_before_{label}"] = wait_for_quiet(args.settle)

        # Steps: each level, each operation, the backends in turn (so they see the same machine).
        for clients in args.clients:
            for operation in args.operations:
                for backend, server in servers.items():
                    tally = Tally()
                    before = read_metrics(server.base_url)
                    with ForeignLoad(own) as load:
                        wall = asyncio.run(
                            drive(server.base_url, [operation], clients, args.seconds, tally)
                        )
                    step = tally.into(Step(backend, operation, clients), wall)
                    means = server_means(before, read_metrics(server.base_url), operation)
                    step.core_mean_ms = means["core_mean_ms"]
                    step.inference_mean_ms = means["inference_mean_ms"]
                    step.foreign_load_cores = None if load.cores is None else round(load.cores, 2)
                    result["steps"].append(asdict(step) | {"held": step.held})
                    progress(
                        f"{label} {backend:7} {operation:10} x{clients:<3} "
                        f"{step.throughput} req/s p50 {step.p50_ms} p99 {step.p99_ms} ms "
                        f"errors {step.errors} shed {step.shed}; server: core {step.core_mean_ms} "
                        f"model {step.inference_mean_ms} ms"
                    )

        if args.overload > 0:
            for backend, server in servers.items():
                before = read_metrics(server.base_url)
                with ForeignLoad(own) as load:
                    tallies, wall = asyncio.run(burst(server.base_url, args.overload))
                after = read_metrics(server.base_url)
                figures = {
                    op: asdict(t.into(Step(backend, op, 2 * args.overload), wall))
                    | server_means(before, after, op)
                    for op, t in tallies.items()
                }
                result["overload"][backend] = {
                    "seconds": round(wall, 2),
                    "foreign_load_cores": None if load.cores is None else round(load.cores, 2),
                    **figures,
                }
                progress(
                    f"{label} {backend} overload: "
                    + "; ".join(
                        f"{op} first {f['first_ms']} p50 {f['p50_ms']} p99 {f['p99_ms']} "
                        f"ok {f['ok']} shed {f['shed']} core {f['core_mean_ms']} "
                        f"model {f['inference_mean_ms']} "
                        f"errors {f['errors']}"
                        for op, f in figures.items()
                    )
                )

        if args.soak_seconds > 0:
            start_rss = {b: s.memory()[0] for b, s in servers.items()}
            progress(f"{label} soak: {args.soak_seconds:.0f} s, both backends at once")
            tallies = {b: Tally() for b in servers}

            async def soak() -> list[float]:
                return await asyncio.gather(
                    *(
                        drive(s.base_url, OPERATIONS, args.soak_clients, args.soak_seconds,
                              tallies[b])
                        for b, s in servers.items()
                    )
                )  # fmt: skip

            with ForeignLoad(own) as load:
                walls = asyncio.run(soak())
            for (backend, server), wall in zip(servers.items(), walls, strict=True):
                end_rss = server.memory()[0]
                step = tallies[backend].into(Step(backend, "mixed", args.soak_clients), wall)
                result["soak"][backend] = {
                    "rss_start_mb": round(start_rss[backend], 1),
                    "rss_end_mb": round(end_rss, 1),
                    "growth_percent": round(100.0 * (end_rss / start_rss[backend] - 1.0), 2),
                    "requests": step.requests,
                    "errors": step.errors,
                    "shed": step.shed,
                    "throughput": step.throughput,
                    "p50_ms": step.p50_ms,
                    "p99_ms": step.p99_ms,
                }
            result["soak"]["seconds"] = args.soak_seconds
            result["soak"]["foreign_load_cores"] = (
                None if load.cores is None else round(load.cores, 2)
            )
        progress("stopping the servers")
    return result


# -- output --------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def render(results: Sequence[dict[str, Any]]) -> str:
    """Tables of every variant: the steps, the concurrency held, the overload probe, the soak."""
    lines: list[str] = []
    for variant in results:
        lines.append(
            f"\n== admission (SYNTHSTACK_MAX_ACTIVE_REQUESTS-SYNTHSTACK_MAX_QUEUED_REQUESTS): "
            f"{variant['admission']}"
        )
        lines.append(
            f"{'operation':10} {'clients':>7} | {'backend':7} {'req/s':>8} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'err %':>6} {'shed':>5} {'held':>4} {'core ms':>8} {'model ms':>8} "
            f"| ratio FastAPI/Django"
        )
        steps = variant["steps"]
        by_key = {(s["backend"], s["operation"], s["clients"]): s for s in steps}
        for s in steps:
            other = by_key.get(("django", s["operation"], s["clients"]))
            ratio = ""
            if s["backend"] == "fastapi" and other is not None:
                ratio = (
                    f"req/s {_ratio(s['throughput'], other['throughput'])} "
                    f"p50 {_ratio(s['p50_ms'], other['p50_ms'])} "
                    f"p99 {_ratio(s['p99_ms'], other['p99_ms'])}"
                )
            err = None if s["error_rate"] is None else 100 * s["error_rate"]
            lines.append(
                f"{s['operation']:10} {s['clients']:>7} | {s['backend']:7} "
                f"{_f(s['throughput'])!s:>8} {_f(s['p50_ms'])!s:>8} {_f(s['p99_ms'])!s:>8} "
                f"{_f(err, 2)!s:>6} {s['shed']:>5} {'yes' if s['held'] else 'no':>4} "
                f"{_f(s['core_mean_ms'])!s:>8} {_f(s['inference_mean_ms'])!s:>8} | {ratio}"
            )
        lines.append("highest concurrency held (p99 <= 250 ms, no error, nothing shed):")
        for backend in sorted({s["backend"] for s in steps}):
            for operation in sorted({s["operation"] for s in steps}):
                held = [
                    s["clients"]
                    for s in steps
                    if s["backend"] == backend and s["operation"] == operation and s["held"]
                ]
                lines.append(f"  {backend:7} {operation:10} {max(held) if held else 'none'}")
        for backend, o in variant["overload"].items():
            lines.append(
                f"overload {backend:7} ({o['seconds']} s, foreign load {o['foreign_load_cores']}): "
                + "; ".join(
                    f"{op} first {_f(o[op]['first_ms'], 0)} p50 {_f(o[op]['p50_ms'], 0)} "
                    f"p99 {_f(o[op]['p99_ms'], 0)} ms (core mean {_f(o[op]['core_mean_ms'], 0)}, "
                    f"model mean {_f(o[op]['inference_mean_ms'], 0)}), "
                    f"ok {o[op]['ok']} shed {o[op]['shed']} errors {o[op]['errors']}"
                    f"{' Retry-After ' + ','.join(o[op]['retry_after']) if o[op]['retry_after'] else ''}"
                    for op in ("embeddings", "search")
                )
            )
        soak = variant["soak"]
        for backend in BACKENDS:
            if backend in soak:
                s = soak[backend]
                lines.append(
                    f"soak {backend:7} {soak['seconds']:.0f} s: RSS {s['rss_start_mb']} -> "
                    f"{s['rss_end_mb']} MB ({s['growth_percent']:+.1f} %), {s['requests']} "
                    f"requests, {s['throughput']} req/s, errors {s['errors']}, shed {s['shed']}"
                )
        if "foreign_load_cores" in soak:
            lines.append(f"soak foreign load: {soak['foreign_load_cores']} cores")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------------


def _terminate(signum: int, _: FrameType | None) -> None:
    raise KeyboardInterrupt


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=_ints, default=[1, 4, 16, 64])
    parser.add_argument("--seconds", type=float, default=10.0, help="per step (default: 10)")
    parser.add_argument(
        "--operations", default=",".join(OPERATIONS), help="subset of embeddings,search,health"
    )
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument(
        "--overload",
        type=int,
        default=100,
        help="embedding and search requests each sent at once (0: no probe; default: 100)",
    )
    parser.add_argument("--soak-seconds", type=float, default=600.0)
    parser.add_argument("--soak-clients", type=int, default=8, help="per backend (default: 8)")
    parser.add_argument(
        "--admission",
        default="",
        help="comma-separated ACTIVE/QUEUED pairs (SYNTHSTACK_MAX_ACTIVE_REQUESTS / "
        "SYNTHSTACK_MAX_QUEUED_REQUESTS), one run each (default: the environment's)",
    )
    parser.add_argument("--database-url", help="a PostgreSQL to use instead of the embedded one")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    add_server_options(parser, settle_before="measuring")
    args = parser.parse_args(argv)
    args.operations = [o.strip() for o in args.operations.split(",") if o.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(args.operations) - set(OPERATIONS) or set(args.backends) - set(BACKENDS):
        parser.error("unknown operation or backend")
    try:
        args.admission = [
            (int(pair.split("/")[0]), int(pair.split("/")[1]))
            for pair in args.admission.split(",")
            if pair.strip()
        ] or [None]
    except (ValueError, IndexError):
        parser.error("--admission takes ACTIVE/QUEUED pairs, e.g. 10000/0,8/16")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load test; 0 when it ran (errors and shed requests are figures, not failures)."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    info = machine()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    results = []
    with ExitStack() as stack:
        database_url = args.database_url or start_database(stack)
        for admission in args.admission:
            try:
                results.append(run_variant(args, database_url, admission, info))
            except ServerFailed as exc:
                progress(f"a server failed to start: {exc}")
                return 1
    info["load_average_end"] = list(os.getloadavg())
    print(
        f"machine: {info['nproc']} cores, {info['cpu_model']}, {info['memory_gb']} GB; "
        f"load average {info['load_average_start']} -> {info['load_average_end']}"
    )
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2))
        progress(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
