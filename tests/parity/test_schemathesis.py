"""Schemathesis against ``contracts/openapi.yaml`` (not an app's own schema), with the installed
plugins' fragments merged in (the served document: a plugin's operations are run like the built-in
ones), on both backends.

All checks are on (see ``schemathesis.toml``), with a fixed seed. Positive bodies that name a
model/dimensions pair this deployment cannot serve are filtered out: the contract allows every known
model, but which of them a deployment serves is configuration (``GET /api/v1/embeddings/models``);
those combinations are exercised by the deterministic tests instead.
"""

from __future__ import annotations

import json
from typing import Any

import hypothesis
import pytest
import schemathesis

from synthstack_core.apidocs import served_contract
from synthstack_core.providers.local_onnx import LOCAL_MODEL
from synthstack_core.providers.openai import OPENAI_MODELS
from tests.parity.conftest import AUTH

SPECS = {spec.id: spec for spec in (LOCAL_MODEL, *OPENAI_MODELS)}


def servable(body: Any) -> bool:
    """Whether a generated body's model and dimensions fit together."""
    if not isinstance(body, dict):
        return True
    model, dimensions = body.get("model"), body.get("dimensions")
    spec = SPECS.get(model) if isinstance(model, str) else LOCAL_MODEL
    if spec is None or not isinstance(dimensions, int) or isinstance(dimensions, bool):
        return True
    return dimensions == spec.dimensions or (
        spec.supports_dimensions and dimensions <= spec.dimensions
    )


@pytest.fixture(scope="session")
def fastapi_schema(fastapi_app: Any) -> Any:
    schema = schemathesis.openapi.from_dict(json.loads(served_contract()))
    schema.app = fastapi_app
    return schema


@pytest.fixture(scope="session")
def django_schema(django_app: Any) -> Any:
    schema = schemathesis.openapi.from_dict(json.loads(served_contract()))
    schema.app = django_app
    return schema


fastapi_contract = schemathesis.pytest.from_fixture("fastapi_schema")
django_contract = schemathesis.pytest.from_fixture("django_schema")


def encodable(body: Any) -> bool:
    """Whether the test clients encode a generated form body as every parser reads it.

    werkzeug's test client (Django's in-process run) writes an empty file part with no blank line
    after its headers; RFC 2046 allows that, but python-multipart, the core's parser, reads the
    closing delimiter as the part's data and answers 400. No other client we know of writes such a
    part; empty uploads are refused (422) in ``tests/parity/test_uploads.py`` on both backends, and
    the live run (``.ci/live-schemathesis``) sends every case through a real HTTP client.
    """
    return not (isinstance(body, dict) and body.get("file") in (b"", ""))


@schemathesis.hook("filter_body")
def _only_servable(_: Any, body: Any) -> bool:
    return servable(body) and encodable(body)


SETTINGS = hypothesis.settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
    database=None,
)


@fastapi_contract.parametrize()
@SETTINGS
def test_fastapi_conforms_to_contract(case: Any) -> None:
    case.call_and_validate(headers=AUTH)


@django_contract.parametrize()
@SETTINGS
def test_django_conforms_to_contract(case: Any) -> None:
    case.call_and_validate(headers=AUTH)
