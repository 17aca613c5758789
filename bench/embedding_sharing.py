"""Would sharing inference runs across requests speed up the local embedding model? Measured: no.

The provider (``providers/local_onnx.py``) runs each request's texts as one inference, one request
at a time. The candidate here, ``SharedRuns``, lets the requests that queue while the model is busy
share the next run (whoever gets the model embeds every queued request, up to 256 texts, and hands
each its rows; nothing waits on purpose). Both variants are the real model in this process, side
by side; the candidate lives only in this file because it lost (docs/benchmarks.md).

For each workload, ``--rounds`` rounds alternate the two variants; each round sends ``--requests``
requests from N concurrent callers (closed loop: a caller sends its next request when its previous
one is answered). It reports requests/s, texts/s and per-request latency p50/p95 for both, and the
ratio shared / one-per-request.

Workloads: single short texts (a search query, ``/embeddings/generate``) and two-chunk requests of
~200 tokens each (what ingesting a SciFact abstract asks for), at 1, 4 and 16 callers.

    .hatch/default/bin/python bench/embedding_sharing.py
    .hatch/default/bin/python bench/embedding_sharing.py --quick
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _servers import machine, percentiles_ms, progress, wait_for_quiet  # noqa: E402

from synthstack_core.providers.embedding import EmbeddingBatch, EmbeddingModelSpec  # noqa: E402
from synthstack_core.providers.local_onnx import (  # noqa: E402
    LOCAL_MODEL,
    LocalOnnxEmbeddingProvider,
)

SCIFACT = ROOT.parent / "shared" / "data" / "scifact"


MAX_SHARED_TEXTS = 256


@dataclass(eq=False)
class _Queued:
    texts: list[str]
    result: EmbeddingBatch | None = None
    error: Exception | None = None


class SharedRuns(LocalOnnxEmbeddingProvider):
    """The candidate: requests queued while the model is busy share its next run."""

    def __init__(self) -> None:
        super().__init__()
        self._model_lock = anyio.Lock()
        self._queued: list[_Queued] = []

    async def embed_batch(
        self, texts: Sequence[str], *, model: EmbeddingModelSpec, dimensions: int | None
    ) -> EmbeddingBatch:
        request = _Queued(list(texts))
        self._queued.append(request)
        try:
            async with self._model_lock:
                if request.result is None and request.error is None:
                    await self._run(self._take(request))
        finally:
            if request in self._queued:
                self._queued.remove(request)
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _take(self, first: _Queued) -> list[_Queued]:
        taken, size = [first], len(first.texts)
        self._queued.remove(first)
        for request in list(self._queued):
            if size + len(request.texts) > MAX_SHARED_TEXTS:
                break
            self._queued.remove(request)
            taken.append(request)
            size += len(request.texts)
        return taken

    async def _run(self, requests: list[_Queued]) -> None:
        with anyio.CancelScope(shield=True):
            try:
                batch = await anyio.to_thread.run_sync(
                    self._embed_sync,
                    [text for request in requests for text in request.texts],
                    limiter=self._limiter,
                )
            except Exception as exc:
                for request in requests:
                    request.error = exc
                return
        start = 0
        for request in requests:
            end = start + len(request.texts)
            request.result = EmbeddingBatch(
                vectors=batch.vectors[start:end], token_counts=batch.token_counts[start:end]
            )
            start = end


def workloads() -> dict[str, list[list[str]]]:
    """Request bodies per workload, from SciFact: queries, and abstracts cut into two chunks."""
    queries = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").open()]
    docs = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").open()][:2000]
    pairs = []
    for doc in docs:
        words = f"{doc['title']} {doc['text']}".split()
        if len(words) >= 240:
            pairs.append([" ".join(words[:150]), " ".join(words[150:300])])
    return {"query (1 text)": [[q] for q in queries], "ingest (2 chunks)": pairs}


async def run_round(
    provider: LocalOnnxEmbeddingProvider, bodies: list[list[str]], callers: int, total: int
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    texts = 0
    next_index = 0

    async def caller() -> None:
        nonlocal next_index, texts
        while next_index < total:
            body = bodies[next_index % len(bodies)]
            next_index += 1
            start = time.perf_counter()
            await provider.embed_batch(body, model=LOCAL_MODEL, dimensions=None)
            latencies.append(time.perf_counter() - start)
            texts += len(body)

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(callers):
            group.start_soon(caller)
    return time.perf_counter() - started, latencies, texts


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    variants: dict[str, LocalOnnxEmbeddingProvider] = {
        "one run per request": LocalOnnxEmbeddingProvider(),
        "shared runs": SharedRuns(),
    }
    for provider in variants.values():
        await provider.embed_batch(["warm up"] * 8, model=LOCAL_MODEL, dimensions=None)
    results: dict[str, object] = {}
    for name, bodies in workloads().items():
        for callers in args.callers:
            seconds = {v: 0.0 for v in variants}
            lat: dict[str, list[float]] = {v: [] for v in variants}
            count = {v: 0 for v in variants}
            texts = {v: 0 for v in variants}
            for round_number in range(args.rounds):
                order = list(variants) if round_number % 2 == 0 else list(reversed(variants))
                for variant in order:
                    took, latencies, done = await run_round(
                        variants[variant], bodies, callers, args.requests
                    )
                    seconds[variant] += took
                    lat[variant] += latencies
                    count[variant] += len(latencies)
                    texts[variant] += done
            row = {}
            for variant in variants:
                p50, p95 = percentiles_ms(lat[variant])
                row[variant] = {
                    "requests_per_s": count[variant] / seconds[variant],
                    "texts_per_s": texts[variant] / seconds[variant],
                    "p50_ms": p50,
                    "p95_ms": p95,
                }
            one, shared = row["one run per request"], row["shared runs"]
            ratio = shared["requests_per_s"] / one["requests_per_s"]
            results[f"{name}, {callers} callers"] = {**row, "throughput_ratio": ratio}
            progress(
                f"{name:18} {callers:3} callers: one-per-request {one['requests_per_s']:7.1f} req/s"
                f" p50 {one['p50_ms']:7.1f} ms | shared {shared['requests_per_s']:7.1f} req/s"
                f" p50 {shared['p50_ms']:7.1f} ms | throughput x{ratio:.2f}"
            )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=160, help="requests per round and variant")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="1 round of 32 requests")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to wait for quiet")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.requests = 1, 32
    info: dict[str, object] = {"machine": machine()}
    if args.settle > 0:
        info["cpu_percent_before"] = wait_for_quiet(args.settle)
    info["results"] = anyio.run(main_async, args)
    print(json.dumps(info["results"], indent=1, default=float))
    if args.json:
        args.json.write_text(json.dumps(info, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
