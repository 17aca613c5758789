"""``GET /metrics`` on both backends, in-process: who may read it, and that it counts exactly the
requests sent (by operation and status), their latencies, what is in flight, the embedding cache,
the model runs, the 429s ``rate_limited``, the database pool and the jobs queued and running.

Both apps are rebuilt with ``SYNTHSTACK_METRICS_TOKEN`` set. The metrics are the process's (both
in-process backends record into them), so each backend's requests are counted as the difference
between two scrapes around them, sent one backend after the other.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from synthstack_core import Settings
from synthstack_testing import OpenAIStub
from tests.parity.conftest import AUTH, rebuilt_clients

TOKEN = "metrics-token-for-the-parity-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
BACKENDS = ("fastapi", "django")
ELSEWHERE = "203.0.113.7"  # a documentation address: not loopback

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition by name and labels (the official parser: it must parse)."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(client: httpx.Client, headers: dict[str, str] = BEARER) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.text)


def series(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def requests_by_operation(samples: Samples) -> Counter[tuple[str, str]]:
    counted: Counter[tuple[str, str]] = Counter()
    for (name, labels), value in samples.items():
        if name == "synthstack_http_requests_total":
            found = dict(labels)
            counted[(found["operation_id"], found["status"])] = int(value)
    return counted


@pytest.fixture(scope="module")
def metrics_clients(
    django_app: Any, clients: dict[str, httpx.Client]
) -> Iterator[dict[str, httpx.Client]]:
    """Both backends with a metrics token (FastAPI's test client calls from ``testclient``, not a
    loopback address; the Django transport from 127.0.0.1)."""
    with rebuilt_clients(django_app, {"SYNTHSTACK_METRICS_TOKEN": TOKEN}) as rebuilt:
        yield rebuilt


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_metrics_count_exactly_the_requests_sent(
    backend: str, metrics_clients: dict[str, httpx.Client]
) -> None:
    client = metrics_clients[backend]
    text = f"metrics {backend} {uuid.uuid4().hex}"
    before = scrape(client)
    for _ in range(3):
        assert client.get("/health").status_code == 200
    for _ in range(2):  # the same text twice: embedded once, then from the cache
        answer = client.post("/api/v1/embeddings/generate", headers=AUTH, json={"text": text})
        assert answer.status_code == 200, answer.text
    assert client.post("/api/v1/embeddings/generate", json={"text": text}).status_code == 401
    invalid = client.post("/api/v1/embeddings/generate", headers=AUTH, json={"text": 5})
    assert invalid.status_code == 422
    after = scrape(client)

    sent = requests_by_operation(after)
    sent.subtract(requests_by_operation(before))
    assert +sent == Counter(
        {
            ("health-liveness", "200"): 3,
            ("embeddings-generate", "200"): 2,
            ("embeddings-generate", "401"): 1,
            ("embeddings-generate", "422"): 1,
            ("metrics", "200"): 1,  # the first scrape (the second is counted once it answered)
        }
    )

    def grew(name: str, **labels: str) -> float:
        return series(after, name, **labels) - series(before, name, **labels)

    duration = "synthstack_http_request_duration_seconds"
    assert grew(f"{duration}_count", operation_id="health-liveness") == 3
    assert grew(f"{duration}_count", operation_id="embeddings-generate") == 4
    assert grew(f"{duration}_sum", operation_id="embeddings-generate") > 0
    # Only the scrape itself is in flight.
    in_flight = {
        dict(labels)["operation_id"]: value
        for (name, labels), value in after.items()
        if name == "synthstack_http_requests_in_flight"
    }
    assert in_flight["metrics"] == 1
    assert {op: v for op, v in in_flight.items() if op != "metrics" and v} == {}
    assert grew("synthstack_cache_misses_total", cache="redis") == 1
    assert grew("synthstack_cache_hits_total", cache="redis") == 1
    inference = "synthstack_model_inference_seconds_count"
    assert grew(inference, kind="embedding", model="all-MiniLM-L6-v2") == 1
    assert series(after, "synthstack_db_pool_size") >= 5  # the stacks' pools: 5 connections each
    assert series(after, "synthstack_db_pool_connections_in_use") >= 0
    # The jobs queued and running, read from the database at the scrape (by status only).
    jobs = {labels: value for (name, labels), value in after.items() if name == "synthstack_jobs"}
    assert set(jobs) == {(("status", "queued"),), (("status", "running"),)}
    assert all(value >= 0 for value in jobs.values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rate_limited_answer_is_counted(
    backend: str, metrics_clients: dict[str, httpx.Client], openai_stub: OpenAIStub
) -> None:
    """A 429 ``rate_limited`` (here the provider's, passed on) counts as rate-limited."""
    client = metrics_clients[backend]
    before = scrape(client)
    openai_stub.fail_next(429, retry_after=3)
    answer = client.post(
        "/api/v1/embeddings/generate",
        headers=AUTH,
        json={"text": f"limited {uuid.uuid4().hex}", "model": "text-embedding-3-small"},
    )
    assert answer.status_code == 429 and answer.json()["code"] == "rate_limited", answer.text
    after = scrape(client)
    limited = "synthstack_http_rate_limited_requests_total"
    assert (
        series(after, limited, operation_id="embeddings-generate")
        - series(before, limited, operation_id="embeddings-generate")
        == 1
    )
    assert series(after, limited, operation_id="metrics") == 0
    model = {"kind": "embedding", "model": "text-embedding-3-small"}
    inference = "synthstack_model_inference_seconds_count"
    assert series(after, inference, **model) - series(before, inference, **model) == 1


def _not_found_shape(response: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    body = response.json()
    return (
        response.status_code,
        response.headers["content-type"],
        {key: body[key] for key in ("type", "title", "status", "code")},
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_the_token_the_metrics_are_an_unknown_path(
    backend: str, metrics_clients: dict[str, httpx.Client], django_app: Any
) -> None:
    client = metrics_clients[backend]
    if backend == "django":  # the Django transport's default peer is 127.0.0.1
        client = httpx.Client(
            transport=httpx.WSGITransport(app=django_app, remote_addr=ELSEWHERE),
            base_url="http://testserver",
        )
    unknown = client.get("/nothing-here", headers={"X-Request-ID": "unknown-path"})
    assert unknown.status_code == 404
    for headers in (
        {},
        {"Authorization": "Bearer not-the-metrics-token-at-all"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"X-API-Key": TOKEN},
        {"Authorization": f"Bearer {AUTH['Authorization'].split()[1]}"},  # an API key is not it
    ):
        hidden = client.get("/metrics", headers={**headers, "X-Request-ID": "hidden-metrics"})
        assert _not_found_shape(hidden) == _not_found_shape(unknown), headers
        assert hidden.json()["detail"] == "No endpoint at /metrics."
        assert hidden.json()["request_id"] == "hidden-metrics"
        assert hidden.json()["instance"] == "/metrics"
        assert "synthstack_" not in hidden.text
    assert "synthstack_http_requests_total" in client.get("/metrics", headers=BEARER).text


def test_loopback_reads_the_metrics_in_development_only(
    django_app: Any, clients: dict[str, httpx.Client]
) -> None:
    """No token configured: in development a loopback caller reads them, anyone else gets the 404;
    in production nobody does."""
    loopback_django = httpx.Client(
        transport=httpx.WSGITransport(app=django_app, remote_addr="127.0.0.1"),
        base_url="http://testserver",
    )
    elsewhere_django = httpx.Client(
        transport=httpx.WSGITransport(app=django_app, remote_addr=ELSEWHERE),
        base_url="http://testserver",
    )
    for environment, loopback_status in (("development", 200), ("production", 404)):
        settings = {"SYNTHSTACK_ENV": environment, "SYNTHSTACK_METRICS_TOKEN": None}
        with rebuilt_clients(django_app, settings):
            from synthstack_fastapi import create_app

            with (
                TestClient(
                    create_app(Settings()),
                    client=("127.0.0.1", 50000),
                    raise_server_exceptions=False,
                ) as loopback_fastapi,
                TestClient(
                    create_app(Settings()), client=(ELSEWHERE, 50000), raise_server_exceptions=False
                ) as elsewhere_fastapi,
            ):
                for loopback, elsewhere in (
                    (loopback_fastapi, elsewhere_fastapi),
                    (loopback_django, elsewhere_django),
                ):
                    answer = loopback.get("/metrics")
                    assert answer.status_code == loopback_status, (environment, answer.text)
                    if loopback_status == 200:
                        parse(answer.text)
                    assert elsewhere.get("/metrics").status_code == 404
                    # The token alone opens them, and none is configured here.
                    assert elsewhere.get("/metrics", headers=BEARER).status_code == 404
