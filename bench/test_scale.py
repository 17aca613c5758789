"""The scale benchmark (bench/scale.py) at 500 chunks: its loader writes what the core writes (its
self-test), and a measurement through the core yields a full record on both vector stores, so the
benchmark does not rot silently.

Not in ``tests/`` (the default suite): it takes ~35 s of CPU (two databases, the model twice).
Run it with ``.hatch/test/bin/python -m pytest -q bench/test_scale.py`` after changing the core's
RAG tables or search.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import scale


@pytest.mark.slow
def test_scale_benchmark_loads_and_measures_500_chunks(
    postgres_server_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "scale.json"
    status = scale.main(
        [
            "--sizes",
            "500",
            "--stores",
            "pgvector,qdrant",
            "--queries",
            "4",
            "--warmup",
            "1",
            "--seed-vectors",
            "16",
            "--settle",
            "0",
            "--database-url",
            postgres_server_url,
            "--data-dir",
            str(tmp_path),
            "--json",
            str(out),
        ]
    )
    assert status == 0
    records = json.loads(out.read_text())["records"]
    assert [(r["chunks"], r["store"]) for r in records] == [(500, "pgvector"), (500, "qdrant")]
    assert records[0]["self_test"].startswith("passed")
    for record in records:
        assert record["queries_measured"] == 4 and not record["truncated"]
        for key in ("lexical_p50_ms", "lexical_p95_ms", "dense_p50_ms", "hybrid_p50_ms"):
            assert record[key] > 0
        assert record["hybrid_p95_ms"] >= record["hybrid_p50_ms"]
        # 500 chunks of ~100 words: ~70 distinct lexemes each.
        assert 20_000 < record["postings"] < 60_000
        assert record["db_bytes"] > 0 and record["load_chunks_per_s"] > 0
        assert 0.0 <= record["dense_recall_at_10"] <= 1.0
    # Qdrant's local mode searches exactly: its dense results are the exact top 10.
    assert records[1]["dense_recall_at_10"] == 1.0
    assert records[1]["qdrant_bytes"] > 0
    # Nothing is left behind without --keep.
    assert not (tmp_path / "scale-qdrant" / "500").exists()
    assert not scale.database_exists(postgres_server_url, "synthstack_bench_scale_pgvector_500")
