"""The registry: operations described by the contract, served by the services' marked methods."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from synthstack_core.contract import load_contract
from synthstack_core.modules import BUILTIN_MODULES
from synthstack_core.operations import all_operations, by_id, operations_for
from synthstack_core.registry import Module, bind, merged_contract, operation, operations_of
from synthstack_core.replies import Reply


class Echo(BaseModel):
    text: str


class Item(BaseModel):
    name: str
    page: int = 1


FRAGMENT: dict[str, Any] = {
    "paths": {
        "/echo": {
            "post": {
                "operationId": "echo",
                "tags": ["plugins"],
                "summary": "Echo a text",
                "responses": {"201": {"description": "The text"}},
            }
        },
        "/items/{name}": {
            "get": {
                "operationId": "item",
                "security": [],
                "responses": {"200": {"description": "An item"}},
            }
        },
    },
    "components": {"schemas": {"Echo": {"type": "object"}}},
}


class EchoService:
    @operation("echo")
    async def echo(self, body: Echo, tenant: str) -> Echo | Reply:
        return Echo(text=f"{tenant}: {body.text}")

    @operation("item", params=Item)
    def item(self, name: str, page: int) -> Item:
        return Item(name=name, page=page)


ECHO = Module("echo", EchoService, lambda stack: EchoService(), contract=FRAGMENT)


def _operations(*modules: Module[Any]) -> list[Any]:
    return operations_of(modules, merged_contract(load_contract(), modules))


def test_the_contract_describes_each_operation() -> None:
    create = by_id("rag-create-collection")
    assert (create.method, create.path, create.status) == ("POST", "/api/v1/rag/collections", 201)
    assert create.tags == ("rag",) and create.summary == "Create a collection"
    assert create.authenticated and not by_id("health-readiness").authenticated
    upload = by_id("rag-upload-document")
    assert upload.form and upload.body_limit == "max_upload_bytes"
    assert by_id("rag-delete-collection").arguments == ("tenant", "name")
    assert [op.operation_id for op in operations_for(BUILTIN_MODULES)] == [
        spec["operationId"]
        for item in load_contract()["paths"].values()
        for method, spec in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    # The environment's operations: the built-in ones first, then the installed plugins'.
    assert all_operations()[: len(operations_for(BUILTIN_MODULES))] == operations_for(
        BUILTIN_MODULES
    )


def test_a_module_contributes_operations_with_its_fragment() -> None:
    echo, item = _operations(ECHO)
    assert (echo.path, echo.method, echo.status, echo.tags) == ("/echo", "POST", 201, ("plugins",))
    assert (echo.request_model, echo.response_model, echo.arguments) == (
        Echo,
        Echo,
        ("body", "tenant"),
    )
    assert (item.params_model, item.authenticated, item.arguments) == (
        Item,
        False,
        ("name", "page"),
    )
    handlers = bind([echo, item], {"echo": EchoService()})
    assert handlers["item"](name="a", page=2) == Item(name="a", page=2)


def test_an_operation_outside_the_contract_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'echo' \(echo\) is not in the contract"):
        operations_of([ECHO], load_contract())


def test_a_fragment_may_not_redefine_the_contract() -> None:
    clash = Module("clash", EchoService, lambda stack: EchoService(), contract={
        "paths": {"/health": {"get": {"operationId": "x", "responses": {}}}}
    })  # fmt: skip
    with pytest.raises(ValueError, match="redefines the path /health"):
        merged_contract(load_contract(), [clash])
    with pytest.raises(ValueError, match="redefines the path /echo"):
        merged_contract(merged_contract(load_contract(), [ECHO]), [ECHO])
    schema = Module("schema", EchoService, lambda stack: EchoService(), contract={
        "components": {"schemas": {"Echo": {"type": "string"}}}
    })  # fmt: skip
    with pytest.raises(ValueError, match=r"redefines components\.schemas\.Echo"):
        merged_contract(load_contract(), [ECHO, schema])


def test_an_operation_is_declared_once() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        _operations(
            *BUILTIN_MODULES, Module("again", BUILTIN_MODULES[0].service, BUILTIN_MODULES[0].build)
        )


def test_a_handler_whose_parameters_do_not_fit_is_refused() -> None:
    class Wrong:
        @operation("echo")
        async def echo(self, body: Echo, user: str) -> Echo:
            return body

    with pytest.raises(TypeError, match="do not fit"):
        _operations(Module("wrong", Wrong, lambda stack: Wrong(), contract=FRAGMENT))
