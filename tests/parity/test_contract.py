"""The code matches ``contracts/openapi.yaml``, with the installed plugins' fragments merged in (the
served document): the registry, FastAPI's generated schema, and what both backends serve as their
schema. A plugin's operations are checked like the built-in ones (its pydantic models against its
fragment's schemas)."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
from openapi_spec_validator import OpenAPIV31SpecValidator

from synthstack_core.apidocs import served_contract
from synthstack_core.contract import load_contract
from synthstack_core.operations import OPERATIONS

IGNORED_KEYS = {"title", "description", "default", "examples", "summary"}


def _resolve(node: Any, document: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _resolve(target, document)
        return {k: _resolve(v, document) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(item, document) for item in node]
    return node


def _canonical(node: Any) -> Any:
    """One spelling per meaning: ``type: [a, null]`` = ``anyOf``, no titles or defaults."""
    if isinstance(node, list):
        return [_canonical(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: v for k, v in node.items() if k not in IGNORED_KEYS}
    if isinstance(node.get("properties"), dict):
        # Property names are data, not annotations: a property called `title` stays.
        node["properties"] = {
            name: _canonical(schema) for name, schema in node["properties"].items()
        }
        properties = node.pop("properties")
        out = _canonical(node)
        out["properties"] = properties
        return out
    if isinstance(node.get("type"), list):
        types = node.pop("type")
        rest = dict(node)
        node = {"anyOf": [{**rest, "type": t} if t != "null" else {"type": "null"} for t in types]}
    out = {k: _canonical(v) for k, v in node.items()}
    for key in ("required", "enum"):
        if key in out:
            out[key] = sorted(out[key], key=str)
    if "anyOf" in out:
        flat: list[Any] = []
        for variant in out["anyOf"]:  # anyOf[anyOf[a, b], c] is anyOf[a, b, c]
            nested = (
                variant.get("anyOf") if isinstance(variant, dict) and len(variant) == 1 else None
            )
            flat.extend(nested if nested is not None else [variant])
        variants = sorted(flat, key=lambda v: json.dumps(v, sort_keys=True))
        out["anyOf"] = variants
        if len(variants) == 1:
            return variants[0]
    if "const" in out and "enum" not in out:
        out.setdefault("type", "string" if isinstance(out["const"], str) else out.get("type"))
    return out


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method.upper()): spec
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


def _body_schema(spec: dict[str, Any], document: dict[str, Any]) -> Any:
    body = spec.get("requestBody")
    if body is None:
        return None
    (media_type,) = body["content"]  # one media type per request body
    return media_type, _canonical(_resolve(body["content"][media_type]["schema"], document))


def _ok_schema(spec: dict[str, Any], document: dict[str, Any]) -> Any:
    """The success response's schema: its JSON one, or (an operation answering only text, such as
    ``/metrics``) its text one, which the route's model describes in FastAPI's document; of an
    operation answering only server-sent events (``/jobs/{job_id}/events``), the schema of its
    events' data (but the ``error`` event's problem), which is the route's model."""
    success = next(code for code in spec["responses"] if str(code).startswith("2"))
    content = spec["responses"][success]["content"]
    if "application/json" not in content and "text/event-stream" in content:
        stream = _resolve(content["text/event-stream"]["schema"], document)
        (data,) = [
            event["properties"]["data"]["contentSchema"]
            for event in stream["oneOf"]
            if event["properties"]["event"]["const"] != "error"
        ]
        return _canonical(data)
    media_type = "application/json" if "application/json" in content else "text/plain"
    return _canonical(_resolve(content[media_type]["schema"], document))


def _served() -> dict[str, Any]:
    """The contract with the installed plugins' fragments merged in."""
    served: dict[str, Any] = json.loads(served_contract())
    return served


def test_contract_is_valid_openapi() -> None:
    """What client generators check: the OpenAPI 3.1 schema, and every default valid for its own
    field's schema (``default: null`` on a non-nullable field is an error); the contract alone and
    with the plugins' fragments."""
    for document in (load_contract(), _served()):
        contract = copy.deepcopy(document)
        assert contract["openapi"].startswith("3.1.")
        errors = [
            f"{error.message} (schema: {error.schema.get('description', error.schema)!r})"
            for error in OpenAPIV31SpecValidator(contract).iter_errors()
        ]
        assert errors == []


def test_registry_matches_contract() -> None:
    contract = _operations(_served())
    registry = {(op.path, op.method): op for op in OPERATIONS}
    assert set(registry) == set(contract)
    for key, op in registry.items():
        assert contract[key]["operationId"] == op.operation_id
        assert op.authenticated == (contract[key].get("security") != [])


def test_fastapi_generated_schema_matches_contract(fastapi_app: Any) -> None:
    contract_doc = _served()
    generated_doc = fastapi_app.openapi()
    contract = _operations(contract_doc)
    generated = _operations(generated_doc)
    assert set(generated) == set(contract)
    for key, spec in contract.items():
        assert generated[key]["operationId"] == spec["operationId"], key
        assert _body_schema(generated[key], generated_doc) == _body_schema(spec, contract_doc), key
        assert _ok_schema(generated[key], generated_doc) == _ok_schema(spec, contract_doc), key


def test_both_backends_serve_the_contract(clients: dict[str, httpx.Client]) -> None:
    served = {
        "fastapi": clients["fastapi"].get("/openapi.json"),
        "django": clients["django"].get("/api/v1/schema/"),
    }
    for response in served.values():
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == _served()
