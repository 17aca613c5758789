"""RAG on real PostgreSQL + pgvector: isolation, deletion, atomicity, concurrency, retrieval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from synthstack_core import InvalidRequest, NotFound, ProviderError, Settings, SynthStack
from synthstack_core.errors import Conflict
from synthstack_core.features.parsing import parse_document
from synthstack_core.schemas.rag import (
    CreateCollectionRequest,
    IndexRequest,
    ProjectDocumentRequest,
    SearchRequest,
)
from synthstack_core.stores.rag.documents import collection_deleted
from synthstack_testing import OpenAIStub

KEY = "rag-test-key-0001"
CATS = "Cats are small carnivorous felines. A cat purrs when it is content and sleeps a lot."
MARKETS = "Stock markets fell sharply on Monday as investors worried about interest rates."
DOGS = "Dogs are loyal companions; a dog barks at strangers and loves long walks."


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


def _index(content: str, collection: str, document_id: str, **extra: Any) -> IndexRequest:
    return IndexRequest.model_validate(
        {
            "content": content,
            "source": f"{document_id}.txt",
            "collection": collection,
            "document_id": document_id,
            **extra,
        }
    )


def _search(query: str, collection: str, **extra: Any) -> SearchRequest:
    return SearchRequest.model_validate({"query": query, "collection": collection, **extra})


async def test_index_and_search_in_every_mode(stack: SynthStack) -> None:
    rag = stack.rag
    for number, content in enumerate((CATS, MARKETS, DOGS)):
        meta = {"topic": ["animals", "finance", "animals"][number], "rank": number}
        done = await rag.index("alpha", _index(content, "modes", f"doc-{number}", metadata=meta))
        assert done.chunks_created == 1
    for mode in ("lexical", "dense", "hybrid"):
        found = await rag.search("alpha", _search("why does my cat purr", "modes", mode=mode))
        assert found.results[0].document_id == "doc-0", mode
        assert found.total_found == len(found.results)
        first = found.results[0]
        assert first.content == CATS and (first.span.start, first.span.end) == (0, len(CATS))
    filtered = await rag.search(
        "alpha", _search("animals", "modes", filter={"topic": {"in": ["finance"]}})
    )
    assert [r.document_id for r in filtered.results] == ["doc-1"]
    by_number = await rag.search("alpha", _search("animals", "modes", filter={"rank": 2}))
    assert [r.document_id for r in by_number.results] == ["doc-2"]
    strict = await rag.search("alpha", _search("cat", "modes", mode="dense", min_score=0.99))
    assert strict.results == []
    # Hybrid scores are the fusion's: each side scaled to [0, 1] over its candidates, half each.
    hybrid = await rag.search("alpha", _search("why does my cat purr", "modes", limit=3))
    scores = [r.score for r in hybrid.results]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert scores[0] == pytest.approx(1.0)  # the cat document is first on both sides
    above = await rag.search("alpha", _search("why does my cat purr", "modes", min_score=0.99))
    assert [r.document_id for r in above.results] == ["doc-0"]


async def test_tenants_never_see_each_other(stack: SynthStack) -> None:
    rag = stack.rag
    await rag.index("alpha", _index(CATS, "shared-name", "secret-doc"))
    await rag.index("beta", _index(MARKETS, "shared-name", "their-doc"))
    beta = await rag.search("beta", _search("cat purrs markets", "shared-name", mode="lexical"))
    assert {r.document_id for r in beta.results} == {"their-doc"}
    with pytest.raises(NotFound):
        await rag.get_document("beta", "shared-name", "secret-doc")
    with pytest.raises(NotFound):
        await rag.delete_document("beta", "shared-name", "secret-doc")
    with pytest.raises(NotFound):
        await rag.search("gamma", _search("cat", "shared-name"))
    with pytest.raises(NotFound):
        await rag.delete_collection("gamma", "shared-name")
    assert (await rag.get_document("alpha", "shared-name", "secret-doc")).chunks == 1
    assert [c.name for c in (await rag.list_collections("beta")).collections] == ["shared-name"]


async def test_deleting_removes_chunks_vectors_and_postings(stack: SynthStack) -> None:
    rag = stack.rag
    await rag.index("alpha", _index(CATS, "deletions", "gone"))
    await rag.index("alpha", _index(DOGS, "deletions", "stays"))
    deleted = await rag.delete_document("alpha", "deletions", "gone")
    assert deleted.chunks_deleted == 1
    for mode in ("lexical", "dense", "hybrid"):
        found = await rag.search("alpha", _search("cat purrs", "deletions", mode=mode))
        assert "gone" not in {r.document_id for r in found.results}, mode
    removed = await rag.delete_collection("alpha", "deletions")
    assert (removed.documents_deleted, removed.chunks_deleted) == (1, 1)
    async with stack.database.session() as session:
        orphans = await session.scalar(
            text(
                "SELECT count(*) FROM rag_postings p LEFT JOIN rag_chunks c ON c.id = p.chunk_id"
                " WHERE c.id IS NULL"
            )
        )
    assert orphans == 0
    with pytest.raises(NotFound):
        await rag.search("alpha", _search("cat", "deletions"))


async def test_reindex_replaces_and_identical_content_is_not_embedded_again(
    stack: SynthStack, stub: OpenAIStub
) -> None:
    rag = stack.rag
    await rag.create_collection(
        "alpha",
        CreateCollectionRequest(name="remote", embedding_model="text-embedding-3-small"),
    )
    with pytest.raises(Conflict):
        await rag.create_collection("alpha", CreateCollectionRequest(name="remote"))
    stub.reset()
    long_text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(400))
    first = await rag.index(
        "alpha", _index(long_text, "remote", "doc", chunk_size=64, chunk_overlap=8)
    )
    assert first.chunks_created > 5
    calls = len(stub.requests)
    again = await rag.index(
        "alpha", _index(long_text, "remote", "doc", chunk_size=64, chunk_overlap=8)
    )
    assert again.chunks_created == first.chunks_created
    assert len(stub.requests) == calls, "identical content was embedded again"
    titled = _index(long_text, "remote", "titled", chunk_size=64, chunk_overlap=8, title="Topics")
    await rag.index("alpha", titled)
    calls = len(stub.requests)
    await rag.index("alpha", titled)
    assert len(stub.requests) == calls, "identical content with a title was embedded again"
    await rag.delete_document("alpha", "remote", "titled")
    replaced = await rag.index("alpha", _index(MARKETS, "remote", "doc"))
    assert replaced.chunks_created == 1
    document = await rag.get_document("alpha", "remote", "doc")
    assert document.chunks == 1 and document.characters == len(MARKETS)
    found = await rag.search("alpha", _search("Sentence number topic", "remote", mode="lexical"))
    assert found.results == [] or found.results[0].content == MARKETS


async def test_a_failed_ingestion_leaves_nothing_behind(
    stack: SynthStack, stub: OpenAIStub
) -> None:
    rag = stack.rag
    await rag.create_collection(
        "alpha", CreateCollectionRequest(name="atomic", embedding_model="text-embedding-3-large")
    )
    await rag.index("alpha", _index(CATS, "atomic", "kept"))
    stub.reset()
    stub.fail_next(500)
    with pytest.raises(ProviderError):
        await rag.index("alpha", _index(DOGS, "atomic", "kept"))
    with pytest.raises(ProviderError):
        stub.fail_next(500)
        await rag.index("alpha", _index(DOGS, "atomic", "new-one"))
    stub.reset()
    document = await rag.get_document("alpha", "atomic", "kept")
    assert document.characters == len(CATS), "the previous version must survive"
    with pytest.raises(NotFound):
        await rag.get_document("alpha", "atomic", "new-one")


async def test_a_collection_deleted_during_indexing_is_not_found_and_nothing_is_stored(
    stack: SynthStack,
) -> None:
    """The collection is deleted after the indexing read it and before it stores (from the job
    path's progress report, once the chunks are embedded): 404, not the database's foreign-key
    violation as an outage, and no row of the document anywhere."""
    rag = stack.rag
    await rag.create_collection("alpha", CreateCollectionRequest(name="doomed"))
    await rag.index("alpha", _index(DOGS, "doomed", "kept"))
    reports: list[tuple[int, int | None]] = []

    async def delete_it(done: int, total: int | None) -> None:
        reports.append((done, total))
        if done == total:  # embedded: storing is next
            assert (await rag.delete_collection("alpha", "doomed")).documents_deleted == 1

    request = _index(" ".join(f"Orphan sentence {i}." for i in range(60)), "doomed", "orphan",
                     chunk_size=32, chunk_overlap=0)  # fmt: skip
    arguments = {
        **request.model_dump(exclude={"collection", "document_id"}),
        "collection": "doomed",
        "document_id": "orphan",
    }
    with pytest.raises(NotFound, match="deleted while the document was being indexed"):
        await rag.run_index_job("alpha", arguments, None, delete_it)
    assert reports[-1][0] == reports[-1][1] and len(reports) > 1
    async with stack.database.session() as session:
        left = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM rag_documents WHERE external_id = 'orphan'),"
                    " (SELECT count(*) FROM rag_chunks WHERE content LIKE 'Orphan sentence%'),"
                    " (SELECT count(*) FROM rag_collections WHERE name = 'doomed'),"
                    " (SELECT count(*) FROM rag_postings p WHERE NOT EXISTS"
                    "  (SELECT 1 FROM rag_chunks c WHERE c.id = p.chunk_id))"
                )
            )
        ).one()
    assert tuple(left) == (0, 0, 0, 0)
    with pytest.raises(NotFound):
        await rag.get_document("alpha", "doomed", "kept")


async def test_only_the_collection_s_foreign_keys_mean_a_deleted_collection(
    stack: SynthStack,
) -> None:
    """Another integrity error (a duplicate key) is not taken for a deleted collection."""
    await stack.rag.create_collection("alpha", CreateCollectionRequest(name="twice"))
    with pytest.raises(IntegrityError) as duplicate:
        async with stack.database.session() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO rag_collections (id, tenant_id, name, embedding_model,"
                    " dimensions) SELECT gen_random_uuid(), tenant_id, name, embedding_model,"
                    " dimensions FROM rag_collections WHERE name = 'twice'"
                )
            )
    assert not collection_deleted(duplicate.value)
    with pytest.raises(IntegrityError) as missing:
        async with stack.database.session() as session, session.begin():
            await session.execute(
                text("INSERT INTO rag_collection_stats (collection_id) VALUES (gen_random_uuid())")
            )
    assert collection_deleted(missing.value)


async def test_concurrent_reindexing_never_mixes_chunk_sets(stack: SynthStack) -> None:
    rag = stack.rag
    versions = {
        "a": " ".join(f"Alpha version paragraph {i}." for i in range(120)),
        "b": " ".join(f"Bravo edition section {i}." for i in range(90)),
    }
    for _ in range(3):
        await asyncio.gather(
            *(
                rag.index(
                    "alpha", _index(body, "race", "contested", chunk_size=32, chunk_overlap=0)
                )
                for body in (versions["a"], versions["b"], versions["a"], versions["b"])
            )
        )
        async with stack.database.session() as session:
            contents = (
                (
                    await session.execute(
                        text(
                            "SELECT c.content FROM rag_chunks c JOIN rag_documents d"
                            " ON d.id = c.document_id WHERE d.external_id = 'contested'"
                        )
                    )
                )
                .scalars()
                .all()
            )
        words = {"Alpha" in content for content in contents}
        assert len(words) == 1, "the chunk set mixes two versions"
        document = await rag.get_document("alpha", "race", "contested")
        assert document.chunks == len(contents)


async def test_bad_documents_are_rejected(stack: SynthStack) -> None:
    with pytest.raises(InvalidRequest) as overlap:
        await stack.rag.index("alpha", _index(CATS, "bad", "x", chunk_size=64, chunk_overlap=40))
    assert overlap.value.errors[0].loc == ("chunk_overlap",)
    with pytest.raises(InvalidRequest) as empty:
        await stack.rag.index("alpha", _index(" \n\t ", "bad", "blank"))
    assert empty.value.instance_code == "empty_document"
    html = (
        "<html><body><script>alert('x')</script><h1>Title</h1><p>Real words here.</p></body></html>"
    )
    await stack.rag.index("alpha", _index(html, "bad", "page", source_type="html"))
    found = await stack.rag.search("alpha", _search("real words", "bad", mode="lexical"))
    assert (
        "alert" not in found.results[0].content and "Real words here." in found.results[0].content
    )


async def test_extractive_answers_quote_and_cite_their_sources(stack: SynthStack) -> None:
    from synthstack_core.schemas.rag import QueryRequest, QueryResponse

    rag = stack.rag
    for name, content in {"cats": CATS, "markets": MARKETS, "dogs": DOGS}.items():
        await rag.index("alpha", _index(content, "answers", name))
    # A remote provider (the OpenAI stub) is configured here: extractive is asked for.
    answer = await rag.query(
        "alpha",
        QueryRequest(query="Why does a cat purr?", collection="answers", answer_mode="extractive"),
    )
    assert isinstance(answer, QueryResponse)
    assert answer.answer_mode == "extractive" and answer.model == "all-MiniLM-L6-v2"
    assert answer.citations, answer
    assert answer.citations[0].document_id == "cats"
    sources = {source.index: source for source in answer.sources}
    for citation in answer.citations:
        source = sources[citation.index]
        offset = citation.span.start - source.span.start
        assert source.content[offset : offset + len(citation.quote)] == citation.quote
        assert f"{citation.quote} [{citation.index}]" in answer.answer
    # Every sentence of the answer is a cited quote: nothing is invented.
    rebuilt = " ".join(f"{c.quote} [{c.index}]" for c in answer.citations)
    assert answer.answer == rebuilt
    assert answer.usage.total_tokens == answer.usage.prompt_tokens > 0
    with pytest.raises(NotFound):
        await rag.query("alpha", QueryRequest(query="cat", collection="no-such"))


async def test_documents_are_listed_newest_first_with_a_cursor(stack: SynthStack) -> None:
    from synthstack_core.schemas.rag import DocumentListParams

    rag = stack.rag
    for number in range(5):
        await rag.index(
            "alpha", _index(f"Document number {number} about cats.", "paged", f"d{number}")
        )
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await rag.list_documents(
            "alpha", DocumentListParams(collection="paged", limit=2, cursor=cursor)
        )
        seen.extend(document.document_id for document in page.documents)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["d4", "d3", "d2", "d1", "d0"]
    with pytest.raises(InvalidRequest):
        await rag.list_documents("alpha", DocumentListParams(collection="paged", cursor="nonsense"))
    with pytest.raises(NotFound):
        await rag.list_documents("beta", DocumentListParams(collection="paged"))


RIVER_BOOK = (
    "# Guide to the Danube delta\n\n"
    + "The first part describes boats, harbours and the weather in spring. " * 30
    + "\n\n## Birds\n\n"
    + "Pelicans and herons nest in the reeds; cormorants fish in the channels. " * 30
)


async def test_a_title_is_stored_and_indexed_with_the_chunks_that_lack_it(
    stack: SynthStack,
) -> None:
    rag = stack.rag
    await rag.index("alpha", _index(RIVER_BOOK, "titled", "delta", source_type="markdown"))
    document = await rag.get_document("alpha", "titled", "delta")
    assert document.title == "Guide to the Danube delta"  # the first Markdown heading
    # "Danube" is only in the title, at the top of the first chunk: every chunk is found by it,
    # and each is returned as its own text (the header is indexed, not stored).
    found = await rag.search("alpha", _search("Danube", "titled", mode="lexical", limit=20))
    assert found.total_found == document.chunks > 2
    # Spans are into the text as indexed: the Markdown read as text, as an upload of it is.
    indexed = parse_document(RIVER_BOOK.encode(), source_type="markdown", max_chars=10**6).text
    for result in found.results:
        assert result.content == indexed[result.span.start : result.span.end]
        assert result.title == "Guide to the Danube delta"
    assert sum("Danube" in result.content for result in found.results) == 1
    # The title counts towards the chunk size: header and chunk fit the model's window.
    async with stack.database.session() as session:
        tokens = await session.scalar(
            text(
                "SELECT max(c.token_count) FROM rag_chunks c"
                " JOIN rag_documents d ON d.id = c.document_id WHERE d.external_id = 'delta'"
            )
        )
    assert tokens <= 256 - 8  # "Guide to the Danube delta": 6 word pieces + [CLS] and [SEP]


async def test_markdown_is_indexed_as_text(stack: SynthStack) -> None:
    rag = stack.rag
    readme = (
        "# The __Zstandard__ codec\n\n"
        "![](https://example.com/badge.svg)\n\n"
        "Fast compression, licensed under [BSD](LICENSE).\n\n"
        "![diagram of the pipeline](img.png)\n"
    )
    await rag.index("alpha", _index(readme, "md-text", "zstd", source_type="markdown"))
    assert (await rag.get_document("alpha", "md-text", "zstd")).title == "The Zstandard codec"
    found = await rag.search("alpha", _search("zstandard", "md-text", mode="lexical"))
    assert [result.content for result in found.results] == [
        "# The Zstandard codec\n\nFast compression, licensed under BSD.\n\ndiagram of the pipeline"
    ]
    # An image line without alt text is no text: its address is not indexed.
    badge = await rag.search("alpha", _search("badge svg", "md-text", mode="lexical"))
    assert badge.results == []
    # A gateway's Markdown file is read the same way.
    await rag.index_project_document(
        "alpha",
        ProjectDocumentRequest(
            document_id="notes", project_id="p1", filename="notes.md", file_type="md",
            content="See **[the guide](https://example.com/guide)**.",
        ),
    )  # fmt: skip
    hits = await rag.search("alpha", _search("guide", "project_p1", mode="lexical"))
    assert [result.content for result in hits.results] == ["See the guide."]


async def test_a_given_title_wins_and_changing_it_reindexes(stack: SynthStack) -> None:
    rag = stack.rag
    body = "Pelicans nest in the reeds. " * 80
    first = await rag.index("alpha", _index(body, "titled", "birds", title="Waterfowl"))
    again = await rag.index("alpha", _index(body, "titled", "birds", title="Waterfowl"))
    assert again.chunks_created == first.chunks_created
    hits = await rag.search("alpha", _search("waterfowl", "titled", mode="lexical", limit=20))
    assert {r.document_id for r in hits.results} == {"birds"}
    await rag.index("alpha", _index(body, "titled", "birds", title="Shore birds"))
    assert (await rag.get_document("alpha", "titled", "birds")).title == "Shore birds"
    hits = await rag.search("alpha", _search("waterfowl", "titled", mode="lexical", limit=20))
    assert hits.results == []  # the old header's postings went with the old chunks
    await rag.index("alpha", _index(body, "titled", "birds"))
    assert (await rag.get_document("alpha", "titled", "birds")).title is None


def test_a_chunk_header_is_cut_to_a_quarter_of_the_chunk_size() -> None:
    from synthstack_core.features.rag import chunk_header
    from synthstack_core.providers.local_onnx import LOCAL_MODEL, LocalOnnxEmbeddingProvider

    counter = LocalOnnxEmbeddingProvider().token_counter(LOCAL_MODEL)
    assert chunk_header(None, counter, 256) is None
    assert chunk_header("  Spaced \n  title ", counter, 256) == "Spaced title"
    long_title = " ".join(f"word{n}" for n in range(200))
    header = chunk_header(long_title, counter, 256)
    assert header is not None and long_title.startswith(header)
    assert counter.count(header) <= 64 < counter.count(f"{header} word199")
    one_word = "-".join(f"w{n}" for n in range(100))  # no space to cut at, 300 word pieces
    assert chunk_header(one_word, counter, 256) is None
