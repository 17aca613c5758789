"""Both backends serve both sets of documentation URLs, the same bytes, and nothing from another host.

FastAPI's ``/openapi.json``, ``/docs``, ``/redoc`` and Django's ``/api/v1/schema/``,
``/api/v1/docs/``, ``/api/v1/redoc/`` are all served by each backend (``synthstack_core.apidocs``),
so a client generator or a frontend pointed at one keeps working after a switch. Whether the pages
really render is checked in a browser by ``tests/docs/test_docs_render.py``, which also records
every request the browser makes.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from synthstack_core.apidocs import served_contract
from synthstack_core.contract import contract_json, load_contract

SCHEMAS = ["/openapi.json", "/api/v1/schema/"]
PAGES = ["/docs", "/redoc", "/api/v1/docs/", "/api/v1/redoc/"]
REQUEST_ID = {"X-Request-ID": "docs-parity"}

# An absolute URL: scheme-relative (//host) or with a scheme, in an attribute, CSS or script.
_ABSOLUTE = re.compile(r"(?i)(?:\b[a-z][a-z0-9+.-]*:)?//([^/\s\"'<>()\\]+)")
_ABSOLUTE_URL = re.compile(r"(?i)^(?:[a-z][a-z0-9+.-]*:)?//")
_REFERENCES = re.compile(r'(?:src|href)="([^"]+)"')
_CSS_URLS = re.compile(r"""(?i)(?:url\(\s*["']?|@import\s+["'])([^"')\s]+)""")


def _both(clients: dict[str, httpx.Client], method: str, path: str) -> dict[str, httpx.Response]:
    return {
        name: client.request(method, path, headers=REQUEST_ID) for name, client in clients.items()
    }


def _same(responses: dict[str, httpx.Response], *, body: bool = True) -> httpx.Response:
    fastapi, django = responses["fastapi"], responses["django"]
    assert fastapi.status_code == django.status_code, (fastapi.text[:200], django.text[:200])
    assert dict(fastapi.headers) == dict(django.headers)
    if body:
        assert fastapi.content == django.content
    return fastapi


def _foreign_hosts(text: str, server: str = "testserver") -> set[str]:
    return {host for host in _ABSOLUTE.findall(text) if host.split(":")[0] != server}


@pytest.mark.parametrize("path", SCHEMAS)
def test_both_backends_serve_the_contract_at_both_urls(
    clients: dict[str, httpx.Client], path: str
) -> None:
    response = _same(_both(clients, "GET", path))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    # The contract with the installed plugins' fragments merged in; without plugins, its own bytes.
    assert response.content == served_contract()
    merged = json.loads(response.content)
    assert {k: v for k, v in merged.items() if k not in ("paths", "components")} == {
        k: v for k, v in load_contract().items() if k not in ("paths", "components")
    }
    assert load_contract()["paths"].items() <= merged["paths"].items()
    if merged == load_contract():
        assert response.content == contract_json()


@pytest.mark.parametrize("path", PAGES)
def test_both_backends_serve_every_page_with_local_assets_only(
    clients: dict[str, httpx.Client], path: str
) -> None:
    response = _same(_both(clients, "GET", path))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page = response.text
    assert _foreign_hosts(page) == set(), path
    schema_url = "/openapi.json" if path in ("/docs", "/redoc") else "/api/v1/schema/"
    assert f'"{schema_url}"' in page  # each page reads the document of its own set
    references = _REFERENCES.findall(page)
    assert any(ref.endswith(".js") for ref in references) and references
    for reference in references:
        assert reference.startswith("/static/docs/"), reference
        asset = _same(_both(clients, "GET", reference))
        assert asset.status_code == 200, reference
        assert asset.content, reference
        kind = asset.headers["content-type"]
        assert kind.startswith(
            {"js": "text/javascript", "css": "text/css", "png": "image/png"}[
                reference.rsplit(".", 1)[1]
            ]
        ), (reference, kind)
        if reference.endswith(".css"):
            # Everything a stylesheet loads (url(), @import) comes from this server.
            loaded = _CSS_URLS.findall(asset.text)
            assert loaded  # the scan finds what there is (inline data: images)
            assert [url for url in loaded if _ABSOLUTE_URL.match(url)] == [], reference
        if reference.endswith("swagger-ui-init.js"):  # ours: no absolute URL at all
            assert _ABSOLUTE.findall(asset.text) == [], reference


@pytest.mark.parametrize("path", [*SCHEMAS, *PAGES, "/static/docs/swagger-ui.css"])
def test_head_is_get_without_a_body_and_other_methods_are_405(
    clients: dict[str, httpx.Client], path: str
) -> None:
    got = _same(_both(clients, "GET", path))
    head = _same(_both(clients, "HEAD", path), body=False)
    assert head.status_code == 200
    assert head.headers["content-type"] == got.headers["content-type"]
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        refused = _same(_both(clients, method, path))
        assert refused.status_code == 405, (method, path)
        assert refused.headers["allow"] == "GET, HEAD"
        assert refused.json()["code"] == "method_not_allowed"
        assert refused.json()["instance"] == path


@pytest.mark.parametrize(
    "path",
    ["/static/docs/nothing.js", "/static/docs/", "/static/docs/../../settings.py", "/docs/"],
)
def test_an_unknown_docs_path_is_the_same_404(clients: dict[str, httpx.Client], path: str) -> None:
    response = _same(_both(clients, "GET", path))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
