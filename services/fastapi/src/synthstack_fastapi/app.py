"""The FastAPI application.

Thin by design (DESIGN.md section 3): every route comes from the stack's operations (the built-in
modules' and the installed plugins', ``SynthStack.operations``) and hands the raw request to
``SynthStack.handle``; the core authenticates, validates and renders. The route
declarations carry the core's pydantic models only so that FastAPI's generated schema can be checked
against the contract. The API docs (``/openapi.json``, ``/docs``, ``/redoc`` and the Django
backend's ``/api/v1/schema/``, ``/api/v1/docs/``, ``/api/v1/redoc/``) come from
``synthstack_core.apidocs`` (the contract with the plugins' fragments merged in), byte for byte
what the Django backend serves.

The app may be mounted under a prefix in a host application (``host.mount("/ml", create_app())``):
routes match the path below the prefix (``root_path``), problems name the full path the client used,
and the docs pages and the served document refer to the prefix. Starlette does not run a mounted
app's lifespan, so the host runs it from its own (``app.router.lifespan_context(app)``, see the
README). :class:`ApiKeyAuth` is the core's key authentication as a dependency of the host's own
routes, and :func:`problem_handler` renders the core's problems there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import StreamingResponse

from synthstack_core import Operation, Principal, Settings, SynthStack, __version__
from synthstack_core.apidocs import ASSET_PREFIX, DOCS_PATHS, docs_response
from synthstack_core.http import (
    HttpRequest,
    HttpResponse,
    error_response,
    method_not_allowed_response,
    not_found_response,
    request_id_of,
)
from synthstack_core.operations import allowed_methods

__all__ = ["ApiKeyAuth", "create_app", "problem_handler"]

# Routed whatever the method: the core answers the ones it does not serve with its 405.
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _to_response(response: HttpResponse) -> Response:
    if response.stream is not None:
        # Starlette closes the stream when the client disconnects, which stops the work behind it.
        return StreamingResponse(
            response.stream, status_code=response.status, headers=dict(response.headers)
        )
    return Response(
        content=response.body, status_code=response.status, headers=dict(response.headers)
    )


def _path(request: Request) -> str:
    """The decoded path, as ASGI gives it (``request.url.path`` would drop a decoded newline and
    re-encode ``?``; Django's ``request.path`` does neither)."""
    path: str = request.scope["path"]
    return path


def _root_path(request: Request) -> str:
    """The prefix the app is mounted under (``""`` at the root)."""
    root_path: str = request.scope.get("root_path", "")
    return root_path


def _route_path(request: Request) -> str:
    """The path below the mount prefix: what the routes match (the contract's paths)."""
    return _path(request).removeprefix(_root_path(request))


def _headers(request: Request) -> dict[str, str]:
    """Lower-case names; a repeated header's values joined by ``,`` as WSGI servers join them for
    Django, so the core sees every value on both backends (and decides, e.g. on credentials)."""
    return {name: ",".join(request.headers.getlist(name)) for name in request.headers}


async def _read_body(request: Request, limit: int) -> bytes:
    """At most ``limit + 1`` bytes: enough for the core to tell the body is too large."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


def _endpoint(stack: SynthStack, operation: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        body = b""
        if operation.request_model is not None and not operation.form:
            body = await _read_body(request, stack.body_limit(operation))
        core_request = HttpRequest(
            method=request.method,
            path=_path(request),
            headers=_headers(request),
            body=body,
            path_params={name: str(value) for name, value in request.path_params.items()},
            query=dict(request.query_params.items()),
            # An upload is read by the core as it arrives, with the operation's limit.
            stream=request.stream() if operation.form else None,
            client=request.client.host if request.client else None,
        )
        return _to_response(await stack.handle(operation, core_request))

    endpoint.__name__ = operation.operation_id.replace("-", "_")
    return endpoint


def _inline_definitions(node: Any, definitions: dict[str, Any]) -> Any:
    """``node`` with every ``#/$defs/...`` reference replaced by its definition (none recurse)."""
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline_definitions(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inline_definitions(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_definitions(item, definitions) for item in node]
    return node


def _request_body_schema(operation: Operation) -> dict[str, Any] | None:
    if operation.request_model is None:
        return None
    schema = operation.request_model.model_json_schema()
    schema = _inline_definitions(schema, schema.pop("$defs", {}))
    return {
        "requestBody": {
            "required": True,
            "content": {
                ("multipart/form-data" if operation.form else "application/json"): {
                    "schema": schema
                }
            },
        }
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI app of a :class:`SynthStack` built from ``settings`` (default: environment)."""
    stack = SynthStack(settings, backend="fastapi")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await stack.start()
        try:
            yield
        finally:
            await stack.aclose()

    app = FastAPI(
        title="SynthStack",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # Paths are exact, as on the Django backend: no redirect from `/path/` to `/path`.
        redirect_slashes=False,
        # The core traces, measures and logs each request, the same on both backends
        # (synthstack_core.tracing): FastAPI's own OpenTelemetry spans, metrics and logs would
        # add a second server span above the core's on this backend only.
        telemetry={"tracing": False, "operation_spans": False, "metrics": False, "logs": False},
    )
    app.state.stack = stack

    for operation in stack.operations:
        app.add_api_route(
            operation.path,
            _endpoint(stack, operation),
            methods=[operation.method],
            operation_id=operation.operation_id,
            response_model=operation.response_model,
            status_code=operation.status,
            tags=list(operation.tags),
            summary=operation.summary,
            openapi_extra=_request_body_schema(operation),
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_exception(request: Request, exc: StarletteHTTPException) -> Response:
        headers = _headers(request)
        if exc.status_code == 404:
            return _to_response(not_found_response(_path(request), headers))
        if exc.status_code == 405:
            return _to_response(
                method_not_allowed_response(
                    request.method,
                    _path(request),
                    headers,
                    allowed_methods(_route_path(request), stack.operations),
                )
            )
        return _to_response(
            error_response(exc, request_id=request_id_of(headers), path=_path(request))
        )

    # The API docs (both backends' URLs) and their assets: the core answers, whatever the method.
    async def docs(request: Request) -> Response:
        return _to_response(
            docs_response(
                request.method,
                _route_path(request),
                _headers(request),
                root_path=_root_path(request),
                modules=stack.modules,
            )
        )

    for docs_path in (*DOCS_PATHS, ASSET_PREFIX + "{name:path}"):
        app.add_route(docs_path, docs, methods=_ANY_METHOD, include_in_schema=False)

    return app


class ApiKeyAuth:
    """The core's API-key authentication as a FastAPI dependency for a host application's routes.

    ``Depends(ApiKeyAuth(app))`` gives the caller's :class:`~synthstack_core.security.Principal`
    (``principal.tenant``), checked by the service of ``app`` (a :func:`create_app` app, started by
    its lifespan), exactly as for SynthStack's own operations. A missing, unknown or revoked key
    raises the core's :class:`~synthstack_core.errors.Unauthenticated`; register
    :func:`problem_handler` for ``synthstack_core.SynthStackError`` on the host to
    answer it with the core's 401 problem.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, request: Request) -> Principal:
        """The caller of ``request``."""
        stack: SynthStack = self.app.state.stack
        return await stack.auth.authenticate(_headers(request))


async def problem_handler(request: Request, exc: Exception) -> Response:
    """An exception handler rendering any error as the core's problem+json (a
    :class:`~synthstack_core.errors.SynthStackError` as its own problem, anything else as a bare
    500), with the request's id and full path, as SynthStack's own operations answer."""
    headers = _headers(request)
    return _to_response(error_response(exc, request_id=request_id_of(headers), path=_path(request)))
