"""The Django adapter end to end, with Django's test client on a real (embedded) PostgreSQL.

- the rate-limit overrides: added, validated and edited in the admin, applied by the API at once
  (no override cache here);
- usage: the requests the API served, and what they used, listed read-only for every tenant;
- the admin: a superuser logs in, adds a tenant and an API key (created by the core, its secret
  shown once and stored nowhere), the key authenticates API calls, and the admin's revoke action
  (through the core) makes the next call a 401;
- the RAG admin: documents indexed through the API are browsable and searchable (collections,
  documents, chunks; read-only), and deleting a document or a collection in the admin goes through
  the core: chunks, vectors and postings go too, and the search API no longer finds them;
- the docs pages render with local assets, the schema page serves the contract;
- the API's 404 and 405 are the core's problem documents, with exactly the core's headers.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from synthstack_core.apidocs import served_contract
from synthstack_core.stores.embedded import EmbeddedPostgres
from tests.django_support import configure_django, configured_database_url

ROOT = Path(__file__).resolve().parents[2]
# Ignored by git (.synthstack*/). Each run gets its own folder (several runs may overlap).
DATA_ROOT = ROOT / ".synthstack-pytest"

SETTINGS_KEY = "test-key-aaaa"
ADMIN_PASSWORD = "correct horse battery staple"
SECRET_PATTERN = re.compile(r"ssk_[0-9a-f]{12}_[A-Za-z0-9_\-]+")
CORE_HEADERS = {"content-type", "x-request-id", "cache-control", "x-content-type-options"}


@contextmanager
def embedded_postgres(name: str) -> Iterator[str]:
    """A new embedded PostgreSQL in a folder of its own, deleted afterwards; yields its URL."""
    DATA_ROOT.mkdir(exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=DATA_ROOT))
    server = EmbeddedPostgres(data_dir)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _release_connections() -> None:
    """Close the core's service and Django's connections (before their server stops)."""
    from django.db import connections

    from synthstack_django.service import reset_stack

    reset_stack()
    connections.close_all()


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A fresh embedded PostgreSQL for this module."""
    with embedded_postgres("django-adapter") as url:
        try:
            yield url
        finally:
            _release_connections()


@pytest.fixture(scope="module")
def django_env(database_url: str) -> Iterator[dict[str, str]]:
    """Django configured on the module's database, with a settings key for tenant ``tenant-a``."""
    env = {
        "SYNTHSTACK_ENV": "development",
        "SYNTHSTACK_API_KEYS": f"tenant-a:{SETTINGS_KEY}",
        # Revocation must show at once: no remembered database key lookups.
        "SYNTHSTACK_KEY_CACHE_SECONDS": "0",
        # No worker: a job stays queued until the admin cancels it.
        "SYNTHSTACK_WORKER": "none",
        # Rate-limit overrides edited in the admin too.
        "SYNTHSTACK_RATE_LIMIT_CACHE_SECONDS": "0",
        "REDIS_URL": "",
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in (*env, "DATABASE_URL", "DJANGO_SECRET_KEY"):
            patch.delenv(name, raising=False)  # restored after the module
        configure_django(database_url, env)
        yield env


@pytest.fixture(scope="module")
def admin_client(django_env: dict[str, str]) -> Any:
    """A test client logged in to the admin as a new superuser."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    get_user_model().objects.create_superuser("admin", "admin@example.com", ADMIN_PASSWORD)
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "admin", "password": ADMIN_PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 302, response.content
    assert response["Location"] == "/admin/"
    return client


@pytest.fixture
def client(django_env: dict[str, str]) -> Any:
    """An anonymous test client."""
    from django.test import Client

    return Client()


def _messages(response: Any) -> list[str]:
    """The admin's messages on a page (the test client records no template context here)."""
    return [
        html.unescape(text).strip()
        for text in re.findall(r"<li class=\"[a-z]+\">(.*?)</li>", response.content.decode(), re.S)
    ]


def _inputs(response: Any) -> set[str]:
    """The names of a page's form fields."""
    return set(
        re.findall(r'<(?:input|select|textarea)[^>]* name="([^"]+)"', response.content.decode())
    )


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == status
    assert body["code"] == code
    return body


# --------------------------------------------------------------------------------- the admin


def test_admin_creates_a_key_through_the_core_and_revokes_it(
    admin_client: Any, client: Any
) -> None:
    from django.contrib.admin.models import LogEntry
    from django.contrib.sessions.models import Session
    from django.db import connection

    from synthstack_django.models import ApiKey, Tenant

    assert admin_client.get("/admin/").status_code == 200

    # A tenant, added as a plain row (id and created_at supplied by Django).
    response = admin_client.post(
        "/admin/synthstack_django/tenant/add/", {"name": "acme", "_save": "Save"}
    )
    assert response.status_code == 302, response.content
    tenant = Tenant.objects.get(name="acme")
    assert tenant.created_at is not None

    # A key: the form asks for tenant and name only; the core makes it.
    form = admin_client.get("/admin/synthstack_django/apikey/add/")
    assert form.status_code == 200
    assert _inputs(form) - {"csrfmiddlewaretoken", "_save", "_addanother", "_continue"} == {
        "tenant",
        "name",
    }
    response = admin_client.post(
        "/admin/synthstack_django/apikey/add/",
        {"tenant": str(tenant.pk), "name": "ci", "_save": "Save"},
        follow=True,
    )
    assert response.status_code == 200
    shown = [m for m in _messages(response) if SECRET_PATTERN.search(m)]
    assert len(shown) == 1, _messages(response)
    assert "will not be shown again" in shown[0]
    secrets_found = SECRET_PATTERN.findall(response.content.decode())
    assert len(set(secrets_found)) == 1
    secret = secrets_found[0]

    key = ApiKey.objects.get(tenant=tenant, name="ci")
    assert key.active
    assert secret.startswith(f"ssk_{key.prefix}_")
    assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest()

    # Shown once: not on the next page, and stored nowhere (table, log, sessions).
    again = admin_client.get("/admin/synthstack_django/apikey/")
    assert again.status_code == 200
    assert secret not in again.content.decode()
    assert key.prefix in again.content.decode()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_keys")
        assert secret not in repr(cursor.fetchall())
    assert not any(secret in repr(vars(entry)) for entry in LogEntry.objects.all())
    assert not any(secret in str(s.get_decoded()) for s in Session.objects.all())

    # The key's page is read-only and never shows the hash.
    page = admin_client.get(f"/admin/synthstack_django/apikey/{key.pk}/change/")
    assert page.status_code == 200
    assert key.key_hash not in page.content.decode()
    assert _inputs(page) <= {"csrfmiddlewaretoken"}

    # The new key works on both headers...
    models = client.get("/api/v1/embeddings/models", headers={"Authorization": f"Bearer {secret}"})
    assert models.status_code == 200, models.content
    assert client.get("/api/v1/embeddings/models", headers={"X-API-Key": secret}).status_code == 200

    # ...until the admin revokes it (through the core).
    response = admin_client.post(
        "/admin/synthstack_django/apikey/",
        {"action": "revoke_keys", "_selected_action": [str(key.pk)], "index": "0"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Revoked 1 API key." in _messages(response)
    key.refresh_from_db()
    assert not key.active

    denied = client.get("/api/v1/embeddings/models", headers={"Authorization": f"Bearer {secret}"})
    body = _problem(denied, 401, "invalid_api_key")
    assert denied["WWW-Authenticate"] == 'Bearer realm="synthstack"'
    assert secret not in json.dumps(body)

    # Revoking again changes nothing.
    response = admin_client.post(
        "/admin/synthstack_django/apikey/",
        {"action": "revoke_keys", "_selected_action": [str(key.pk)], "index": "0"},
        follow=True,
    )
    assert "Revoked 0 API keys. 1 already revoked." in _messages(response)


def test_admin_lists_filter_and_search_keys(admin_client: Any) -> None:
    from synthstack_django.models import Tenant

    tenant = Tenant.objects.get(name="tenant-a")
    for query in ("", "?revoked=no", "?revoked=yes", "?q=ci", f"?tenant__id__exact={tenant.pk}"):
        response = admin_client.get(f"/admin/synthstack_django/apikey/{query}")
        assert response.status_code == 200, query
    response = admin_client.get("/admin/synthstack_django/tenant/?q=tenant")
    assert response.status_code == 200
    # The settings key's tenant was created by the core at start-up.
    assert "tenant-a" in response.content.decode()


def test_the_admin_needs_a_login(client: Any) -> None:
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_unmanaged_models_match_their_migration(django_env: dict[str, str]) -> None:
    from django.core.management import call_command

    # Exits with status 1 when the models and migrations differ.
    call_command("makemigrations", "synthstack_django", "--check", "--dry-run", verbosity=0)


def test_admin_edits_rate_limit_overrides_the_api_applies(admin_client: Any, client: Any) -> None:
    from synthstack_django.models import RateLimitOverride, Tenant

    tenant = Tenant.objects.get(name="tenant-a")
    url = "/admin/synthstack_django/ratelimitoverride/"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {SETTINGS_KEY}"}
    # No setting, no override: no limit.
    assert "RateLimit" not in client.get("/api/v1/complexity/scale", **auth).headers
    # Validated as the command validates: a bad rate or policy is the form's error, no row.
    for policy, rate in (("complexity", "lots"), ("health", "1/minute")):
        refused = admin_client.post(
            f"{url}add/", {"tenant": str(tenant.pk), "policy": policy, "rate": rate}
        )
        assert refused.status_code == 200 and "errorlist" in refused.content.decode()
    assert not RateLimitOverride.objects.exists()
    added = admin_client.post(
        f"{url}add/",
        {"tenant": str(tenant.pk), "policy": "complexity", "rate": "1/minute", "_save": "Save"},
    )
    assert added.status_code == 302, added.content
    override = RateLimitOverride.objects.get(tenant=tenant, policy="complexity")
    first = client.get("/api/v1/complexity/scale", **auth)
    assert first.status_code == 200
    assert first.headers["RateLimit-Policy"] == '"complexity";q=1;w=60'
    assert first.headers["RateLimit"].startswith('"complexity";r=0;t=')
    second = client.get("/api/v1/complexity/scale", **auth)
    assert second.status_code == 429
    assert second.headers["Content-Type"] == "application/problem+json"
    assert int(second.headers["Retry-After"]) >= 58
    # Edited to `unlimited`: the next request passes, without limit headers.
    edited = admin_client.post(
        f"{url}{override.pk}/change/",
        {"tenant": str(tenant.pk), "policy": "complexity", "rate": "UNLIMITED", "_save": "Save"},
    )
    assert edited.status_code == 302, edited.content
    assert RateLimitOverride.objects.get(pk=override.pk).rate == "unlimited"
    third = client.get("/api/v1/complexity/scale", **auth)
    assert third.status_code == 200 and "RateLimit" not in third.headers
    assert admin_client.get(f"{url}?q=complex").status_code == 200
    RateLimitOverride.objects.filter(pk=override.pk).delete()


def test_admin_lists_every_tenants_usage_read_only(admin_client: Any, client: Any) -> None:
    from synthstack_django.models import UsageQuantities, UsageRequests
    from synthstack_django.service import get_stack

    auth = {"HTTP_AUTHORIZATION": f"Bearer {SETTINGS_KEY}"}
    for _ in range(2):
        assert client.get("/api/v1/complexity/scale", **auth).status_code == 200
    embedded = client.post(
        "/api/v1/embeddings/batch",
        json.dumps({"texts": ["one", "two", "three"]}),
        content_type="application/json",
        **auth,
    )
    assert embedded.status_code == 200
    # Another tenant's usage, counted (from this thread: counting is thread-safe) by the recorder
    # the pipeline counts into.
    stack = get_stack()
    recorder = stack.stack.usage.recorder
    recorder.request("tenant-usage-other", "rag-search", 200)
    # Reading the usage writes what the process counted (the API's own answer is tenant-a's).
    report = client.get("/api/v1/usage", **auth)
    assert report.status_code == 200
    assert json.loads(report.content)["tenant"] == "tenant-a"
    counted = {
        (row.tenant.name, row.operation_id, row.status): row.requests
        for row in UsageRequests.objects.select_related("tenant")
    }
    assert counted[("tenant-a", "complexity-scale", 200)] >= 2
    assert counted[("tenant-a", "embeddings-batch", 200)] >= 1
    assert counted[("tenant-usage-other", "rag-search", 200)] == 1
    assert UsageQuantities.objects.get(tenant__name="tenant-a").texts_embedded >= 3

    url = "/admin/synthstack_django/usagerequests/"
    listed = admin_client.get(url)
    assert listed.status_code == 200
    page = listed.content.decode()
    for shown in ("tenant-a", "tenant-usage-other", "complexity-scale", "rag-search"):
        assert shown in page
    # Searched by tenant: that tenant's rows only (the filters' sidebar still lists every value).
    searched = admin_client.get(f"{url}?q=tenant-usage-other").content.decode()
    rows = searched.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert rows.count("<tr") == 1
    assert "tenant-usage-other" in rows and "rag-search" in rows and "tenant-a" not in rows
    quantities = admin_client.get("/admin/synthstack_django/usagequantities/")
    assert quantities.status_code == 200 and "tenant-a" in quantities.content.decode()
    # Read-only: no add page, no edit, no delete.
    row = UsageRequests.objects.filter(tenant__name="tenant-a").first()
    assert row is not None
    assert admin_client.get(f"{url}add/").status_code == 403
    assert admin_client.post(f"{url}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(f"{url}{row.pk}/change/", {"requests": "999"}).status_code == 403
    assert UsageRequests.objects.get(pk=row.pk).requests == row.requests


# ------------------------------------------------------------------------------- the RAG admin

RAG_COLLECTION = "admin-docs"
RAG_DOCS = {
    "cats": "Cats are small felines. A cat purrs when content.\n\nKittens play with yarn.",
    "markets": "# Markets\n\nStock markets fell sharply on Monday.\n\n## Rates\n\nRates rose.",
}
RAG_ADMIN = "/admin/synthstack_django"


def _api(client: Any, method: str, path: str, body: Any = None) -> Any:
    """A call of the API as tenant ``tenant-a``."""
    auth = {"Authorization": f"Bearer {SETTINGS_KEY}"}
    if body is None:
        return client.generic(method, path, headers=auth)
    return client.generic(
        method, path, json.dumps(body), content_type="application/json", headers=auth
    )


def _index(client: Any, collection: str, docs: dict[str, str]) -> None:
    for name, text in docs.items():
        response = _api(
            client,
            "POST",
            "/api/v1/rag/index",
            {
                "content": text,
                "source": f"{name}.md",
                "source_type": "markdown",
                "collection": collection,
                "document_id": name,
                "metadata": {"topic": name},
                "chunk_size": 16,
                "chunk_overlap": 4,
            },
        )
        assert response.status_code == 200, response.content
        assert json.loads(response.content)["chunks_created"] >= 2  # several chunks each


def _found(client: Any, collection: str, query: str) -> set[str]:
    """The document ids a hybrid search finds."""
    response = _api(
        client,
        "POST",
        "/api/v1/rag/search",
        {"query": query, "collection": collection, "limit": 100},
    )
    assert response.status_code == 200, response.content
    return {result["document_id"] for result in json.loads(response.content)["results"]}


@pytest.fixture
def core_deletes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """The calls of the core's ``rag.delete_collection`` / ``rag.delete_document`` (still made)."""
    from synthstack_core.features.rag import RagService

    calls: list[tuple[str, tuple[Any, ...]]] = []
    for name in ("delete_collection", "delete_document"):
        original = getattr(RagService, name)

        async def spy(self: Any, *args: Any, _name: str = name, _original: Any = original) -> Any:
            calls.append((_name, args))
            return await _original(self, *args)

        monkeypatch.setattr(RagService, name, spy)
    return calls


def _count(sql: str, *params: Any) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def test_rag_admin_browses_searches_and_deletes_through_the_core(
    admin_client: Any, client: Any, core_deletes: list[tuple[str, tuple[Any, ...]]]
) -> None:
    from synthstack_django.models import Chunk, Collection, Document

    _index(client, RAG_COLLECTION, RAG_DOCS)
    collection = Collection.objects.get(tenant__name="tenant-a", name=RAG_COLLECTION)
    cats = Document.objects.get(collection=collection, external_id="cats")
    markets = Document.objects.get(collection=collection, external_id="markets")
    assert cats.metadata == {"topic": "cats"}
    assert cats.chunk_count == Chunk.objects.filter(document=cats).count() >= 2

    # The change lists render, filter and search.
    pages = {
        "collection/": [RAG_COLLECTION, "tenant-a"],
        f"collection/?q={RAG_COLLECTION}": [RAG_COLLECTION],
        "collection/?q=tenant-a": [RAG_COLLECTION],
        f"collection/?tenant__id__exact={collection.tenant_id}": [RAG_COLLECTION],
        f"collection/?embedding_model={collection.embedding_model}": [RAG_COLLECTION],
        "document/": ["cats", "markets", "cats.md"],
        "document/?q=cats": ["cats.md"],
        "document/?q=markets.md": ["markets.md"],
        f"document/?collection__id__exact={collection.pk}": ["cats.md", "markets.md"],
        "chunk/": ["cats", "markets"],
        "chunk/?q=purrs": ["A cat purrs"],
        f"chunk/?document__id__exact={cats.pk}": ["Kittens"],
        f"chunk/?collection__id__exact={collection.pk}": ["Kittens", "Stock markets"],
    }
    for page, expected in pages.items():
        response = admin_client.get(f"{RAG_ADMIN}/{page}")
        assert response.status_code == 200, page
        text = html.unescape(response.content.decode())
        for fragment in expected:
            assert fragment in text, (page, fragment)
    searched = html.unescape(admin_client.get(f"{RAG_ADMIN}/document/?q=cats").content.decode())
    assert "markets.md" not in searched
    chunks_found = admin_client.get(f"{RAG_ADMIN}/chunk/?q=purrs").content.decode()
    assert "Stock markets" not in chunks_found
    assert f"{RAG_ADMIN}/document/{cats.pk}/change/" in chunks_found  # the document, linked
    assert (
        RAG_COLLECTION
        not in admin_client.get(f"{RAG_ADMIN}/collection/?q=nothing").content.decode()
    )

    # Read-only: the pages render without fields, nothing can be added, chunks not deleted.
    chunk = Chunk.objects.filter(document=cats).first()
    assert chunk is not None
    for page in (
        f"collection/{collection.pk}/change/",
        f"document/{cats.pk}/change/",
        f"chunk/{chunk.pk}/change/",
    ):
        response = admin_client.get(f"{RAG_ADMIN}/{page}")
        assert response.status_code == 200, page
        assert _inputs(response) <= {"csrfmiddlewaretoken"}, page
    for kind in ("collection", "document", "chunk"):
        assert admin_client.get(f"{RAG_ADMIN}/{kind}/add/").status_code == 403
    assert admin_client.get(f"{RAG_ADMIN}/chunk/{chunk.pk}/delete/").status_code == 403
    assert (
        admin_client.post(f"{RAG_ADMIN}/chunk/{chunk.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert Chunk.objects.filter(pk=chunk.pk).exists()

    # A tenant with collections cannot be deleted here (the database would cascade around the core).
    page = admin_client.get(f"{RAG_ADMIN}/tenant/{collection.tenant_id}/delete/")
    assert page.status_code == 200
    assert "Cannot delete tenant" in page.content.decode()
    assert f"tenant-a / {RAG_COLLECTION}" in html.unescape(page.content.decode())

    # Deleting a document: the confirmation page counts its chunks (no walk over them)...
    assert _found(client, RAG_COLLECTION, "cat purrs yarn") >= {"cats"}
    cat_chunks = [
        str(pk) for pk in Chunk.objects.filter(document=cats).values_list("pk", flat=True)
    ]
    postings = "SELECT count(*) FROM rag_postings WHERE chunk_id = ANY(%s::uuid[])"
    assert _count(postings, cat_chunks) > 0
    page = admin_client.get(f"{RAG_ADMIN}/document/{cats.pk}/delete/")
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert "Are you sure" in text
    assert f"{len(cat_chunks)} chunks with their vectors and search postings" in text
    # ...and the delete goes through the core: chunks, vectors and postings go with it.
    response = admin_client.post(f"{RAG_ADMIN}/document/{cats.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content
    assert not Document.objects.filter(pk=cats.pk).exists()
    assert _count("SELECT count(*) FROM rag_chunks WHERE document_id = %s", cats.pk) == 0
    assert _count(postings, cat_chunks) == 0
    assert core_deletes == [("delete_document", ("tenant-a", RAG_COLLECTION, "cats"))]
    assert "cats" not in _found(client, RAG_COLLECTION, "cat purrs yarn")
    assert _found(client, RAG_COLLECTION, "stock markets") == {"markets"}
    gone = _api(client, "GET", f"/api/v1/rag/documents/cats?collection={RAG_COLLECTION}")
    assert gone.status_code == 404
    markets.refresh_from_db()  # the other document is untouched

    # Deleting a collection (the bulk action: confirmation page, then delete) removes everything.
    _index(client, RAG_COLLECTION, {"cats": RAG_DOCS["cats"]})
    collection_chunks = _count(
        "SELECT count(*) FROM rag_chunks WHERE collection_id = %s", collection.pk
    )
    assert collection_chunks > 0
    action = {"action": "delete_selected", "_selected_action": [str(collection.pk)], "index": "0"}
    page = admin_client.post(f"{RAG_ADMIN}/collection/", action)
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert f"tenant-a / {RAG_COLLECTION}" in text
    assert f"{collection_chunks} chunks with their vectors and search postings" in text
    response = admin_client.post(f"{RAG_ADMIN}/collection/", {**action, "post": "yes"}, follow=True)
    assert response.status_code == 200
    assert "Successfully deleted 1 collection." in _messages(response)
    assert core_deletes[1:] == [("delete_collection", ("tenant-a", RAG_COLLECTION))]
    assert not Collection.objects.filter(pk=collection.pk).exists()
    for table in ("rag_documents", "rag_chunks", "rag_postings"):
        sql = f"SELECT count(*) FROM {table} WHERE collection_id = %s"
        assert _count(sql, collection.pk) == 0, table
    search = _api(
        client, "POST", "/api/v1/rag/search", {"query": "cat", "collection": RAG_COLLECTION}
    )
    _problem(search, 404, "not_found")
    listed = json.loads(_api(client, "GET", "/api/v1/rag/collections").content)
    assert RAG_COLLECTION not in {c["name"] for c in listed["collections"]}


def test_rag_admin_deletes_documents_in_bulk_through_the_core(
    admin_client: Any, client: Any, core_deletes: list[tuple[str, tuple[Any, ...]]]
) -> None:
    from synthstack_django.models import Chunk, Document

    collection = "admin-bulk"
    _index(client, collection, RAG_DOCS)
    documents = Document.objects.filter(
        collection__name=collection, collection__tenant__name="tenant-a"
    )
    ids = [str(pk) for pk in documents.values_list("pk", flat=True)]
    assert len(ids) == 2
    action = {"action": "delete_selected", "_selected_action": ids, "index": "0"}
    page = admin_client.post(f"{RAG_ADMIN}/document/", action)
    assert page.status_code == 200
    assert "Document: cats" in page.content.decode()
    response = admin_client.post(f"{RAG_ADMIN}/document/", {**action, "post": "yes"}, follow=True)
    assert "Successfully deleted 2 documents." in _messages(response)
    assert sorted(core_deletes) == [
        ("delete_document", ("tenant-a", collection, "cats")),
        ("delete_document", ("tenant-a", collection, "markets")),
    ]
    assert not documents.exists()
    assert not Chunk.objects.filter(collection__name=collection).exists()
    assert _found(client, collection, "cat markets") == set()  # the collection itself stays


def test_jobs_admin_lists_and_cancels_through_the_core(admin_client: Any, client: Any) -> None:
    from synthstack_django.models import Job

    accepted = client.post(
        "/api/v1/rag/index",
        json.dumps({"content": "Cats purr.", "source": "c.txt", "collection": "admin-jobs"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {SETTINGS_KEY}", "Prefer": "respond-async"},
    )
    assert accepted.status_code == 202, accepted.content
    job_id = json.loads(accepted.content)["id"]
    listing = admin_client.get(f"{RAG_ADMIN}/job/?status=queued")
    assert listing.status_code == 200
    assert job_id in listing.content.decode() and "0 / ? chunks" in listing.content.decode()
    page = admin_client.get(f"{RAG_ADMIN}/job/{job_id}/change/")
    assert page.status_code == 200 and "rag-index" in page.content.decode()
    assert admin_client.get(f"{RAG_ADMIN}/job/add/").status_code == 403
    action = {"action": "cancel_jobs", "_selected_action": [job_id], "index": "0"}
    response = admin_client.post(f"{RAG_ADMIN}/job/", action, follow=True)
    assert "Cancelled 1 job." in _messages(response)
    assert Job.objects.get(pk=job_id).status == "cancelled"
    response = admin_client.post(f"{RAG_ADMIN}/job/", action, follow=True)
    assert "Cancelled 0 jobs. 1 had ended already." in _messages(response)
    reread = _api(client, "GET", f"/api/v1/jobs/{job_id}")
    assert json.loads(reread.content)["status"] == "cancelled"


# ----------------------------------------------------------------------------------- the API


def test_a_settings_key_authenticates(client: Any) -> None:
    response = client.get(
        "/api/v1/embeddings/models",
        headers={"Authorization": f"Bearer {SETTINGS_KEY}", "X-Request-ID": "req-123"},
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response["X-Request-ID"] == "req-123"
    assert {name.lower() for name in response.headers} == {*CORE_HEADERS, "content-length"}


def test_no_key_is_the_cores_401(client: Any) -> None:
    response = client.get("/api/v1/embeddings/models")
    _problem(response, 401, "missing_api_key")


def test_unknown_path_is_the_cores_404(client: Any) -> None:
    for path in ("/api/v1/nothing-here", "/api/v1/embeddings/models/", "/health/", "/"):
        response = client.get(path, headers={"X-Request-ID": "req-404"})
        body = _problem(response, 404, "not_found")
        assert body["instance"] == path
        assert body["request_id"] == "req-404"
        # Exactly the core's headers: none of Django's middleware additions.
        assert {name.lower() for name in response.headers} == {*CORE_HEADERS, "content-length"}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/health", "GET"),
        ("DELETE", "/api/v1/embeddings/generate", "POST"),
        ("GET", "/api/v1/embeddings/batch", "POST"),
        ("OPTIONS", "/api/v1/embeddings/generate", "POST"),
        ("HEAD", "/ready", "GET"),
        ("PUT", "/api/v1/schema/", "GET, HEAD"),
    ],
)
def test_wrong_method_is_the_cores_405(client: Any, method: str, path: str, allow: str) -> None:
    response = client.generic(method, path)
    assert response.status_code == 405, response.content
    assert response["Allow"] == allow
    assert response["Content-Type"] == "application/problem+json"
    if method != "HEAD":
        _problem(response, 405, "method_not_allowed")


def test_body_goes_to_the_core_untouched(client: Any) -> None:
    auth = {"Authorization": f"Bearer {SETTINGS_KEY}"}
    response = client.post(
        "/api/v1/embeddings/generate",
        data=b'{"text": ',
        content_type="application/json",
        headers=auth,
    )
    _problem(response, 400, "malformed_body")
    response = client.post(
        "/api/v1/embeddings/generate", data=b"text=hello", content_type="text/plain", headers=auth
    )
    _problem(response, 415, "unsupported_media_type")
    response = client.post(
        "/api/v1/embeddings/generate",
        data=json.dumps({"text": "x" * 2_000_000}),
        content_type="application/json",
        headers=auth,
    )
    _problem(response, 413, "payload_too_large")


def test_health_and_readiness(client: Any) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert json.loads(health.content)["backend"] == "django"
    ready = client.get("/ready")
    assert ready.status_code in (200, 503)
    assert ready["Content-Type"] == "application/json"


# ---------------------------------------------------------------------------------- the docs


def test_schema_is_the_contract(client: Any) -> None:
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    schema = json.loads(response.content)
    assert schema["openapi"] == "3.1.0"
    assert schema == json.loads(served_contract())


@pytest.mark.parametrize("page", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_pages_use_local_assets(client: Any, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "/api/v1/schema/" in html
    assert "://" not in re.sub(r"<!--.*?-->", "", html, flags=re.S)  # nothing from the internet
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any(asset.endswith(".js") for asset in assets)
    for asset in assets:
        served = client.get(asset)  # the core's, as on FastAPI (tests/parity/test_docs_parity.py)
        assert served.status_code == 200, asset
        assert served.content, asset


# ------------------------------------------------------------------------ configure_django()


def test_configure_django_can_switch_databases(
    django_env: dict[str, str], database_url: str, client: Any
) -> None:
    """A later call (another test module's database) re-points Django and the core; back again."""
    from synthstack_django.models import Tenant

    other_env = {**django_env, "SYNTHSTACK_API_KEYS": "tenant-z:other-key-zzzz"}
    other_key = {"X-API-Key": "other-key-zzzz"}
    with embedded_postgres("django-adapter-other") as other_url:
        try:
            configure_django(other_url, other_env)
            names = Tenant.objects.values_list("name", flat=True)
            assert list(names) == []  # Django reads the new database...
            assert client.get("/api/v1/embeddings/models", headers=other_key).status_code == 200
            assert list(names.all()) == ["tenant-z"]  # ...and so does the core.
        finally:
            configure_django(database_url, django_env)
            _release_connections()

    assert configured_database_url() == database_url
    assert Tenant.objects.filter(name="tenant-a").exists()
    assert client.get("/api/v1/embeddings/models", headers=other_key).status_code == 401
    settings_key = {"X-API-Key": SETTINGS_KEY}
    assert client.get("/api/v1/embeddings/models", headers=settings_key).status_code == 200
