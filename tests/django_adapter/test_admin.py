"""The Django adapter end to end, with Django's test client on a real (embedded) PostgreSQL.

- the admin: a superuser logs in, adds a tenant and an API key (created by the core, its secret
  shown once and stored nowhere), the key authenticates API calls, and the admin's revoke action
  (through the core) makes the next call a 401;
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

from synthstack_core.contract import load_contract
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
    assert schema == load_contract()


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
        served = client.get(asset)
        try:
            assert served.status_code == 200, asset
            assert b"".join(served.streaming_content)
        finally:
            served.close()


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
