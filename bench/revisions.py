"""Before and after a change, in one run: the same requests served by two revisions of SynthStack.

A refactoring must not make the service slower. This benchmark serves the API from two revisions
side by side, on one embedded PostgreSQL (``bench/.data``), and times the same requests against
both, block by block, so that a change in outside load falls on both alike:

* ``before``: the sources of a git revision (``--before``, e.g. the commit a branch started from),
  extracted with ``git archive`` into ``bench/.revisions/<commit>`` and put first on
  ``PYTHONPATH`` (core, FastAPI and Django adapters), so they run on this checkout's environment;
* ``after``: this checkout's sources, as installed.

Per backend (``--backends``, FastAPI under uvicorn and Django under gunicorn, one worker each) it
times, from one keep-alive client per server: ``/health``, ``/ready``, an embedding of one short
sentence (the cache off, so the model runs every time), a similarity of two texts, sentiment and
keywords of one paragraph, a complexity estimate, lexical, dense and hybrid search of a small
collection (indexed once, before timing), and the served contract (``/openapi.json``). It also
reports each server's time to its first healthy ``/health`` and the serving worker's memory.

Run it from the repository root::

    .hatch/default/bin/python bench/revisions.py --before 07e765a
    .hatch/default/bin/python bench/revisions.py --before 07e765a --quick   # smoke run

It prints one line per request kind: p50 before, p50 after and the ratio after/before (below 1.0:
faster after), and the CPU other processes took meanwhile. A benchmark, not a test: the exit
status is non-zero only when a server could not be measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _servers import (
    API_KEY,
    RESULTS_DIR,
    ROOT,
    ForeignLoad,
    Server,
    add_server_options,
    database_processes,
    machine,
    percentiles_ms,
    progress,
    serve,
    server_env,
    start_database,
    wait_for_quiet,
)

REVISIONS_DIR = ROOT / "bench" / ".revisions"
SOURCE_DIRS = ("packages/synthstack-core/src", "services/fastapi/src", "services/django/src")
COLLECTION = "bench-revisions"

PARAGRAPH = (
    "The new release made our deployments noticeably faster, and the team was relieved that the "
    "migration finally worked. A few dashboards still load slowly, which is annoying, but support "
    "answered every question within the hour and the documentation covers the tricky parts well."
)
DOCUMENTS = [
    (
        "pgvector",
        "pgvector adds vector similarity search to PostgreSQL. An HNSW index answers approximate "
        "nearest-neighbour queries in logarithmic time, and exact search remains available.",
    ),
    (
        "bm25",
        "BM25 ranks documents by term frequency, inverse document frequency and document length. "
        "It is the lexical baseline most search engines still start from.",
    ),
    (
        "fusion",
        "Reciprocal rank fusion merges the rankings of lexical and dense retrieval without "
        "calibrating their scores, which is why hybrid search often beats either alone.",
    ),
    (
        "whisper",
        "Whisper transcribes speech in many languages; smaller models trade accuracy for speed "
        "and run comfortably on a laptop's CPU.",
    ),
]


@dataclass(frozen=True)
class Call:
    """One kind of request."""

    name: str
    method: str
    path: str
    body: dict[str, Any] | None = None


CALLS: tuple[Call, ...] = (
    Call("health", "GET", "/health"),
    Call("ready", "GET", "/ready"),
    Call("embed", "POST", "/api/v1/embeddings/generate", {"text": "How do I rotate an API key?"}),
    Call(
        "similarity",
        "POST",
        "/api/v1/embeddings/similarity",
        {"text1": "rotate an API key", "text2": "replace a credential"},
    ),
    Call("sentiment", "POST", "/api/v1/analysis/sentiment", {"text": PARAGRAPH}),
    Call("keywords", "POST", "/api/v1/analysis/keywords", {"text": PARAGRAPH}),
    Call(
        "complexity",
        "POST",
        "/api/v1/complexity/estimate",
        {"title": "Add rate limiting per tenant to a REST API backed by Redis"},
    ),
    *(
        Call(
            f"search-{mode}",
            "POST",
            "/api/v1/rag/search",
            {"query": "hybrid search ranking", "collection": COLLECTION, "mode": mode},
        )
        for mode in ("lexical", "dense", "hybrid")
    ),
    Call("openapi", "GET", "/openapi.json"),
)


@dataclass
class Surface:
    """One revision on one backend: its server and its timings."""

    revision: str
    backend: str
    server: Server
    client: httpx.Client
    startup_seconds: float
    timings: dict[str, list[float]] = field(default_factory=dict)

    def call(self, call: Call) -> float:
        started = time.perf_counter()
        response = self.client.request(call.method, call.path, json=call.body)
        elapsed = time.perf_counter() - started
        if response.status_code >= 400:
            raise RuntimeError(
                f"{self.revision}/{self.backend} {call.name}: {response.status_code} "
                f"{response.text[:300]}"
            )
        return elapsed


def extract(revision: str) -> tuple[str, Path]:
    """The revision's full commit id and the directory its tree is extracted to."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    target = REVISIONS_DIR / commit
    if not (target / ".complete").exists():
        progress(f"extracting {revision} ({commit[:10]}) into {target.relative_to(ROOT)}")
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        tar_path = target.with_suffix(".tar")
        tar_path.write_bytes(archive)
        with tarfile.open(tar_path) as tar:
            tar.extractall(target, filter="data")
        tar_path.unlink()
        (target / ".complete").write_text(commit)
    return commit, target


def revision_env(base: dict[str, str], tree: Path | None) -> dict[str, str]:
    """``base``, with ``tree``'s sources first on ``PYTHONPATH`` (None: this checkout's)."""
    env = dict(base)
    if tree is not None:
        paths = [str(tree / sub) for sub in SOURCE_DIRS]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def check_sources(env: dict[str, str], tree: Path | None) -> None:
    """The servers' environment imports the revision's core (a mistake here would compare a
    revision with itself)."""
    expected = ((tree or ROOT) / SOURCE_DIRS[0]).resolve()
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, synthstack_core; sys.stdout.write(synthstack_core.__file__)",
        ],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if not Path(imported).resolve().is_relative_to(expected):
        raise RuntimeError(f"the servers would import {imported}, not the sources in {expected}")


def index_collection(client: httpx.Client) -> None:
    for doc_id, text in DOCUMENTS:
        response = client.post(
            "/api/v1/rag/index",
            json={
                "collection": COLLECTION,
                "document_id": doc_id,
                "source": f"{doc_id}.txt",
                "content": text,
                "title": doc_id,
            },
        )
        response.raise_for_status()


def measure(surfaces: Sequence[Surface], calls: Sequence[Call], rounds: int, block: int) -> None:
    """``rounds`` rounds; in each, every surface makes ``block`` calls of each kind after one
    untimed call, the surfaces' order rotating from round to round."""
    for round_index in range(rounds):
        order = list(surfaces[round_index % len(surfaces) :]) + list(
            surfaces[: round_index % len(surfaces)]
        )
        for call in calls:
            for surface in order:
                surface.call(call)  # untimed
                times = surface.timings.setdefault(call.name, [])
                times.extend(surface.call(call) for _ in range(block))


def ratio(after: float | None, before: float | None) -> float | None:
    if after is None or before is None or before == 0:
        return None
    return round(after / before, 3)


def report(surfaces: Sequence[Surface], calls: Sequence[Call]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    backends = sorted({s.backend for s in surfaces})
    for backend in backends:
        before = next(s for s in surfaces if s.backend == backend and s.revision == "before")
        after = next(s for s in surfaces if s.backend == backend and s.revision == "after")
        print(f"\n{backend}: p50 ms (p95 ms) before -> after, ratio after/before")
        for call in calls:
            b50, b95 = percentiles_ms(before.timings[call.name])
            a50, a95 = percentiles_ms(after.timings[call.name])
            row = {
                "backend": backend,
                "call": call.name,
                "before_p50_ms": b50,
                "before_p95_ms": b95,
                "after_p50_ms": a50,
                "after_p95_ms": a95,
                "ratio_p50": ratio(a50, b50),
                "samples": len(after.timings[call.name]),
            }
            rows.append(row)
            print(
                f"  {call.name:<16} {b50:>8.2f} ({b95:>8.2f}) -> {a50:>8.2f} ({a95:>8.2f})"
                f"   x{row['ratio_p50']}"
            )
        b_rss, _ = before.server.memory()
        a_rss, _ = after.server.memory()
        print(
            f"  {'startup s':<16} {before.startup_seconds:>8.2f}            -> "
            f"{after.startup_seconds:>8.2f}              x"
            f"{ratio(after.startup_seconds, before.startup_seconds)}"
        )
        print(f"  {'worker RSS MB':<16} {b_rss:>8.0f}            -> {a_rss:>8.0f}")
        rows.append(
            {
                "backend": backend,
                "call": "startup",
                "before_seconds": round(before.startup_seconds, 3),
                "after_seconds": round(after.startup_seconds, 3),
                "before_worker_rss_mb": round(b_rss),
                "after_worker_rss_mb": round(a_rss),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the git revision to compare against")
    parser.add_argument("--backends", default="fastapi,django", help="comma-separated")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=5, help="timed calls per kind per round")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 calls (smoke run)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    add_server_options(parser, settle_before="measuring")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.block = 2, 2
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    commit, tree = extract(args.before)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    with ExitStack() as stack:
        database_url = start_database(stack)
        base_env = server_env(database_url, None, cache_max_entries=0)
        base_env["SYNTHSTACK_ANALYSIS_LLM"] = "off"
        for name in (
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
        ):
            base_env.pop(name, None)
        surfaces: list[Surface] = []
        for backend in backends:
            for revision, source_tree in (("before", tree), ("after", None)):
                env = revision_env(base_env, source_tree)
                check_sources(env, source_tree)
                started = time.monotonic()
                server = stack.enter_context(
                    serve(
                        backend,
                        env,
                        startup_timeout=args.startup_timeout,
                        log_path=RESULTS_DIR / f"revisions-{revision}-{backend}.log",
                    )
                )
                client = httpx.Client(
                    base_url=server.base_url,
                    headers={"Authorization": f"Bearer {API_KEY}"},
                    timeout=120.0,
                )
                stack.callback(client.close)
                surface = Surface(revision, backend, server, client, time.monotonic() - started)
                surfaces.append(surface)
                progress(f"{revision} ({backend}) healthy in {surface.startup_seconds:.1f}s")
        index_collection(surfaces[-1].client)
        usage = wait_for_quiet(args.settle)
        progress(f"measuring ({usage:.0f}% CPU busy before start)")

        def own() -> list[Any]:
            return [p for s in surfaces for p in s.server.processes()] + database_processes()

        own_processes: Callable[[], list[Any]] = own
        with ForeignLoad(own_processes) as load:
            measure(surfaces, CALLS, args.rounds, args.block)
        rows = report(surfaces, CALLS)
        print(
            f"\nother processes kept {load.cores:.2f} cores busy on average while measuring "
            f"(before: {commit[:10]}, after: {head[:10]}{' + uncommitted changes' if dirty else ''})"
        )
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(
                json.dumps(
                    {
                        "machine": machine(),
                        "before": commit,
                        "after": head,
                        "after_dirty": dirty,
                        "foreign_cores": load.cores,
                        "rounds": args.rounds,
                        "block": args.block,
                        "rows": rows,
                    },
                    indent=2,
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
