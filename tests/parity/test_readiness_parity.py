"""``GET /ready`` on both backends: who sees the checks' details (the implementations and versions
that answered, latencies, what failed). A caller with a valid API key does, and a loopback caller in
development; anyone else gets the overall status and each check's status only, with the same status
code. No key is ever refused: ``/ready`` needs none, and is never rate-limited.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from synthstack_core import Settings
from synthstack_core.contract import load_contract
from tests.parity.conftest import AUTH, rebuilt_clients

BACKENDS = ("fastapi", "django")
ELSEWHERE = "203.0.113.7"  # a documentation address: not loopback
LOOPBACK = "127.0.0.1"
DETAILS = {"required", "latency_ms", "kind"}

#: backend -> peer address -> client
Clients = dict[str, dict[str, httpx.Client]]


@contextmanager
def _by_address(django_app: Any) -> Iterator[Clients]:
    """Both backends as seen from a loopback address and from elsewhere, with the environment's
    settings (FastAPI: an app of its own per address; Django: the process's service)."""
    from synthstack_fastapi import create_app

    with ExitStack() as stack:
        clients: Clients = {"fastapi": {}, "django": {}}
        for address in (LOOPBACK, ELSEWHERE):
            clients["fastapi"][address] = stack.enter_context(
                TestClient(
                    create_app(Settings()), client=(address, 50000), raise_server_exceptions=False
                )
            )
            clients["django"][address] = stack.enter_context(
                httpx.Client(
                    transport=httpx.WSGITransport(app=django_app, remote_addr=address),
                    base_url="http://testserver",
                )
            )
        yield clients


@pytest.fixture(scope="module")
def development(django_app: Any, service_env: dict[str, str]) -> Iterator[Clients]:
    """The session's settings: development, keys configured."""
    with _by_address(django_app) as clients:
        yield clients


def _checks(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code in (200, 503), response.text
    body = response.json()
    assert set(body) == {"status", "checks"}
    assert body["status"] == ("ready" if response.status_code == 200 else "not_ready")
    checks: dict[str, dict[str, Any]] = body["checks"]
    assert set(checks) == {"database", "cache", "embedding_model", "vector_store"}
    return checks


def _valid(response: httpx.Response) -> None:
    """The body validates against the contract's ReadinessResponse."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    contract = load_contract()
    resource = Resource.from_contents(contract, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:contract", resource)
    schema = {"$ref": "urn:contract#/components/schemas/ReadinessResponse"}
    Draft202012Validator(schema, registry=registry).validate(response.json())


def _bare(response: httpx.Response) -> None:
    """Statuses only: no version, latency or error."""
    _valid(response)
    for name, check in _checks(response).items():
        assert set(check) == {"status"}, (name, check)


def _detailed(response: httpx.Response) -> None:
    _valid(response)
    for name, check in _checks(response).items():
        assert set(check) >= DETAILS, (name, check)
    assert _checks(response)["vector_store"]["kind"].startswith("pgvector")


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_a_key_the_checks_are_statuses_only(
    backend: str, development: Clients, django_app: Any
) -> None:
    client = development[backend][ELSEWHERE]
    detailed = client.get("/ready", headers=AUTH)
    for headers in (
        {},
        {"Authorization": "Bearer not-a-key-of-anyone"},
        {"X-API-Key": "not-a-key-of-anyone"},
        {"Authorization": f"{AUTH['Authorization']}, Bearer another"},  # repeated credentials
    ):
        bare = client.get("/ready", headers=headers)
        _bare(bare)
        assert bare.status_code == detailed.status_code
        assert "pgvector" not in bare.text and "postgresql" not in bare.text
        assert "ratelimit-limit" not in {name.lower() for name in bare.headers}


@pytest.mark.parametrize("backend", BACKENDS)
def test_with_a_key_the_checks_have_their_details(backend: str, development: Clients) -> None:
    for address in (ELSEWHERE, LOOPBACK):
        for headers in (AUTH, {"X-API-Key": AUTH["Authorization"].split()[1]}):
            _detailed(development[backend][address].get("/ready", headers=headers))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_loopback_caller_sees_the_details_in_development(
    backend: str, development: Clients
) -> None:
    _detailed(development[backend][LOOPBACK].get("/ready"))


def test_in_production_a_loopback_caller_needs_a_key(
    django_app: Any, clients: dict[str, httpx.Client]
) -> None:
    with (
        rebuilt_clients(django_app, {"SYNTHSTACK_ENV": "production"}),
        _by_address(django_app) as production,
    ):
        for backend in BACKENDS:
            _bare(production[backend][LOOPBACK].get("/ready"))
            _detailed(production[backend][LOOPBACK].get("/ready", headers=AUTH))
