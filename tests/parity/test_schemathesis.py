"""Schemathesis against ``contracts/openapi.yaml`` (not an app's own schema), on both backends.

All checks are on (see ``schemathesis.toml``), with a fixed seed. Positive bodies that name a
model/dimensions pair this deployment cannot serve are filtered out: the contract allows every known
model, but which of them a deployment serves is configuration (``GET /api/v1/embeddings/models``);
those combinations are exercised by the deterministic tests instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis

from synthstack_core.providers.local_onnx import LOCAL_MODEL
from synthstack_core.providers.openai import OPENAI_MODELS
from tests.parity.conftest import AUTH

CONTRACT = Path(__file__).parents[2] / "contracts" / "openapi.yaml"
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
    schema = schemathesis.openapi.from_path(CONTRACT)
    schema.app = fastapi_app
    return schema


@pytest.fixture(scope="session")
def django_schema(django_app: Any) -> Any:
    schema = schemathesis.openapi.from_path(CONTRACT)
    schema.app = django_app
    return schema


fastapi_contract = schemathesis.pytest.from_fixture("fastapi_schema")
django_contract = schemathesis.pytest.from_fixture("django_schema")


@schemathesis.hook("filter_body")
def _only_servable(_: Any, body: Any) -> bool:
    return servable(body)


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
