"""Modules and their operations: what the code declares, joined with what the contract says.

A feature is a :class:`Module`: a name, the class of its service, how to build that service from the
started stack, and optionally a fragment of OpenAPI for operations the main contract does not hold.
Its operations are the service's methods marked with :func:`operation`::

    class EmbeddingService:
        @operation("embeddings-batch")
        async def batch_request(self, body: BatchEmbeddingRequest) -> BatchEmbeddingResponse: ...

The contract gives an operation its path, method, tags, summary, success status and whether it needs
an API key (``security: []`` means it does not); the code gives only what the contract cannot: the
handler, its pydantic models (from the method's annotations, or the decorator's arguments where an
annotation cannot say it), whether the body is a form, and the setting holding its body limit.

A handler receives its arguments by name: ``body`` (the validated request model), ``params`` (the
validated path and query parameters; when the method has no ``params``, each field of the parameter
model is passed as the argument of the same name), ``tenant`` (the caller's tenant), ``caller``
(the :class:`~synthstack_core.security.Principal`), ``prefer`` (the request's ``Prefer`` header,
RFC 7240, as :func:`~synthstack_core.preferences.preferences` reads it) and ``request`` (the
:class:`~synthstack_core.http.HttpRequest` itself: its headers, the client's address). Operations
are computed from the classes, so an adapter can build its routes without starting anything.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, Union

from pydantic import BaseModel
from pydantic_settings import BaseSettings

from synthstack_core.providers.openai_client import OpenAIClient
from synthstack_core.replies import EventStream, RawReply, Reply, Result
from synthstack_core.schemas.common import Limits
from synthstack_core.security import ApiKeyAuthenticator
from synthstack_core.settings import Settings
from synthstack_core.stores.api_keys import ApiKeyRepository
from synthstack_core.stores.cache import Cache
from synthstack_core.stores.database import Database
from synthstack_core.stores.vectors import VectorStore

__all__ = [
    "ARGUMENTS",
    "Declaration",
    "Handler",
    "Module",
    "Operation",
    "Stack",
    "bind",
    "merged_contract",
    "operation",
    "operations_of",
]

S = TypeVar("S")
F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=BaseSettings)

#: The names a handler's parameters may have (beside the fields of its parameter model).
ARGUMENTS = frozenset({"body", "params", "tenant", "caller", "prefer", "request"})
_ATTRIBUTE = "__synthstack_operation__"
_METHODS = ("get", "put", "post", "delete", "patch")
_REPLIES = (Reply, RawReply, EventStream)

#: A bound handler, called with its arguments by name.
Handler = Callable[..., Result | Awaitable[Result]]


@dataclass(frozen=True)
class Declaration:
    """What :func:`operation` records on a method."""

    operation_id: str
    request: type[BaseModel] | None = None
    params: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    form: bool = False
    body_limit: str = "max_body_bytes"


def operation(
    operation_id: str,
    *,
    request: type[BaseModel] | None = None,
    params: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    form: bool = False,
    body_limit: str = "max_body_bytes",
) -> Callable[[F], F]:
    """Mark a service method as the handler of the contract's operation ``operation_id``.

    ``request``, ``params`` and ``response`` default to the annotations of the method's ``body``,
    ``params`` and return value (the one model in it beside :class:`Reply`, :class:`RawReply`,
    :class:`EventStream`). ``form``: the body is ``multipart/form-data``, read as it streams in up to
    the :class:`~synthstack_core.settings.Settings` attribute named by ``body_limit``.
    """
    declaration = Declaration(operation_id, request, params, response, form, body_limit)

    def mark(method: F) -> F:
        setattr(method, _ATTRIBUTE, declaration)
        return method

    return mark


class Stack(Protocol):
    """The started stack as a module's ``build`` sees it: shared parts and the services already
    built (modules are built in order)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def limits(self) -> Limits: ...
    @property
    def backend(self) -> str: ...
    @property
    def database(self) -> Database: ...
    @property
    def cache(self) -> Cache: ...
    @property
    def api_keys(self) -> ApiKeyRepository: ...
    @property
    def auth(self) -> ApiKeyAuthenticator: ...
    @property
    def vector_stores(self) -> Sequence[VectorStore]: ...
    @property
    def openai_client(self) -> OpenAIClient | None: ...
    def service(self, kind: type[S]) -> S: ...
    def module_settings(self, kind: type[C]) -> C: ...


@dataclass(frozen=True, eq=False)
class Module(Generic[S]):
    """One feature: its service, how the started stack builds it, and its operations (the
    service's methods marked with :func:`operation`)."""

    name: str
    service: type[S]
    build: Callable[[Stack], S]
    #: An OpenAPI fragment (``paths``, ``components``) for operations the main contract lacks.
    contract: Mapping[str, Any] | None = None
    #: The module's own settings (a pydantic-settings class with its own ``env_prefix``), read from
    #: the environment when the stack starts; ``build`` gets them with ``stack.module_settings``.
    settings: type[BaseSettings] | None = None
    #: A folder of Alembic revisions for the module's own tables: a branch of its own (its first
    #: revision has ``down_revision = None`` and a ``branch_labels`` naming the module), upgraded
    #: with the core's by ``synthstack migrate``, at start-up and by Django's ``migrate``.
    migrations: Path | None = None

    def declarations(self) -> list[tuple[str, Declaration]]:
        """``(method name, declaration)`` of each operation, in the class's order."""
        found: list[tuple[str, Declaration]] = []
        for name, member in inspect.getmembers(self.service, callable):
            declaration = getattr(member, _ATTRIBUTE, None)
            if isinstance(declaration, Declaration):
                found.append((name, declaration))
        return found


@dataclass(frozen=True)
class Operation:
    """One operation of the contract, with the code that serves it."""

    operation_id: str
    method: str
    path: str
    response_model: type[BaseModel]
    request_model: type[BaseModel] | None = None
    #: Path and query parameters, validated together (``None``: the operation takes none).
    params_model: type[BaseModel] | None = None
    #: The status of a successful answer (the contract's 2xx response).
    status: int = 200
    authenticated: bool = True
    tags: tuple[str, ...] = ()
    summary: str = ""
    #: The request body is ``multipart/form-data`` (``request_model`` is its form model), read by
    #: the core as it streams in, up to the setting named by ``body_limit``.
    form: bool = False
    #: The :class:`~synthstack_core.settings.Settings` attribute holding this operation's body limit.
    body_limit: str = "max_body_bytes"
    #: The module serving it, and the name of the method of that module's service.
    module: str = ""
    handler: str = ""
    #: The handler's parameters, by name (``body``, ``params``, ``tenant``, ``caller``, ``prefer``,
    #: ``request``, or a field of ``params_model``).
    arguments: tuple[str, ...] = field(default_factory=tuple)


def merged_contract(base: Mapping[str, Any], modules: Iterable[Module[Any]]) -> dict[str, Any]:
    """``base`` with the modules' fragments added (their paths and components; a name already
    there is an error, not an override)."""
    document = {**base, "paths": dict(base.get("paths", {}))}
    components = {kind: dict(items) for kind, items in base.get("components", {}).items()}
    for module in modules:
        fragment = module.contract or {}
        for path, item in fragment.get("paths", {}).items():
            if path in document["paths"]:
                raise ValueError(f"module {module.name!r} redefines the path {path}")
            document["paths"][path] = item
        for kind, items in fragment.get("components", {}).items():
            known = components.setdefault(kind, {})
            for name, value in items.items():
                if name in known:
                    raise ValueError(f"module {module.name!r} redefines components.{kind}.{name}")
                known[name] = value
    if components:
        document["components"] = components
    return document


def operations_of(modules: Sequence[Module[Any]], contract: Mapping[str, Any]) -> list[Operation]:
    """Every operation of ``modules``, described by ``contract``, in the contract's order."""
    described: dict[str, tuple[int, str, str, Mapping[str, Any]]] = {}
    for path, item in contract.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                spec = item[method]
                described[spec["operationId"]] = (len(described), path, method.upper(), spec)
    found: list[tuple[int, Operation]] = []
    seen: set[str] = set()
    for module in modules:
        for name, declaration in module.declarations():
            op_id = declaration.operation_id
            if op_id in seen:
                raise ValueError(f"operation {op_id!r} is declared twice")
            seen.add(op_id)
            if op_id not in described:
                raise ValueError(f"operation {op_id!r} ({module.name}) is not in the contract")
            order, path, method, spec = described[op_id]
            found.append((order, _operation(module, name, declaration, path, method, spec)))
    return [op for _, op in sorted(found, key=lambda pair: pair[0])]


def _operation(
    module: Module[Any],
    name: str,
    declaration: Declaration,
    path: str,
    method: str,
    spec: Mapping[str, Any],
) -> Operation:
    function = getattr(module.service, name)
    hints = typing.get_type_hints(function)
    parameters = [p for p in inspect.signature(function).parameters if p != "self"]
    request = declaration.request or _model(hints.get("body"))
    params = declaration.params or _model(hints.get("params"))
    response = declaration.response or _model(hints.get("return"))
    where = f"{module.service.__name__}.{name} ({declaration.operation_id})"
    if response is None:
        raise TypeError(f"{where}: no response model (annotate the return value or say it)")
    if ("body" in parameters) != (request is not None):
        raise TypeError(f"{where}: a request model needs a `body` parameter, and the reverse")
    fields = (
        set(params.model_fields) if params is not None and "params" not in parameters else set()
    )
    unknown = [p for p in parameters if p not in ARGUMENTS | fields]
    if unknown or not fields <= set(parameters):
        raise TypeError(f"{where}: parameters {parameters} do not fit {sorted(ARGUMENTS | fields)}")
    success = sorted(int(code) for code in spec["responses"] if str(code).startswith("2"))
    return Operation(
        operation_id=declaration.operation_id,
        method=method,
        path=path,
        response_model=response,
        request_model=request,
        params_model=params,
        status=success[0] if success else 200,
        authenticated=spec.get("security") != [],
        tags=tuple(spec.get("tags", ())),
        summary=str(spec.get("summary", "")),
        form=declaration.form,
        body_limit=declaration.body_limit,
        module=module.name,
        handler=name,
        arguments=tuple(parameters),
    )


def _model(annotation: object) -> type[BaseModel] | None:
    """The one pydantic model in ``annotation`` (a model, or a union of one with replies)."""
    if annotation is None:
        return None
    origin = typing.get_origin(annotation)
    members = (
        typing.get_args(annotation)
        if origin is Union or origin is types.UnionType
        else (annotation,)
    )
    models = [
        m
        for m in members
        if isinstance(m, type) and issubclass(m, BaseModel) and not issubclass(m, _REPLIES)
    ]
    if len(models) != 1:
        raise TypeError(f"{annotation!r} does not name exactly one model")
    return models[0]


def bind(operations: Iterable[Operation], services: Mapping[str, object]) -> dict[str, Handler]:
    """Each operation's handler, bound to its module's started service."""
    handlers: dict[str, Handler] = {}
    for op in operations:
        handler: Handler = getattr(services[op.module], op.handler)
        handlers[op.operation_id] = handler
    return handlers
