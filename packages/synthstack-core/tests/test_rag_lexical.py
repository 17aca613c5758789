"""Lexical search's stored statistics (issue 15) on real PostgreSQL: exact under concurrent writers,
and what the postings carry for scoring."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from synthstack_core import NotFound, Settings, SynthStack
from synthstack_core.schemas.rag import CreateCollectionRequest, IndexRequest
from synthstack_testing import OpenAIStub

KEY = "rag-lexical-key-0001"
#: A small vocabulary, so that concurrent documents share most lexemes (and their statistics rows).
WORDS = [
    "cell",
    "protein",
    "gene",
    "expression",
    "tumour",
    "patient",
    "cancer",
    "mouse",
    "blood",
    "receptor",
    "kinase",
    "signalling",
    "pathway",
    "mutation",
    "therapy",
    "dose",
    "trial",
    "immune",
    "response",
    "virus",
    "infection",
    "neuron",
    "brain",
    "insulin",
    "glucose",
    "heart",
    "muscle",
    "bone",
    "liver",
    "kidney",
    "lung",
    "risk",
    "cohort",
    "mortality",
    "sample",
    "analysis",
]


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


@pytest.fixture(scope="module")
async def stack(module_database_url: str, stub: OpenAIStub) -> AsyncIterator[SynthStack]:
    settings = Settings(
        DATABASE_URL=module_database_url,
        SYNTHSTACK_API_KEYS=f"alpha:{KEY}",
        SYNTHSTACK_MIGRATE_ON_START=False,
        OPENAI_API_KEY=stub.api_key,
        OPENAI_BASE_URL=stub.base_url,
        SYNTHSTACK_PROVIDER_MAX_RETRIES=0,
        SYNTHSTACK_CACHE_MAX_ENTRIES=0,
    )
    async with SynthStack(settings) as started:
        yield started


def _text(generator: random.Random, sentences: int) -> str:
    return " ".join(
        " ".join(generator.choice(WORDS) for _ in range(generator.randint(3, 12))).capitalize()
        + "."
        for _ in range(sentences)
    )


def _index(content: str, collection: str, document_id: str, **extra: Any) -> IndexRequest:
    return IndexRequest.model_validate(
        {
            "content": content,
            "source": f"{document_id}.txt",
            "collection": collection,
            "document_id": document_id,
            "chunk_size": 32,
            "chunk_overlap": 0,
            **extra,
        }
    )


async def _stored_and_recounted(stack: SynthStack, collection: str) -> tuple[Any, Any]:
    """(stored, recounted): chunk count, total length and df per lexeme of the collection."""
    async with stack.database.session() as session:
        collection_id = await session.scalar(
            text("SELECT id FROM rag_collections WHERE name = :name"), {"name": collection}
        )
        stored = (
            await session.execute(
                text(
                    "SELECT chunk_count, total_length FROM rag_collection_stats"
                    " WHERE collection_id = :id"
                ),
                {"id": collection_id},
            )
        ).one()
        counted = (
            await session.execute(
                text(
                    "SELECT count(*), coalesce(sum(lexeme_count), 0) FROM rag_chunks"
                    " WHERE collection_id = :id"
                ),
                {"id": collection_id},
            )
        ).one()
        stored_df = dict(
            (
                await session.execute(
                    text("SELECT lexeme, df FROM rag_term_stats WHERE collection_id = :id"),
                    {"id": collection_id},
                )
            ).all()
        )
        counted_df = dict(
            (
                await session.execute(
                    text(
                        "SELECT lexeme, count(*) FROM rag_postings WHERE collection_id = :id"
                        " GROUP BY lexeme"
                    ),
                    {"id": collection_id},
                )
            ).all()
        )
        # Each posting carries its chunk's length and its impact.
        wrong = await session.scalar(
            text(
                "SELECT count(*) FROM rag_postings p JOIN rag_chunks c ON c.id = p.chunk_id"
                " WHERE p.collection_id = :id AND (p.chunk_length <> c.lexeme_count"
                " OR abs(p.impact - p.tf::float8 / (p.tf + 1.2 * (0.25 + 0.75 *"
                " c.lexeme_count::float8 / 64))) > 1e-12)"
            ),
            {"id": collection_id},
        )
    assert wrong == 0
    return (tuple(stored), stored_df), (tuple(counted), counted_df)


async def test_statistics_stay_exact_under_eight_concurrent_writers(stack: SynthStack) -> None:
    rag = stack.rag
    collection = "lexical-stats-race"
    await rag.index("alpha", _index(_text(random.Random(0), 20), collection, "seed"))
    documents = [f"doc-{number}" for number in range(12)]  # shared by the writers

    async def writer(seed: int) -> None:
        generator = random.Random(seed)
        for _ in range(12):
            document_id = generator.choice(documents)
            if generator.random() < 0.3:
                with contextlib.suppress(NotFound):  # deleted by another writer first
                    await rag.delete_document("alpha", collection, document_id)
            else:
                content = _text(generator, generator.randint(1, 25))
                await rag.index("alpha", _index(content, collection, document_id))

    await asyncio.gather(*(writer(seed) for seed in range(1, 9)))
    stored, counted = await _stored_and_recounted(stack, collection)
    assert stored == counted
    assert counted[0][0] > 0 and len(counted[1]) > 10  # the race left something to count

    # Deleting every document brings the statistics back to nothing.
    for document_id in [*documents, "seed"]:
        with contextlib.suppress(NotFound):
            await rag.delete_document("alpha", collection, document_id)
    stored, counted = await _stored_and_recounted(stack, collection)
    assert stored == counted == ((0, 0), {})


async def test_a_collection_and_its_statistics_go_together(stack: SynthStack) -> None:
    rag = stack.rag
    collection = "lexical-stats-dropped"
    await rag.index("alpha", _index(_text(random.Random(3), 10), collection, "one"))
    await rag.index("alpha", _index(_text(random.Random(4), 10), collection, "two"))
    await rag.index("alpha", _index(_text(random.Random(5), 10), collection, "one"))  # re-index
    stored, counted = await _stored_and_recounted(stack, collection)
    assert stored == counted
    async with stack.database.session() as session:
        collection_id = await session.scalar(
            text("SELECT id FROM rag_collections WHERE name = :name"), {"name": collection}
        )
    await rag.delete_collection("alpha", collection)
    async with stack.database.session() as session:
        left = await session.scalar(
            text(
                "SELECT (SELECT count(*) FROM rag_collection_stats WHERE collection_id = :id)"
                " + (SELECT count(*) FROM rag_term_stats WHERE collection_id = :id)"
            ),
            {"id": collection_id},
        )
    assert left == 0


async def test_alembic_0009_backfills_what_the_core_keeps(
    empty_database_url: str, stub: OpenAIStub
) -> None:
    """Rows written by the core, taken back to 0006 and migrated again: the backfilled statistics,
    lengths and impacts are what the core had written."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from synthstack_core.stores.database import _MIGRATIONS, sqlalchemy_url

    settings = Settings(
        DATABASE_URL=empty_database_url,
        SYNTHSTACK_MIGRATE_ON_START=False,
        OPENAI_API_KEY=stub.api_key,
        OPENAI_BASE_URL=stub.base_url,
        SYNTHSTACK_PROVIDER_MAX_RETRIES=0,
        SYNTHSTACK_CACHE_MAX_ENTRIES=0,
        SYNTHSTACK_API_KEYS=f"alpha:{KEY}",
    )
    query = (
        "SELECT (SELECT array_agg(ARRAY[collection_id::text, chunk_count::text,"
        " total_length::text] ORDER BY collection_id) FROM rag_collection_stats),"
        " (SELECT array_agg(ARRAY[collection_id::text, lexeme, df::text]"
        " ORDER BY collection_id, lexeme) FROM rag_term_stats),"
        " (SELECT array_agg(ARRAY[chunk_id::text, lexeme, chunk_length::text, impact::text]"
        " ORDER BY chunk_id, lexeme) FROM rag_postings)"
    )
    async with SynthStack(settings) as stack:
        for number, name in enumerate(("backfill-a", "backfill-b", "backfill-a")):
            content = _text(random.Random(10 + number), 15)
            await stack.rag.index("alpha", _index(content, name, f"doc-{number}"))
        await stack.rag.create_collection("alpha", CreateCollectionRequest(name="backfill-empty"))
        async with stack.database.session() as session:
            written = (await session.execute(text(query))).one()
    assert all(written) and len(written[0]) == 3
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    engine = create_engine(sqlalchemy_url(empty_database_url))
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0006")
            connection.commit()
            command.upgrade(config, "head")
            connection.commit()
            backfilled = connection.execute(text(query)).one()
    finally:
        engine.dispose()
    assert backfilled == written


#: The lexical search of issue 15's baseline: BM25 with every statistic counted live, the reference
#: the stored statistics (and any shortcut) must reproduce.
REFERENCE_SQL = """
WITH q AS MATERIALIZED (SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', :query))),
stats AS MATERIALIZED (
    SELECT count(*) AS n, greatest(avg(lexeme_count), 1) AS avgdl
    FROM rag_chunks WHERE collection_id = :collection_id
),
df AS MATERIALIZED (
    SELECT q.lexeme, (
        SELECT count(*) FROM rag_postings p
        WHERE p.collection_id = :collection_id AND p.lexeme = q.lexeme
    ) AS df
    FROM q
),
scored AS (
    SELECT p.chunk_id, sum(
        ln(1 + (stats.n - df.df + 0.5) / (df.df + 0.5)) * p.tf * 2.2
        / (p.tf + 1.2 * (1 - 0.75 + 0.75 * k.lexeme_count / stats.avgdl))
    ) AS score
    FROM df
    JOIN rag_postings p ON p.collection_id = :collection_id AND p.lexeme = df.lexeme
    JOIN rag_chunks k ON k.id = p.chunk_id
    CROSS JOIN stats
    WHERE df.df > 0
    GROUP BY p.chunk_id
)
SELECT s.chunk_id, s.score FROM scored s JOIN rag_chunks c ON c.id = s.chunk_id
JOIN rag_documents d ON d.id = c.document_id
WHERE TRUE{where}
ORDER BY s.score DESC, c.id LIMIT :limit
"""

#: Words by rank: a Zipf-like corpus over them has frequent terms (long posting lists, many ties
#: of short chunks) and rare ones.
VOCABULARY = [f"{stem}{suffix}" for suffix in ("", "ase", "ogen", "ic") for stem in WORDS]


def _zipf_text(generator: random.Random, words: int) -> str:
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
    return " ".join(generator.choices(VOCABULARY, weights, k=words)) + "."


@pytest.fixture(scope="module")
async def corpus(stack: SynthStack) -> str:
    """A collection of ~1,000 chunks of 1-40 lexemes, with metadata to filter on."""
    collection = "lexical-corpus"
    generator = random.Random(15)
    for number in range(120):
        content = "\n\n".join(
            _zipf_text(generator, generator.randint(1, 30)) for _ in range(generator.randint(1, 14))
        )
        metadata = {"group": number % 3, "tagged": number % 7 == 0}
        await stack.rag.index(
            "alpha", _index(content, collection, f"z-{number}", metadata=metadata, chunk_size=24)
        )
    counted = await stack.rag.repository.get_collection("alpha", collection, with_counts=True)
    assert counted is not None and counted.chunks >= 800, counted
    return collection


async def _reference(
    stack: SynthStack, collection: str, query: str, limit: int, filters: dict[str, Any]
) -> list[tuple[str, float]]:
    from synthstack_core.stores.vectors import metadata_filter_sql

    record = await stack.rag.repository.get_collection("alpha", collection)
    assert record is not None
    params: dict[str, Any] = {"collection_id": record.id, "query": query, "limit": limit}
    where = metadata_filter_sql(filters, params)
    async with stack.database.session() as session:
        rows = await session.execute(text(REFERENCE_SQL.format(where=where)), params)
        return [(str(row[0]), float(row[1])) for row in rows]


def _queries(generator: random.Random, count: int) -> list[tuple[str, int, dict[str, Any]]]:
    cases: list[tuple[str, int, dict[str, Any]]] = []
    for _ in range(count):
        words = generator.choices(VOCABULARY, k=generator.randint(1, 6))
        if generator.random() < 0.2:
            words.append("zzyzx")  # in no chunk
        filters: dict[str, Any] = generator.choice(
            [{}, {}, {"group": generator.randint(0, 2)}, {"tagged": True}, {"group": 9}]
        )
        cases.append((" ".join(words), generator.choice([1, 3, 10, 50, 100]), filters))
    return cases


async def test_lexical_search_equals_bm25_over_live_counts(stack: SynthStack, corpus: str) -> None:
    record = await stack.rag.repository.get_collection("alpha", corpus)
    assert record is not None
    generator = random.Random(7)
    nonempty = 0
    for query, limit, filters in _queries(generator, 60):
        expected = await _reference(stack, corpus, query, limit, filters)
        found = await stack.rag.repository.search_lexical(
            record, query, limit=limit, filters=filters
        )
        got = [(str(chunk.chunk_id), float(chunk.score)) for chunk in found]
        assert [chunk_id for chunk_id, _ in got] == [chunk_id for chunk_id, _ in expected], query
        assert [score for _, score in got] == pytest.approx([score for _, score in expected])
        nonempty += bool(expected)
    assert nonempty > 30


async def test_early_termination_returns_exactly_what_bm25_returns(
    stack: SynthStack, corpus: str
) -> None:
    """Randomized: the threshold algorithm (forced, whatever the postings' count) gives the
    reference's chunks, order and scores, with and without filters; and it does stop early."""
    record = await stack.rag.repository.get_collection("alpha", corpus)
    assert record is not None
    generator = random.Random(11)
    early = rounds = 0
    for query, limit, filters in _queries(generator, 150):
        expected = await _reference(stack, corpus, query, limit, filters)
        # Shallow first rounds, so that lists are read deeper and deeper.
        first_depth = generator.choice([1, 2, 5, 20, None])
        # 0: rounds to the end of the lists; else the fall-back to the exact statement.
        round_cost = generator.choice([0, 0, 2, 4])
        found, trace = await stack.rag.repository.search_lexical_traced(
            record,
            query,
            limit=limit,
            filters=filters,
            exact_below=0,
            first_depth=first_depth,
            round_cost=round_cost,
        )
        got = [(str(chunk.chunk_id), float(chunk.score)) for chunk in found]
        assert [chunk_id for chunk_id, _ in got] == [chunk_id for chunk_id, _ in expected], (
            query,
            limit,
            filters,
            trace,
        )
        assert [score for _, score in got] == pytest.approx([score for _, score in expected])
        if not trace.exact and trace.read < trace.postings:
            early += 1
            rounds += trace.rounds > 2
    assert early >= 30  # many queries stopped before reading every posting
    assert rounds >= 10  # and many after reading lists deeper


async def test_ties_and_near_ties_rank_as_exact_bm25_on_every_path(stack: SynthStack) -> None:
    """Candidates are scored in floats and only the best get their exact (numeric) score: many
    chunks with the very same score (identical chunks) and scores a rounding error apart must
    still come back as the reference ranks them (ties by chunk id), whether the single statement,
    the rounds, or the rounds' fall-back to the statement answers."""
    collection = "lexical-ties"
    generator = random.Random(21)
    for number in range(40):
        # The same short chunk in many documents (exact ties), and near-identical ones whose
        # lengths differ by one lexeme (scores a hair apart).
        if number % 2:
            content = "kinase pathway mutation."
        else:
            content = "kinase pathway mutation " + " ".join(
                generator.choices(WORDS, k=generator.randint(0, 3))
            )
        await stack.rag.index(
            "alpha", _index(content, collection, f"t-{number}", metadata={"odd": number % 2 == 1})
        )
    record = await stack.rag.repository.get_collection("alpha", collection)
    assert record is not None
    cases = 0
    for query in ("kinase", "kinase pathway", "kinase pathway mutation therapy", "dose zzyzx"):
        for limit in (1, 3, 10, 25, 100):
            for filters in ({}, {"odd": True}):
                expected = await _reference(stack, collection, query, limit, filters)
                for exact_below, first_depth in ((10**9, None), (0, 1), (0, 4), (0, None)):
                    found, trace = await stack.rag.repository.search_lexical_traced(
                        record,
                        query,
                        limit=limit,
                        filters=filters,
                        exact_below=exact_below,
                        first_depth=first_depth,
                    )
                    got = [(str(chunk.chunk_id), float(chunk.score)) for chunk in found]
                    assert [c for c, _ in got] == [c for c, _ in expected], (query, limit, trace)
                    assert [s for _, s in got] == pytest.approx([s for _, s in expected])
                    cases += bool(expected)
    assert cases >= 100
