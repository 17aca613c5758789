"""Retrieval at scale: lexical, dense and hybrid search latency, dense recall@10, size on disk and
loading rate, at 10k to 1M chunks, on pgvector and on Qdrant.

**Text.** A word-level bigram model fitted to the BEIR SciFact corpus (titles and abstracts, the
retrieval benchmark's data) generates the chunks: the first word of a chunk is drawn from the
corpus's unigram frequencies, each next one from the bigram successors of the word before (or, one
time in five and wherever a word has no successor, from the unigram frequencies again). A chunk has
80-120 words; ten chunks make a document. Queries have 2-6 words, drawn the same way but keeping
only words PostgreSQL's ``english`` configuration turns into a lexeme (the first one, a content word
drawn by frequency), so a query is a short run of related content words as a user types it.
Everything is seeded (``--seed``): the first N chunks are the same at every size.

**Loading** skips the model, as the issue allows: a chunk's vector is a perturbation (cosine ~0.8)
of one of 512 *seed* vectors, which are the real model's embeddings of 512 generated chunks, so the
vectors are clustered like real text embeddings and a real query embedding has real neighbours.
Rows are written straight into the core's tables through COPY (psycopg), in batches: documents,
chunks, and the BM25 postings computed *in PostgreSQL by the core's own lexeme function*
(``to_tsvector`` with :data:`synthstack_core.stores.rag.base.TS_CONFIG`, the statement the
repository runs when it indexes), ``lexeme_count`` the sum of a chunk's term frequencies as the core
sets it. The collection itself is created through the core (``stack.rag.create_collection``). With
pgvector, the partial HNSW index of the collection's size is dropped before the load and created
again, from its own definition in ``pg_indexes``, after it (faster than growing it row by row);
with Qdrant, the vectors go through the core's own :class:`~synthstack_core.stores.qdrant.QdrantStore`
(``upsert``, its point layout and payload). The loading rate reported is chunks per second of all
of that (the model's rate is not in it).

**Self-test** (on the first size run): a document indexed through the core (``stack.rag.index``,
real model) gets the same postings and ``lexeme_count`` from the loader's SQL as the core wrote, and
searches through the core find loaded chunks (lexical: a chunk's rarest words; dense: its vector).
A failure stops the benchmark.

**Measuring** goes through the core's search, in process (``stack.rag.search``, the operation the
HTTP API calls, without HTTP): for each query the three modes take turns, ``limit`` 10 (hybrid then
fuses 50 candidates a side), after a warm-up of 10 other queries; the embeddings cache is off, so
dense and hybrid include embedding the query, as a new question does. Dense recall@10 compares the
dense results with the exact top 10 (numpy, cosine over all the collection's vectors, the query
embedded by the same model). Size on disk: ``pg_database_size`` of the size's own database (one per
size and store), and the Qdrant folder in local mode. ``--max-query-seconds`` bounds the time
spent on queries per size and store: where lexical search is slow (linear in the collection today),
fewer queries are measured and the table and JSON say how many (``queries_measured``).

Each size and store gets its own scratch database (``synthstack_bench_scale_<store>_<size>``) on
the embedded PostgreSQL in ``bench/.data`` (or the server of ``--database-url``) and, for Qdrant local
mode, its own folder ``bench/.data/scale-qdrant/<size>``; both are removed after measuring unless
``--keep`` (a later run with ``--keep`` and the same seed reuses them). Before a build the free disk
is checked against an estimate (``--min-free-gb`` must stay free).

Run from the repository root::

    hatch run bench-scale --sizes 10000,100000 --stores pgvector,qdrant \\
        --json bench/results/scale.json --plot docs/scale-baseline.png
    hatch run bench-scale --sizes 2000 --queries 20          # smoke run, ~1 min
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psutil  # type: ignore[import-untyped]  # no stubs installed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import (
    DATA_DIR,
    ROOT,
    ForeignLoad,
    database_processes,
    machine,
    percentiles_ms,
    progress,
    start_database,
    wait_for_quiet,
)

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "scifact"
MODES = ("lexical", "dense", "hybrid")
STORES = ("pgvector", "qdrant")
TENANT = "default"  # authentication is off (development, no keys): everything is this tenant's
CHUNKS_PER_DOCUMENT = 10
WORDS = (80, 120)
QUERY_WORDS = (2, 6)
BACKOFF = 0.2
SEED_VECTORS = 512
BATCH = 20_000
WARMUP = 10
K = 10
#: Disk per chunk, estimated high (measured at 100k: see docs/benchmarks.md): rows, postings
#: (~70 a chunk) and their indexes, the HNSW graph; Qdrant local mode's folder on top.
PG_BYTES_PER_CHUNK = 16_000
QDRANT_BYTES_PER_CHUNK = 4_000
Vectors = npt.NDArray[np.float32]


# -- text --------------------------------------------------------------------------------------


class WordModel:
    """Unigram and bigram frequencies of a corpus's words (whitespace-separated, as written)."""

    def __init__(self, texts: Sequence[str]) -> None:
        tokens = [text.split() for text in texts]
        counts: dict[str, int] = {}
        for words in tokens:
            for word in words:
                counts[word] = counts.get(word, 0) + 1
        self.words = np.array(sorted(counts, key=lambda w: (-counts[w], w)), dtype=object)
        index = {word: number for number, word in enumerate(self.words)}
        frequency = np.array([counts[w] for w in self.words], dtype=np.float64)
        self.unigram_cum = np.cumsum(frequency / frequency.sum())
        self.unigram_cum[-1] = 1.0
        size = len(self.words)
        pairs: list[npt.NDArray[np.int64]] = []
        for words in tokens:
            ids = np.fromiter((index[w] for w in words), dtype=np.int64, count=len(words))
            if len(ids) > 1:
                pairs.append(ids[:-1] * size + ids[1:])
        codes, pair_counts = np.unique(np.concatenate(pairs), return_counts=True)
        self.pair_first = codes // size
        self.pair_next = codes % size
        # Within each first word's run, the cumulative share of its successors, in (0, 1]; plus
        # the first word's number, so that one searchsorted finds the successor of any word.
        cumulative = np.cumsum(pair_counts).astype(np.float64)
        run_start = np.searchsorted(self.pair_first, self.pair_first, side="left")
        before = np.where(run_start > 0, cumulative[run_start - 1], 0.0)
        totals = np.zeros(size, dtype=np.float64)
        np.add.at(totals, self.pair_first, pair_counts)
        share = (cumulative - before) / totals[self.pair_first]
        self.pair_key = self.pair_first + np.minimum(share, 1.0)

    def _unigram(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
        return np.searchsorted(self.unigram_cum, rng.random(n), side="right").clip(
            0, len(self.words) - 1
        )

    def _next(self, rng: np.random.Generator, current: npt.NDArray[np.int64]) -> Any:
        found = np.searchsorted(self.pair_key, current + rng.random(len(current)), side="right")
        found = found.clip(0, len(self.pair_key) - 1)
        has = self.pair_first[found] == current
        backoff = rng.random(len(current)) < BACKOFF
        fresh = self._unigram(rng, len(current))
        return np.where(has & ~backoff, self.pair_next[found], fresh)

    def chunks(self, rng: np.random.Generator, n: int) -> list[str]:
        """``n`` chunks of 80-120 words."""
        lengths = rng.integers(WORDS[0], WORDS[1] + 1, n)
        grid = np.empty((n, WORDS[1]), dtype=np.int64)
        grid[:, 0] = self._unigram(rng, n)
        for step in range(1, WORDS[1]):
            grid[:, step] = self._next(rng, grid[:, step - 1])
        words = self.words
        return [" ".join(words[row[:length]]) for row, length in zip(grid, lengths, strict=True)]

    def query(self, rng: np.random.Generator, content: npt.NDArray[np.bool_]) -> str:
        """2-6 content words (``content``: the words that have a lexeme), drawn as a chunk's."""
        wanted = int(rng.integers(QUERY_WORDS[0], QUERY_WORDS[1] + 1))
        current = self._unigram(rng, 1)
        while not content[current[0]]:
            current = self._unigram(rng, 1)
        picked = [int(current[0])]
        for _ in range(60):
            if len(picked) == wanted:
                break
            current = self._next(rng, current)
            word = int(current[0])
            if content[word] and word not in picked:
                picked.append(word)
        return " ".join(self.words[picked])


def corpus_texts(corpus: Path) -> list[str]:
    texts = []
    with (corpus / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            texts.append(f"{doc.get('title', '')} {doc['text']}".strip())
    return texts


def chunk_batches(
    model: WordModel, seed: int, total: int, batch: int = BATCH
) -> Iterator[tuple[int, list[str]]]:
    """(first chunk number, texts) in batches; each batch has its own seeded generator, so the
    first N chunks are the same whatever the total."""
    for number, first in enumerate(range(0, total, batch)):
        rng = np.random.default_rng([seed, 1, number])
        yield first, model.chunks(rng, min(batch, total - first))


def chunk_id_of(collection_id: uuid.UUID, number: int) -> uuid.UUID:
    """Chunk ``number``'s id: distinct per collection, as Qdrant point ids must be."""
    return uuid.uuid5(collection_id, f"chunk {number}")


def document_id_of(collection_id: uuid.UUID, number: int) -> uuid.UUID:
    """The id of chunk ``number``'s document."""
    return uuid.uuid5(collection_id, f"document {number // CHUNKS_PER_DOCUMENT}")


def literal(vector: Vectors) -> str:
    """pgvector's text input (``repr`` of each float: exact, and faster than formatting)."""
    return "[" + ",".join(map(str, vector.tolist())) + "]"


def unit(rows: npt.NDArray[Any]) -> Vectors:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def chunk_vectors(seeds: Vectors, seed: int, first: int, n: int) -> Vectors:
    """The vectors of chunks ``first`` .. ``first + n``: seed vectors plus noise (cosine ~0.8)."""
    rng = np.random.default_rng([seed, 2, first])
    picks = rng.integers(0, len(seeds), n)
    noise = rng.standard_normal((n, seeds.shape[1])).astype(np.float32)
    return unit(seeds[picks] + noise * (0.75 / np.sqrt(seeds.shape[1])))


# -- the database ------------------------------------------------------------------------------


def plain_url(url: str) -> str:
    """A URL psycopg takes (the core's URLs may name a SQLAlchemy driver)."""
    from synthstack_core.stores.database import sqlalchemy_url

    return str(
        sqlalchemy_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def database_url(admin_url: str, name: str) -> str:
    from synthstack_core.stores.database import sqlalchemy_url

    return str(
        sqlalchemy_url(admin_url)
        .set(drivername="postgresql", database=name)
        .render_as_string(hide_password=False)
    )


def database_exists(admin_url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(plain_url(admin_url), autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is not None
        )


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(plain_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database(admin_url: str, name: str) -> str:
    import psycopg

    from synthstack_core.stores.database import migrate

    drop_database(admin_url, name)
    with psycopg.connect(plain_url(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = database_url(admin_url, name)
    migrate(url)
    return url


def _lexemes_sql(content: str) -> str:
    """The lexemes of ``content`` (an SQL expression), by the core's configuration."""
    from synthstack_core.stores.rag.base import TS_CONFIG

    return f"unnest(to_tsvector('{TS_CONFIG}', {content}))"


#: What the repository writes for a chunk (stores/rag/documents.py, ``replace_document``): a posting
#: per lexeme with its number of positions as tf, and ``lexeme_count`` the sum of the tfs.
TF_SQL = "coalesce(array_length(t.positions, 1), 1)"


def loader_postings(conn: Any, texts: Sequence[str]) -> list[tuple[dict[str, int], int]]:
    """The postings and lexeme count the loader writes for each text (the self-test's side)."""
    rows = conn.execute(
        f"SELECT s.n, t.lexeme, {TF_SQL} FROM unnest(%s::text[]) WITH ORDINALITY s(content, n),"
        f" {_lexemes_sql('s.content')} t",
        (list(texts),),
    ).fetchall()
    found: list[dict[str, int]] = [{} for _ in texts]
    for number, lexeme, tf in rows:
        found[number - 1][lexeme] = tf
    return [(postings, sum(postings.values())) for postings in found]


@dataclass
class Loaded:
    seconds: float = 0.0
    rows_seconds: float = 0.0
    index_seconds: float = 0.0
    vectors_seconds: float = 0.0
    postings: int = 0


def load_rows(
    url: str,
    collection_id: uuid.UUID,
    dimensions: int,
    in_rows: bool,
    model: WordModel,
    seeds: Vectors,
    seed: int,
    total: int,
    ids: npt.NDArray[Any],
    vectors: Vectors,
) -> tuple[float, float]:
    """Documents, chunks (with their vectors when ``in_rows``) and postings; (rows seconds, index
    seconds). ``ids`` and ``vectors`` are filled in chunk order."""
    import psycopg

    from synthstack_core.stores.rag.lexical import impact_sql

    index_seconds = 0.0
    started = time.perf_counter()
    with psycopg.connect(plain_url(url)) as conn:
        # A crash loses the run anyway: no flush per batch (the rows are the same).
        conn.execute("SET synchronous_commit = off")
        index_def: str | None = None
        if in_rows:
            row = conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'rag_chunks'"
                " AND indexdef LIKE %s",
                (f"%USING hnsw%WHERE (dimensions = {int(dimensions)})%",),
            ).fetchone()
            if row is not None:
                conn.execute(f'DROP INDEX "{row[0]}"')
                index_def = row[1]
        # The postings' secondary indexes are built after the load too (the primary key stays).
        postings_indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'rag_postings'"
            " AND indexname IN ('ix_rag_postings_chunk', 'ix_rag_postings_impact')"
        ).fetchall()
        for name, _ in postings_indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute(
            "CREATE TEMP TABLE stage (id uuid, document_id uuid, position integer, content text,"
            " char_start integer, char_end integer, token_count integer, embedding text)"
        )
        for first, texts in chunk_batches(model, seed, total):
            batch_vectors = chunk_vectors(seeds, seed, first, len(texts))
            vectors[first : first + len(texts)] = batch_vectors
            with conn.cursor().copy(
                "COPY stage (id, document_id, position, content, char_start, char_end,"
                " token_count, embedding) FROM STDIN"
            ) as copy:
                offset = 0
                for number, text in enumerate(texts, start=first):
                    position = number % CHUNKS_PER_DOCUMENT
                    if position == 0:
                        offset = 0
                    document = document_id_of(collection_id, number)
                    chunk_id = ids[number] = chunk_id_of(collection_id, number)
                    copy.write_row(
                        (chunk_id, document, position, text, offset, offset + len(text),
                         len(text.split()),
                         literal(batch_vectors[number - first]) if in_rows else None)
                    )  # fmt: skip
                    offset += len(text) + 2
            doc_rows = conn.execute(
                "SELECT document_id, count(*), max(char_end),"
                " string_agg(content, E'\\n\\n' ORDER BY position)"
                " FROM stage GROUP BY document_id"
            ).fetchall()
            with conn.cursor().copy(
                "COPY rag_documents (id, collection_id, external_id, source, source_type,"
                " content_sha256, characters, chunk_count, chunk_size, chunk_overlap)"
                " FROM STDIN"
            ) as copy:
                for document_id, count, characters, content in doc_rows:
                    digest = hashlib.sha256(f"text\n{content}".encode()).hexdigest()
                    copy.write_row(
                        (document_id, collection_id, document_id.hex, f"scale/{document_id.hex}",
                         "text", digest, characters, count, 256, 0)
                    )  # fmt: skip
            conn.execute(
                "INSERT INTO rag_chunks (id, document_id, collection_id, position, content,"
                " char_start, char_end, page, token_count, lexeme_count, dimensions, embedding)"
                " SELECT s.id, s.document_id, %s, s.position, s.content, s.char_start, s.char_end,"
                f" NULL, s.token_count, (SELECT coalesce(sum({TF_SQL}), 0)"
                f" FROM {_lexemes_sql('s.content')} t), %s, CAST(s.embedding AS vector) FROM stage s",
                (collection_id, dimensions),
            )
            conn.execute(
                "INSERT INTO rag_postings (collection_id, lexeme, chunk_id, tf, chunk_length,"
                f" impact) SELECT %s, t.lexeme, k.id, {TF_SQL}, k.lexeme_count,"
                f" {impact_sql(TF_SQL, 'k.lexeme_count')}"
                " FROM stage s JOIN rag_chunks k ON k.id = s.id,"
                f" {_lexemes_sql('s.content')} t",
                (collection_id,),
            )
            conn.execute("TRUNCATE stage")
            conn.commit()
            progress(f"  {first + len(texts):,} / {total:,} chunks written")
        rows_seconds = time.perf_counter() - started
        if index_def is not None:
            progress("  building the HNSW index")
            started = time.perf_counter()
            conn.execute("SET maintenance_work_mem = '512MB'")
            conn.execute(index_def)
            conn.commit()
            index_seconds = time.perf_counter() - started
        started = time.perf_counter()
        progress("  building the postings' indexes and the BM25 statistics")
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in postings_indexes:
            conn.execute(definition)
        # The statistics the core keeps by deltas (stores/rag/lexical.py), counted once here: the
        # collection was created empty through the core.
        conn.execute(
            "UPDATE rag_collection_stats SET"
            " chunk_count = (SELECT count(*) FROM rag_chunks WHERE collection_id = %(c)s),"
            " total_length = (SELECT coalesce(sum(lexeme_count), 0) FROM rag_chunks"
            " WHERE collection_id = %(c)s) WHERE collection_id = %(c)s",
            {"c": collection_id},
        )
        conn.execute(
            "INSERT INTO rag_term_stats (collection_id, lexeme, df)"
            " SELECT collection_id, lexeme, count(*) FROM rag_postings"
            " WHERE collection_id = %(c)s GROUP BY collection_id, lexeme",
            {"c": collection_id},
        )
        conn.commit()
        index_seconds += time.perf_counter() - started
        # As autovacuum does after a bulk insert (visibility map: index-only scans of postings).
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE) rag_chunks")
        conn.execute("VACUUM (ANALYZE) rag_postings")
        conn.execute("VACUUM (ANALYZE) rag_term_stats")
    return rows_seconds, index_seconds


def database_facts(url: str, collection_id: uuid.UUID) -> dict[str, int]:
    import psycopg

    with psycopg.connect(plain_url(url)) as conn:
        row = conn.execute(
            "SELECT pg_database_size(current_database()),"
            " (SELECT count(*) FROM rag_chunks WHERE collection_id = %s),"
            " (SELECT count(*) FROM rag_postings WHERE collection_id = %s)",
            (collection_id, collection_id),
        ).fetchone()
    assert row is not None
    return {"db_bytes": int(row[0]), "chunks": int(row[1]), "postings": int(row[2])}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


# -- one size and store ------------------------------------------------------------------------


@dataclass
class Record:
    chunks: int
    store: str
    queries: int
    queries_measured: int = 0
    truncated: bool = False
    lexical_p50_ms: float | None = None
    lexical_p95_ms: float | None = None
    dense_p50_ms: float | None = None
    dense_p95_ms: float | None = None
    hybrid_p50_ms: float | None = None
    hybrid_p95_ms: float | None = None
    dense_recall_at_10: float | None = None
    db_bytes: int = 0
    qdrant_bytes: int | None = None
    postings: int = 0
    load_chunks_per_s: float | None = None
    load_seconds: dict[str, float] = field(default_factory=dict)
    reused: bool = False
    foreign_load_cores: float | None = None
    load_average: list[float] = field(default_factory=list)
    self_test: str | None = None


def _stack_env(args: argparse.Namespace, url: str, store: str, qdrant_dir: Path) -> dict[str, str]:
    env = {
        "DATABASE_URL": url,
        "SYNTHSTACK_VECTOR_STORE": store,
        "SYNTHSTACK_CACHE_MAX_ENTRIES": "0",
        "SYNTHSTACK_ENV": "development",
        "SYNTHSTACK_API_KEYS": "",
        "SYNTHSTACK_DATA_DIR": str(args.data_dir),
    }
    if store == "qdrant":
        if args.qdrant_url:
            env["QDRANT_URL"] = args.qdrant_url
        else:
            env["QDRANT_PATH"] = str(qdrant_dir)
    return env


def _build_stack(env: dict[str, str]) -> Any:
    from synthstack_core.service import SynthStack
    from synthstack_core.settings import Settings

    for name in ("QDRANT_URL", "QDRANT_PATH", "SYNTHSTACK_QDRANT_PATH"):
        os.environ.pop(name, None)
    os.environ.update(env)
    return SynthStack(Settings())


async def _seed_vectors(
    stack: Any, model: WordModel, seed: int, count: int, cache: Path
) -> Vectors:
    """The model's embeddings of ``count`` generated chunks (kept in ``cache``: 512 take a
    minute)."""
    if cache.exists():
        return np.asarray(np.load(cache), dtype=np.float32)
    texts = model.chunks(np.random.default_rng([seed, 4]), count)
    found: list[Vectors] = []
    for first in range(0, len(texts), 64):
        embedded = await stack.embeddings.embed(texts[first : first + 64], tenant=TENANT)
        found.append(np.asarray(embedded.vectors, dtype=np.float32))
    seeds = unit(np.concatenate(found))
    np.save(cache, seeds)
    return seeds


async def _self_test(
    stack: Any, url: str, name: str, model: WordModel, ids: Any, vectors: Vectors, seed: int
) -> str:
    """The loader writes what the core writes, and the core's searches find loaded chunks."""
    import psycopg

    from synthstack_core.schemas.rag import IndexRequest, SearchRequest

    text = "\n\n".join(model.chunks(np.random.default_rng([seed, 5]), 6))
    probe = f"{name}-selftest"
    await stack.rag.index(
        TENANT,
        IndexRequest(
            collection=probe,
            content=text,
            source="bench/scale",
            document_id="probe",
            chunk_size=128,
        ),
    )
    with psycopg.connect(plain_url(url)) as conn:
        core_rows = conn.execute(
            "SELECT k.id, k.content, k.lexeme_count FROM rag_chunks k JOIN rag_collections c"
            " ON c.id = k.collection_id WHERE c.name = %s ORDER BY k.position",
            (probe,),
        ).fetchall()
        core_postings: dict[uuid.UUID, dict[str, int]] = {}
        for chunk_id, lexeme, tf in conn.execute(
            "SELECT chunk_id, lexeme, tf FROM rag_postings WHERE chunk_id = ANY(%s)",
            ([row[0] for row in core_rows],),
        ):
            core_postings.setdefault(chunk_id, {})[lexeme] = tf
        mine = loader_postings(conn, [row[1] for row in core_rows])
    await stack.rag.delete_collection(TENANT, probe)
    if len(core_rows) < 2:
        raise SystemExit(f"self-test: the core wrote {len(core_rows)} chunk(s), expected several")
    for (chunk_id, _, lexeme_count), (postings, count) in zip(core_rows, mine, strict=True):
        if core_postings.get(chunk_id, {}) != postings or lexeme_count != count:
            raise SystemExit("self-test: the loader's postings differ from the core's")
    # A loaded chunk found by lexical search on its rarest words, and by dense search on its vector.
    record = await stack.rag.repository.get_collection(TENANT, name)
    target = len(ids) // 2
    with psycopg.connect(plain_url(url)) as conn:
        row = conn.execute(
            "SELECT content FROM rag_chunks WHERE id = %s", (ids[target],)
        ).fetchone()
    assert row is not None
    query = " ".join(str(row[0]).split()[:40])
    found = await stack.rag.search(
        TENANT, SearchRequest(query=query, collection=name, mode="lexical", limit=K)
    )
    if str(ids[target]) not in [result.chunk_id for result in found.results]:
        raise SystemExit("self-test: lexical search on a loaded chunk's words missed it")
    dense = await stack.rag.repository.search_dense(record, vectors[target], limit=K, filters={})
    if not dense or dense[0].chunk_id != ids[target]:
        raise SystemExit("self-test: dense search on a loaded vector did not find its chunk first")
    return (
        f"passed: {len(core_rows)} chunks indexed by the core, the same postings from the loader;"
        " lexical and dense searches found loaded chunks"
    )


def _queries(model: WordModel, content: npt.NDArray[np.bool_], seed: int, n: int) -> list[str]:
    rng = np.random.default_rng([seed, 6])
    return [model.query(rng, content) for _ in range(n)]


async def run_one(
    args: argparse.Namespace,
    admin_url: str,
    model: WordModel,
    content: npt.NDArray[np.bool_],
    size: int,
    store: str,
    self_test: bool,
) -> Record:
    from synthstack_core.schemas.rag import CreateCollectionRequest, SearchRequest
    from synthstack_core.stores.vectors import VectorPoint

    record = Record(chunks=size, store=store, queries=args.queries)
    db_name = f"synthstack_bench_scale_{store}_{size}"
    qdrant_dir = args.data_dir / "scale-qdrant" / str(size)
    name = f"scale-{size}"
    description = f"bench/scale.py seed={args.seed} chunks={size}"
    reuse = args.keep and database_exists(admin_url, db_name)
    url = database_url(admin_url, db_name)
    if not reuse:
        needed = size * (PG_BYTES_PER_CHUNK + (QDRANT_BYTES_PER_CHUNK if store == "qdrant" else 0))
        free = shutil.disk_usage(args.data_dir).free
        if free - needed < args.min_free_gb * 2**30:
            raise SystemExit(
                f"{size:,} chunks on {store} need ~{needed / 2**30:.1f} GB; "
                f"{free / 2**30:.1f} GB free, and --min-free-gb {args.min_free_gb} must stay free"
            )
        url = create_database(admin_url, db_name)
        if store == "qdrant" and not args.qdrant_url:
            shutil.rmtree(qdrant_dir, ignore_errors=True)
    stack = _build_stack(_stack_env(args, url, store, qdrant_dir))
    ids = np.empty(size, dtype=object)
    vectors = np.empty((size, 0), dtype=np.float32)
    async with stack:
        model_name = stack.settings.embedding_model.replace("/", "_")
        cache = args.data_dir / f"scale-seeds-{model_name}-{args.seed}-{args.seed_vectors}.npy"
        seeds = await _seed_vectors(stack, model, args.seed, args.seed_vectors, cache)
        vectors = np.empty((size, seeds.shape[1]), dtype=np.float32)
        existing = await stack.rag.repository.get_collection(TENANT, name, with_counts=True)
        if reuse and (
            existing is None or existing.description != description or existing.chunks != size
        ):
            raise SystemExit(
                f"--keep: {db_name} holds another collection; drop it or run without --keep"
            )
        if existing is not None:
            record.reused = True
            progress(f"{size:,} chunks on {store}: reusing {db_name}")
            for first, texts in chunk_batches(model, args.seed, size):
                vectors[first : first + len(texts)] = chunk_vectors(
                    seeds, args.seed, first, len(texts)
                )
                for number in range(first, first + len(texts)):
                    ids[number] = chunk_id_of(existing.id, number)
            collection = existing
        else:
            progress(f"{size:,} chunks on {store}: loading into {db_name}")
            await stack.rag.create_collection(
                TENANT, CreateCollectionRequest(name=name, description=description)
            )
            collection = await stack.rag.repository.get_collection(TENANT, name)
            vector_store = stack.rag.repository.vector_store(collection)
            started = time.perf_counter()
            rows_s, index_s = await asyncio.to_thread(
                load_rows, url, collection.id, collection.dimensions, vector_store.in_chunk_rows,
                model, seeds, args.seed, size, ids, vectors,
            )  # fmt: skip
            vectors_s = 0.0
            if not vector_store.in_chunk_rows:
                progress(
                    f"  writing {size:,} vectors through the core's {type(vector_store).__name__}"
                )
                begun = time.perf_counter()
                step = 4096
                for first in range(0, size, step):
                    points = [
                        VectorPoint(
                            ids[number], document_id_of(collection.id, number), vectors[number], {}
                        )
                        for number in range(first, min(size, first + step))
                    ]
                    await vector_store.upsert(collection.vector_scope, points)
                vectors_s = time.perf_counter() - begun
            total_s = time.perf_counter() - started
            record.load_seconds = {
                "rows_and_postings": round(rows_s, 1),
                "hnsw_index": round(index_s, 1),
                "vector_store": round(vectors_s, 1),
                "total": round(total_s, 1),
            }
            record.load_chunks_per_s = round(size / total_s, 1)
            progress(f"  loaded in {total_s:.0f}s ({size / total_s:,.0f} chunks/s)")
        if self_test:
            record.self_test = await _self_test(stack, url, name, model, ids, vectors, args.seed)
            progress(f"  self-test {record.self_test}")
        queries = _queries(model, content, args.seed, args.warmup + args.queries)
        warmup, measured = queries[: args.warmup], queries[args.warmup :]

        async def search(query: str, mode: str) -> tuple[float, list[str]]:
            begun = time.perf_counter()
            found = await stack.rag.search(
                TENANT, SearchRequest(query=query, collection=name, mode=mode, limit=K)
            )
            return time.perf_counter() - begun, [result.chunk_id for result in found.results]

        for query in warmup:
            for mode in MODES:
                await search(query, mode)
        if args.settle > 0:
            wait_for_quiet(args.settle)
        seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
        recalls: list[float] = []
        own = lambda: [psutil.Process(), *database_processes()]  # noqa: E731
        budget_start = time.monotonic()
        with ForeignLoad(own) as foreign:
            for number, query in enumerate(measured):
                dense_ids: list[str] = []
                for mode in MODES:
                    took, found_ids = await search(query, mode)
                    seconds[mode].append(took)
                    if mode == "dense":
                        dense_ids = found_ids
                embedded = await stack.embeddings.embed([query], tenant=TENANT)
                scores = vectors @ np.asarray(embedded.vectors[0], dtype=np.float32)
                top = np.argpartition(-scores, K)[:K]
                exact = {str(ids[i]) for i in top}
                recalls.append(len(exact & set(dense_ids)) / K)
                if time.monotonic() - budget_start > args.max_query_seconds:
                    record.truncated = number + 1 < len(measured)
                    break
                if (number + 1) % 50 == 0:
                    progress(f"  {number + 1} / {len(measured)} queries")
        record.foreign_load_cores = None if foreign.cores is None else round(foreign.cores, 2)
        record.load_average = [round(x, 2) for x in os.getloadavg()]
        record.queries_measured = len(recalls)
        for mode in MODES:
            p50, p95 = percentiles_ms(seconds[mode])
            setattr(record, f"{mode}_p50_ms", None if p50 is None else round(p50, 1))
            setattr(record, f"{mode}_p95_ms", None if p95 is None else round(p95, 1))
        record.dense_recall_at_10 = round(statistics.fmean(recalls), 4) if recalls else None
        facts = database_facts(url, collection.id)
        record.db_bytes, record.postings = facts["db_bytes"], facts["postings"]
        if facts["chunks"] != size:
            raise SystemExit(f"{db_name}: {facts['chunks']} chunks, expected {size}")
    if store == "qdrant" and not args.qdrant_url:
        record.qdrant_bytes = folder_bytes(qdrant_dir)
    if not args.keep:
        if store == "qdrant" and args.qdrant_url:
            cleanup = _build_stack(_stack_env(args, url, store, qdrant_dir))
            async with cleanup:
                await cleanup.rag.delete_collection(TENANT, name)
        drop_database(admin_url, db_name)
        shutil.rmtree(qdrant_dir, ignore_errors=True)
    return record


# -- output ------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def render_table(records: Sequence[Record]) -> str:
    header = (
        f"{'chunks':>9} {'store':<9} {'queries':>8} {'lex p50':>9} {'lex p95':>9} "
        f"{'dense p50':>9} {'dense p95':>9} {'hyb p50':>9} {'hyb p95':>9} {'recall@10':>9} "
        f"{'db MB':>8} {'qdrant MB':>9} {'load ch/s':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in records:
        queries = f"{r.queries_measured}{'*' if r.truncated else ''}"
        lines.append(
            f"{r.chunks:>9,} {r.store:<9} {queries:>8} {_ms(r.lexical_p50_ms):>9} "
            f"{_ms(r.lexical_p95_ms):>9} {_ms(r.dense_p50_ms):>9} {_ms(r.dense_p95_ms):>9} "
            f"{_ms(r.hybrid_p50_ms):>9} {_ms(r.hybrid_p95_ms):>9} "
            f"{'-' if r.dense_recall_at_10 is None else f'{r.dense_recall_at_10:.3f}':>9} "
            f"{r.db_bytes / 2**20:>8,.0f} "
            f"{'-' if r.qdrant_bytes is None else f'{r.qdrant_bytes / 2**20:,.0f}':>9} "
            f"{'reused' if r.reused else _ms(r.load_chunks_per_s):>9}"
        )
    if any(r.truncated for r in records):
        lines.append("* fewer queries than asked: --max-query-seconds ran out")
    lines.append("latencies in ms, in process through stack.rag.search (limit 10, cache off)")
    return "\n".join(lines)


def plot(records: Sequence[Record], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    styles = {"pgvector": "-", "qdrant": "--"}
    colours = {"lexical": "tab:red", "dense": "tab:blue", "hybrid": "tab:purple"}
    for store in STORES:
        mine = sorted((r for r in records if r.store == store), key=lambda r: r.chunks)
        for mode in MODES:
            points = [(r.chunks, getattr(r, f"{mode}_p50_ms")) for r in mine]
            points = [(x, y) for x, y in points if y is not None]
            if points:
                axes.plot(
                    [x for x, _ in points],
                    [y for _, y in points],
                    styles[store],
                    marker="o",
                    color=colours[mode],
                    label=f"{mode}, {store}",
                )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("chunks in the collection")
    axes.set_ylabel("p50 latency (ms)")
    axes.set_title("Search latency against collection size (p50)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="chunks per collection")
    parser.add_argument("--stores", default="pgvector,qdrant", help="pgvector, qdrant or both")
    parser.add_argument("--queries", type=int, default=200, help="measured queries (default 200)")
    parser.add_argument(
        "--warmup", type=int, default=WARMUP, help="queries searched first, unmeasured (10)"
    )
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--json", type=Path, help="write the records here")
    parser.add_argument("--plot", type=Path, help="write a PNG plot here (log-log)")
    parser.add_argument(
        "--max-query-seconds",
        type=float,
        default=900.0,
        help="time for the queries of one size and store; fewer are measured past it (default 900)",
    )
    parser.add_argument("--qdrant-url", help="a Qdrant server (default: local mode in a folder)")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) built collections")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server's URL (default: the embedded one in bench/.data)",
    )
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="Qdrant folders go here")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="SciFact's folder")
    parser.add_argument("--min-free-gb", type=float, default=10.0, help="disk left free (GB)")
    parser.add_argument(
        "--settle", type=float, default=30.0, help="wait up to this long for quiet before measuring"
    )
    parser.add_argument(
        "--seed-vectors",
        type=int,
        default=SEED_VECTORS,
        help="chunks embedded by the model, around which the vectors cluster (default 512)",
    )
    parser.add_argument("--no-self-test", action="store_true", help="skip the loader's self-test")
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    args.stores = [store.strip() for store in args.stores.split(",")]
    unknown = set(args.stores) - set(STORES)
    if unknown:
        parser.error(f"unknown store(s): {', '.join(sorted(unknown))}")
    if min(args.sizes) < 2 * CHUNKS_PER_DOCUMENT or args.queries < 1:
        parser.error("sizes must be at least 20 chunks, queries at least 1")
    return args


def content_words(admin_url: str, model: WordModel) -> npt.NDArray[np.bool_]:
    """Which words of the model have a lexeme (the core's configuration drops stop words)."""
    import psycopg

    from synthstack_core.stores.rag.base import TS_CONFIG

    with psycopg.connect(plain_url(admin_url)) as conn:
        rows = conn.execute(
            f"SELECT to_tsvector('{TS_CONFIG}', w) <> ''::tsvector"
            " FROM unnest(%s::text[]) WITH ORDINALITY u(w, n) ORDER BY n",
            (list(model.words),),
        ).fetchall()
    return np.array([row[0] for row in rows], dtype=bool)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    progress(f"fitting the word model to {args.corpus}")
    model = WordModel(corpus_texts(args.corpus))
    info = machine()
    records: list[Record] = []
    with ExitStack() as stack:
        admin_url = args.database_url or start_database(stack)
        content = content_words(admin_url, model)
        self_test = not args.no_self_test
        for size in sorted(args.sizes):
            for store in args.stores:
                record = asyncio.run(
                    run_one(args, admin_url, model, content, size, store, self_test)
                )
                self_test = False
                records.append(record)
                print(render_table(records), flush=True)
                if args.json:
                    _write_json(args, info, records)
    print()
    print(render_table(records))
    if args.json:
        _write_json(args, info, records)
    if args.plot:
        plot(records, args.plot)
        progress(f"plot written to {args.plot}")
    return 0


def _write_json(args: argparse.Namespace, info: dict[str, Any], records: Sequence[Record]) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "bench/scale.py",
        "command": " ".join(sys.argv),
        "seed": args.seed,
        "queries": args.queries,
        "limit": K,
        "machine": info,
        "through": "in process, stack.rag.search (the HTTP API's operation, without HTTP)",
        "records": [asdict(record) for record in records],
    }
    args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
