"""The API documentation both backends serve: the contract, Swagger UI and ReDoc, all local.

Two sets of URLs, each on both backends, so that a client generator or a frontend pointed at either
keeps working after a switch of backend:

========================  ===================  ========================
what                      FastAPI's own URLs   Django's own URLs
========================  ===================  ========================
the contract, as JSON     ``/openapi.json``    ``/api/v1/schema/``
Swagger UI                ``/docs``            ``/api/v1/docs/``
ReDoc                     ``/redoc``           ``/api/v1/redoc/``
========================  ===================  ========================

Each page reads the document of its own set. The pages load their scripts, styles and icon from
:data:`ASSET_PREFIX` on the same server: Swagger UI's and ReDoc's builds are the files of the
``drf-spectacular-sidecar`` wheel (both adapters depend on it; it is found, not imported, since
importing it imports Django), and Swagger UI is started by this package's own
``data/swagger-ui-init.js`` (no inline script). No page refers to another host, and the pages'
``Content-Security-Policy`` lets the browser fetch from this server only.

:func:`docs_response` answers every request to these paths; the adapters only route them here. An
application mounted under a prefix (``/ml`` in a host project) passes it as ``root_path``: the pages
then load their assets and document from under the prefix, and the served document's ``servers``
names the prefix, so that "Try it out" calls ``/ml/...``.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from synthstack_core.contract import load_contract
from synthstack_core.errors import uri_path
from synthstack_core.http import (
    HttpResponse,
    method_not_allowed_response,
    not_found_response,
    request_id_of,
)
from synthstack_core.modules import installed_modules
from synthstack_core.operations import contract_for, contract_json_for
from synthstack_core.registry import Module

__all__ = [
    "ASSET_PREFIX",
    "DOCS_PATHS",
    "DocsPage",
    "docs_response",
    "is_docs_path",
    "served_contract",
]

#: Where the pages' scripts, styles and icon are served (``ASSET_PREFIX + name``).
ASSET_PREFIX = "/static/docs/"


@dataclass(frozen=True)
class DocsPage:
    """One documentation URL: the contract itself, or a page reading ``schema_url``."""

    kind: Literal["schema", "swagger", "redoc"]
    schema_url: str


#: Every documentation URL, on both backends.
DOCS_PATHS: Mapping[str, DocsPage] = {
    "/openapi.json": DocsPage("schema", "/openapi.json"),
    "/docs": DocsPage("swagger", "/openapi.json"),
    "/redoc": DocsPage("redoc", "/openapi.json"),
    "/api/v1/schema/": DocsPage("schema", "/api/v1/schema/"),
    "/api/v1/docs/": DocsPage("swagger", "/api/v1/schema/"),
    "/api/v1/redoc/": DocsPage("redoc", "/api/v1/schema/"),
}

_METHODS = ("GET", "HEAD")

#: The assets the pages use: served name -> (where it is, media type).
_SIDECAR_ASSETS: Mapping[str, tuple[str, str]] = {
    "swagger-ui-bundle.js": ("swagger-ui-dist/swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui-standalone-preset.js": (
        "swagger-ui-dist/swagger-ui-standalone-preset.js",
        "text/javascript",
    ),
    "swagger-ui.css": ("swagger-ui-dist/swagger-ui.css", "text/css"),
    "favicon-32x32.png": ("swagger-ui-dist/favicon-32x32.png", "image/png"),
    "redoc.standalone.js": ("redoc/bundles/redoc.standalone.js", "text/javascript"),
}
_OWN_ASSETS: Mapping[str, tuple[str, str]] = {
    "swagger-ui-init.js": ("swagger-ui-init.js", "text/javascript"),
}

# Swagger UI and ReDoc set inline styles and ReDoc starts its search worker from a blob: URL;
# everything else comes from this server only.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-cache"),
    ("X-Content-Type-Options", "nosniff"),
)
# The assets change only with the sidecar wheel: a day is short enough.
_ASSET_HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "public, max-age=86400"),
    ("X-Content-Type-Options", "nosniff"),
)


def is_docs_path(path: str) -> bool:
    """Whether :func:`docs_response` serves ``path`` (a page, a document or an asset)."""
    return path in DOCS_PATHS or path.startswith(ASSET_PREFIX)


def _sidecar_directory() -> Path | None:
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "drf_spectacular_sidecar"


@functools.cache
def _asset(name: str) -> tuple[bytes, str] | None:
    """The bytes and media type of an asset, read once (None: no such asset)."""
    if name in _OWN_ASSETS:
        relative, media_type = _OWN_ASSETS[name]
        return (Path(__file__).with_name("data") / relative).read_bytes(), media_type
    if name in _SIDECAR_ASSETS:
        directory = _sidecar_directory()
        relative, media_type = _SIDECAR_ASSETS[name]
        if directory is None or not (directory / relative).is_file():
            return None
        return (directory / relative).read_bytes(), media_type
    return None


def _title() -> str:
    return str(load_contract().get("info", {}).get("title", "SynthStack"))


def _page(title: str, head: str, body: str, assets: str) -> bytes:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n'
        "<head>\n"
        '  <meta charset="utf-8">\n'
        '  <meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"  <title>{html.escape(title)}</title>\n"
        f'  <link rel="icon" type="image/png" href="{assets}favicon-32x32.png">\n'
        f"{head}"
        "</head>\n"
        "<body>\n"
        f"{body}"
        "</body>\n"
        "</html>\n"
    ).encode()


@functools.cache
def page_html(page: DocsPage, root_path: str = "") -> bytes:
    """The HTML of a Swagger UI or ReDoc page reading ``page.schema_url``, both it and the assets
    under ``root_path`` (an already percent-encoded path prefix, or ``""``)."""
    schema_url = html.escape(root_path + page.schema_url)
    assets = html.escape(root_path + ASSET_PREFIX)
    if page.kind == "swagger":
        return _page(
            f"{_title()} API \N{EN DASH} Swagger UI",
            f'  <link rel="stylesheet" href="{assets}swagger-ui.css">\n',
            '  <div id="swagger-ui"></div>\n'
            f'  <script src="{assets}swagger-ui-bundle.js"></script>\n'
            f'  <script src="{assets}swagger-ui-standalone-preset.js"></script>\n'
            f'  <script src="{assets}swagger-ui-init.js"'
            f' data-schema-url="{schema_url}"></script>\n',
            assets,
        )
    if page.kind == "redoc":
        return _page(
            f"{_title()} API \N{EN DASH} ReDoc",
            "",
            f'  <redoc spec-url="{schema_url}"></redoc>\n'
            f'  <script src="{assets}redoc.standalone.js"></script>\n',
            assets,
        )
    raise ValueError(f"{page.kind} is not a page")


def served_contract(root_path: str = "", modules: tuple[Module[Any], ...] | None = None) -> bytes:
    """The contract with the fragments of ``modules`` (default: the environment's, as the
    operations) merged in, as served under ``root_path``: the merged document itself without a
    prefix, else with ``servers`` naming the prefix (the contract's ``/`` would be the host's
    root)."""
    return _served_contract(root_path, installed_modules() if modules is None else modules)


@functools.cache
def _served_contract(root_path: str, modules: tuple[Module[Any], ...]) -> bytes:
    if not root_path:
        return contract_json_for(modules)
    document = dict(contract_for(modules))
    document["servers"] = [{**server, "url": root_path} for server in document.get("servers", [])]
    return json.dumps(document, separators=(",", ":")).encode()


def docs_response(
    method: str,
    path: str,
    headers: Mapping[str, str],
    *,
    root_path: str = "",
    modules: tuple[Module[Any], ...] | None = None,
) -> HttpResponse:
    """The answer to any request for a documentation path (see :func:`is_docs_path`).

    ``path`` is the path within the application and ``root_path`` the (decoded) prefix it is
    mounted under (``""`` at the root): problems name the full path, pages and the document refer
    to the prefix. The document served is the contract with the fragments of ``modules`` (default:
    the environment's) merged in. GET and HEAD are served (HEAD with the body, which the servers
    drop); any other method is the core's 405 naming them; an unknown asset is the core's 404.
    """
    full_path = root_path + path
    if method.upper() not in _METHODS:
        return method_not_allowed_response(method, full_path, headers, list(_METHODS))
    request_id = request_id_of(headers)
    prefix = uri_path(root_path) if root_path else ""
    page = DOCS_PATHS.get(path)
    if page is not None:
        if page.kind == "schema":
            return HttpResponse(
                status=200,
                headers=[
                    ("Content-Type", "application/json"),
                    ("X-Request-ID", request_id),
                    *_PAGE_HEADERS,
                ],
                body=served_contract(prefix, modules),
            )
        return HttpResponse(
            status=200,
            headers=[
                ("Content-Type", "text/html; charset=utf-8"),
                ("X-Request-ID", request_id),
                *_PAGE_HEADERS,
                ("Content-Security-Policy", _CSP),
                ("Referrer-Policy", "no-referrer"),
            ],
            body=page_html(page, prefix),
        )
    asset = _asset(path.removeprefix(ASSET_PREFIX)) if path.startswith(ASSET_PREFIX) else None
    if asset is None:
        return not_found_response(full_path, headers)
    body, media_type = asset
    charset = "; charset=utf-8" if media_type.startswith("text/") else ""
    return HttpResponse(
        status=200,
        headers=[
            ("Content-Type", media_type + charset),
            ("X-Request-ID", request_id),
            *_ASSET_HEADERS,
        ],
        body=body,
    )
