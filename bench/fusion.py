"""Hybrid-search levers on SciFact, tuned on the odd query ids and reported on the even ones.

Issue 15, point 4. Re-indexing SciFact takes ~15 min, so the levers are measured on candidates:

1. **collect** (``--collect``): starts the embedded PostgreSQL (``bench/.data``, or
   ``SYNTHSTACK_BENCH_DATA``) and ``synthstack serve``, and for every judged test query asks the
   API (``POST /api/v1/rag/search``, the real code paths) for the best ``limit`` 100 ``lexical``
   and ``dense`` chunks with their scores, and the ``lexical`` chunks of the query expanded by
   pseudo-relevance feedback (RM3, see :func:`rm3_terms`: the feedback chunks' lexemes are read
   from the collection's postings). It also tokenises the corpus' titles with PostgreSQL's
   ``english`` configuration (for the title lever). Everything goes to a JSON file;
2. **evaluate**: every lever is a function of those candidates, so a grid is seconds. Each
   variant's parameters are chosen on the **odd** query ids (best mean nDCG@10 there), and it is
   reported on the odd, the **even** and all judged queries.

The collection must have been indexed by ``bench/retrieval.py`` (same chunking). Run it from the
repository root::

    SYNTHSTACK_BENCH_DATA=bench/.data-quality hatch run python bench/fusion.py --collect \\
        --collection scifact --candidates bench/results/fusion-pgvector.json
    hatch run python bench/fusion.py --candidates bench/results/fusion-pgvector.json

``--no-rm3`` collects only the lexical and dense candidates (a third of the searches). For the
Qdrant store, a copy of the database with its collection moved there (``bench/qdrant_copy.py``)
and ``SYNTHSTACK_QDRANT_PATH`` pointing at its ``qdrant`` folder.

Documents are ranked as ``bench/retrieval.py`` ranks them: by their best chunk (first occurrence),
unless a variant aggregates chunks into documents itself.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from _servers import RESULTS_DIR, progress, serve, server_env, start_database
from retrieval import DEFAULT_DATA, _checked, _headers, find_collection, load_scifact, ndcg_at

DEPTH = 100
#: RM3's feedback chunks and expansion terms tried (the grid), as (chunks, terms).
RM3_SETTINGS = ((5, 5), (10, 5), (10, 10), (20, 10))

#: One side's candidates: (chunk id, document id, score), best first.
Ranking = list[tuple[str, str, float]]


# -- collecting ----------------------------------------------------------------------------------


def _search(client: httpx.Client, collection: str, query: str, mode: str) -> Ranking:
    body = {"query": query, "collection": collection, "limit": DEPTH, "mode": mode}
    payload = _checked(client.post("/api/v1/rag/search", json=body), 200)
    return [(r["chunk_id"], r["document_id"], float(r["score"])) for r in payload["results"]]


def rm3_terms(
    feedback: Sequence[tuple[float, Counter[str]]], original: set[str], terms: int
) -> list[str]:
    """RM3's expansion terms (Lavrenko & Croft's relevance model, as Anserini builds it): each
    feedback chunk weighs by its share of the feedback's scores, each lexeme by its share of the
    chunk's length; the ``terms`` heaviest lexemes not in the query."""
    total = sum(score for score, _ in feedback) or 1.0
    weights: dict[str, float] = defaultdict(float)
    for score, counts in feedback:
        length = sum(counts.values()) or 1
        for lexeme, tf in counts.items():
            weights[lexeme] += (score / total) * tf / length
    ranked = sorted(
        (lexeme for lexeme in weights if lexeme not in original),
        key=lambda lexeme: (-weights[lexeme], lexeme),
    )
    return ranked[:terms]


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """The candidates of every judged query, through the API; see the module's docstring."""
    import psycopg

    scifact = load_scifact(args.data)
    queries = {qid: scifact.queries[qid] for qid in scifact.qrels}
    out: dict[str, Any] = {"collection": args.collection, "queries": {}}
    with ExitStack() as stack:
        database_url = start_database(stack)
        env = server_env(database_url, None, cache_max_entries=0)
        log_path = RESULTS_DIR / "server-fusion.log"
        server = stack.enter_context(
            serve("fastapi", env, startup_timeout=args.startup_timeout, log_path=log_path)
        )
        client = stack.enter_context(
            httpx.Client(base_url=server.base_url, headers=_headers(), timeout=120.0)
        )
        record = find_collection(client, args.collection)
        if record is None:
            raise SystemExit(f"no collection {args.collection!r}: run bench/retrieval.py first")
        out["chunks"] = record["chunks"]
        conn = stack.enter_context(
            psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"))
        )
        collection_id = conn.execute(
            "SELECT id FROM rag_collections WHERE name = %s", (args.collection,)
        ).fetchone()
        if collection_id is None:
            raise SystemExit(f"no collection {args.collection!r} in the database")

        def lexemes(texts: Sequence[str]) -> list[list[str]]:
            rows = conn.execute(
                "SELECT ord, coalesce(array_agg(DISTINCT l.lexeme) FILTER"
                " (WHERE l.lexeme IS NOT NULL), '{}')"
                " FROM unnest(CAST(%s AS text[])) WITH ORDINALITY AS t(body, ord)"
                " LEFT JOIN LATERAL unnest(to_tsvector('english', t.body)) l ON TRUE"
                " GROUP BY ord ORDER BY ord",
                (list(texts),),
            ).fetchall()
            return [list(row[1]) for row in rows]

        def chunk_terms(chunk_ids: Sequence[str]) -> dict[str, Counter[str]]:
            rows = conn.execute(
                "SELECT chunk_id::text, lexeme, tf FROM rag_postings"
                " WHERE collection_id = %s AND chunk_id = ANY(CAST(%s AS uuid[]))",
                (collection_id[0], list(chunk_ids)),
            ).fetchall()
            counts: dict[str, Counter[str]] = defaultdict(Counter)
            for chunk_id, lexeme, tf in rows:
                counts[chunk_id][lexeme] = int(tf)
            return counts

        titled = [doc for doc in scifact.docs if doc.title]
        out["titles"] = dict(
            zip(
                (doc.doc_id for doc in titled),
                lexemes([d.title or "" for d in titled]),
                strict=True,
            )
        )
        out["documents"] = len(scifact.docs)
        progress(f"collecting candidates of {len(queries)} queries from {args.collection!r}")
        for index, (qid, text) in enumerate(sorted(queries.items(), key=lambda item: int(item[0]))):
            lexical = _search(client, args.collection, text, "lexical")
            dense = _search(client, args.collection, text, "dense")
            query_lexemes = lexemes([text])[0]
            entry: dict[str, Any] = {
                "text": text,
                "lexemes": query_lexemes,
                "lexical": lexical,
                "dense": dense,
                "rm3": {},
            }
            feedback_ids = [
                chunk_id for chunk_id, _, _ in lexical[: max(c for c, _ in RM3_SETTINGS)]
            ]
            counts = chunk_terms(feedback_ids)
            for chunks, terms in RM3_SETTINGS if args.rm3 else ():
                feedback = [(score, counts[cid]) for cid, _, score in lexical[:chunks]]
                expansion = rm3_terms(feedback, set(query_lexemes), terms)
                # A lexeme is searched as written: keep those the configuration maps to
                # themselves (most stems are fixed points of the stemmer).
                kept = [
                    lexeme
                    for lexeme, again in zip(expansion, lexemes(expansion), strict=True)
                    if again == [lexeme]
                ]
                expanded = f"{text} {' '.join(kept)}"
                entry["rm3"][f"{chunks}x{terms}"] = {
                    "terms": kept,
                    "lexical": _search(client, args.collection, expanded, "lexical"),
                }
            out["queries"][qid] = entry
            if (index + 1) % 50 == 0:
                progress(f"{index + 1}/{len(queries)} queries")
    return out


# -- fusion --------------------------------------------------------------------------------------


def _documents(scored: dict[str, float], docs_of: dict[str, str]) -> list[str]:
    """Document ids by their best item's score (ties by item id)."""
    order = sorted(scored, key=lambda item: (-scored[item], item))
    return list(dict.fromkeys(docs_of[item] for item in order))


def _items(ranking: Ranking, level: str, aggregate: str) -> list[tuple[str, float]]:
    """The ranking's items (chunks, or documents scored from their chunks), best first."""
    if level == "chunk":
        return [(chunk_id, score) for chunk_id, _, score in ranking]
    per_doc: dict[str, list[float]] = defaultdict(list)
    for _, doc_id, score in ranking:
        per_doc[doc_id].append(score)
    if aggregate == "max":
        scores = {doc: max(values) for doc, values in per_doc.items()}
    elif aggregate == "sum2":
        scores = {doc: sum(sorted(values, reverse=True)[:2]) for doc, values in per_doc.items()}
    elif aggregate == "max+0.5":
        scores = {
            doc: (lambda v: v[0] + 0.5 * (v[1] if len(v) > 1 else 0.0))(sorted(vals, reverse=True))
            for doc, vals in per_doc.items()
        }
    else:
        raise ValueError(aggregate)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _normalised(items: list[tuple[str, float]], how: str) -> tuple[dict[str, float], float]:
    """Each item's normalised score, and the value an item missing from the list gets."""
    values = [score for _, score in items]
    if not values:
        return {}, 0.0
    if how == "minmax":
        low, high = min(values), max(values)
        span = high - low
        return {i: (s - low) / span if span > 0 else 1.0 for i, s in items}, 0.0
    if how == "zscore":
        mean = statistics.fmean(values)
        std = statistics.pstdev(values) or 1.0
        return {i: (s - mean) / std for i, s in items}, (min(values) - mean) / std
    raise ValueError(how)


def fuse(
    sides: Sequence[tuple[Ranking, float]],
    *,
    method: str,
    k: float = 60.0,
    level: str = "chunk",
    aggregate: str = "max",
    depth: int = DEPTH,
) -> list[str]:
    """Documents in fused order. ``sides``: each ranking with its weight; ``method``: ``rrf``
    (weight / (k + rank)), ``minmax`` or ``zscore`` (weighted sum of normalised scores)."""
    docs_of: dict[str, str] = {}
    for ranking, _ in sides:
        for chunk_id, doc_id, _ in ranking[:depth]:
            docs_of[chunk_id] = doc_id
            docs_of[doc_id] = doc_id
    fused: dict[str, float] = defaultdict(float)
    lists = [(_items(ranking[:depth], level, aggregate), weight) for ranking, weight in sides]
    if method == "rrf":
        for items, weight in lists:
            for rank, (item, _) in enumerate(items, start=1):
                fused[item] += weight / (k + rank)
    else:
        normalised = [(_normalised(items, method), weight) for items, weight in lists]
        everything = {item for items, _ in lists for item, _ in items}
        for (scores, missing), weight in normalised:
            for item in everything:
                fused[item] += weight * scores.get(item, missing)
    return _documents(dict(fused), docs_of)


def title_ranking(query: Sequence[str], titles: dict[str, list[str]], documents: int) -> Ranking:
    """BM25 (k1 1.2, b 0.75) of the query's lexemes over the titles alone: one "chunk" per
    document (its id the document's)."""
    df: Counter[str] = Counter(lexeme for lexemes in titles.values() for lexeme in set(lexemes))
    avgdl = statistics.fmean(len(lexemes) for lexemes in titles.values())
    wanted = set(query)
    scores: list[tuple[str, str, float]] = []
    for doc_id, lexemes in titles.items():
        common = wanted.intersection(lexemes)
        if not common:
            continue
        length = len(lexemes)
        score = sum(
            math.log(1 + (documents - df[t] + 0.5) / (df[t] + 0.5))
            * 2.2
            / (1 + 1.2 * (1 - 0.75 + 0.75 * length / avgdl))
            for t in common
        )
        scores.append((f"title:{doc_id}", doc_id, score))
    scores.sort(key=lambda row: (-row[2], row[0]))
    return scores[:DEPTH]


# -- evaluation ----------------------------------------------------------------------------------


Variant = Callable[[dict[str, Any]], list[str]]


def _mean(values: Iterable[float]) -> float:
    return statistics.fmean(list(values))


def evaluate(data: dict[str, Any], qrels: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Every lever: its grid tuned on the odd ids, reported on odd, even and all."""
    queries: dict[str, dict[str, Any]] = data["queries"]
    odd = [q for q in queries if int(q) % 2 == 1]
    even = [q for q in queries if int(q) % 2 == 0]
    for qid, entry in queries.items():
        entry["id"] = qid
    titles: dict[str, list[str]] = data.get("titles", {})
    title_cache: dict[str, Ranking] = {}

    def titles_of(qid: str) -> Ranking:
        if qid not in title_cache:
            title_cache[qid] = title_ranking(queries[qid]["lexemes"], titles, data["documents"])
        return title_cache[qid]

    def score(variant: Variant, ids: Sequence[str]) -> tuple[float, dict[str, float]]:
        per = {q: ndcg_at(variant(queries[q]), qrels[q]) for q in ids}
        return _mean(per.values()), per

    rows: list[dict[str, Any]] = []

    def lever(name: str, grid: dict[str, Sequence[Any]], make: Callable[..., Variant]) -> None:
        best: tuple[float, dict[str, Any]] | None = None
        for values in itertools.product(*grid.values()):
            params = dict(zip(grid, values, strict=True))
            odd_score, _ = score(make(**params), odd)
            if best is None or odd_score > best[0] + 1e-12:
                best = (odd_score, params)
        assert best is not None
        variant = make(**best[1])
        _, per = score(variant, list(queries))
        rows.append(
            {
                "lever": name,
                "params": best[1],
                "odd": _mean(per[q] for q in odd),
                "even": _mean(per[q] for q in even),
                "all": _mean(per.values()),
                "per_query": per,
            }
        )
        progress(
            f"{name:<48} {json.dumps(best[1]):<40} odd {rows[-1]['odd']:.4f} "
            f"even {rows[-1]['even']:.4f} all {rows[-1]['all']:.4f}"
        )

    def rm3(entry: dict[str, Any], setting: str) -> Ranking:
        ranking: Ranking = entry["rm3"][setting]["lexical"]
        return ranking

    weights = [round(0.05 * i, 2) for i in range(21)]
    lever("lexical", {}, lambda: lambda e: fuse([(e["lexical"], 1)], method="rrf"))
    lever("dense", {}, lambda: lambda e: fuse([(e["dense"], 1)], method="rrf"))
    for depth in (50, 100):
        lever(
            f"hybrid RRF k=60 (today), {depth} a side",
            {},
            lambda depth=depth: lambda e: fuse(
                [(e["lexical"], 1), (e["dense"], 1)], method="rrf", depth=depth
            ),
        )
    lever(
        "RRF, k tuned",
        {"k": [1, 5, 10, 20, 40, 60, 100, 200]},
        lambda k: lambda e: fuse([(e["lexical"], 1), (e["dense"], 1)], method="rrf", k=k),
    )
    lever(
        "weighted RRF (k 60, lexical weight w)",
        {"w": weights[1:-1]},
        lambda w: lambda e: fuse([(e["lexical"], w), (e["dense"], 1 - w)], method="rrf"),
    )
    for method in ("minmax", "zscore"):
        lever(
            f"{method}, w 0.5 (untuned)",
            {},
            lambda method=method: lambda e: fuse(
                [(e["lexical"], 0.5), (e["dense"], 0.5)], method=method
            ),
        )
        lever(
            f"{method}, lexical weight w tuned",
            {"w": weights},
            lambda w, method=method: lambda e: fuse(
                [(e["lexical"], w), (e["dense"], 1 - w)], method=method
            ),
        )
        lever(
            f"{method}, w tuned, 50 a side",
            {"w": weights},
            lambda w, method=method: lambda e: fuse(
                [(e["lexical"], w), (e["dense"], 1 - w)], method=method, depth=50
            ),
        )
    for aggregate in ("max", "sum2", "max+0.5"):
        lever(
            f"document level ({aggregate}), minmax, w tuned",
            {"w": weights},
            lambda w, aggregate=aggregate: lambda e: fuse(
                [(e["lexical"], w), (e["dense"], 1 - w)],
                method="minmax",
                level="document",
                aggregate=aggregate,
            ),
        )
        lever(
            f"document level ({aggregate}), RRF k 60",
            {},
            lambda aggregate=aggregate: lambda e: fuse(
                [(e["lexical"], 1), (e["dense"], 1)],
                method="rrf",
                level="document",
                aggregate=aggregate,
            ),
        )
    if titles:
        lever(
            "title BM25 as a third list, minmax, weights tuned",
            {"w": weights[2:-2], "t": [0.0, 0.05, 0.1, 0.15, 0.2, 0.3]},
            lambda w, t: lambda e: fuse(
                [
                    (e["lexical"], w * (1 - t)),
                    (e["dense"], 1 - w),
                    (titles_of(e["id"]), w * t),
                ],
                method="minmax",
                level="document",
            ),
        )
    settings = sorted(next(iter(queries.values()))["rm3"])
    if not settings:
        return rows
    lever(
        "lexical + RM3",
        {"s": settings},
        lambda s: lambda e: fuse([(rm3(e, s), 1)], method="rrf"),
    )
    lever(
        "RM3 lexical side, minmax, w tuned",
        {"s": settings, "w": weights},
        lambda s, w: lambda e: fuse([(rm3(e, s), w), (e["dense"], 1 - w)], method="minmax"),
    )
    lever(
        "RM3 lexical side, RRF k 60",
        {"s": settings},
        lambda s: lambda e: fuse([(rm3(e, s), 1), (e["dense"], 1)], method="rrf"),
    )
    return rows


def render(rows: Sequence[dict[str, Any]]) -> str:
    """The table of the levers."""
    lines = [
        "| lever | chosen on odd ids | nDCG@10 odd | nDCG@10 even | nDCG@10 all |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        params = ", ".join(f"{k} {v}" for k, v in row["params"].items()) or "-"
        lines.append(
            f"| {row['lever']} | {params} | {row['odd']:.4f} | {row['even']:.4f} "
            f"| {row['all']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--candidates", type=Path, required=True, help="the candidates' JSON")
    parser.add_argument("--collect", action="store_true", help="collect them first (API)")
    parser.add_argument("--collection", default="scifact")
    parser.add_argument(
        "--no-rm3",
        dest="rm3",
        action="store_false",
        help="collect no RM3-expanded searches (the RM3 levers are then not evaluated)",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the SciFact directory")
    parser.add_argument("--startup-timeout", type=float, default=90.0)
    parser.add_argument("--json", type=Path, help="write the levers' figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.collect:
        data = collect(args)
        args.candidates.parent.mkdir(parents=True, exist_ok=True)
        args.candidates.write_text(json.dumps(data))
        progress(f"candidates written to {args.candidates}")
    data = json.loads(args.candidates.read_text())
    qrels = load_scifact(args.data).qrels
    rows = evaluate(data, qrels)
    print(render(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
