"""Logs on both backends, in-process, with ``SYNTHSTACK_LOG_FORMAT=json``: one JSON access line per
request with its fields, and no secret in any log line.

Every record logged while the requests run (the root logger at DEBUG: the core's, the SDKs',
httpx's, Django's) is kept and written out both as JSON (the service's formatter) and as text
(message and traceback). The requests carry API keys (valid, invalid, repeated), the metrics token
(right and wrong), and reach OpenAI and Anthropic (their stubs, which check their keys) in success
and failure; none of those values may appear in any line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from synthstack_core.logs import JsonLogFormatter
from synthstack_testing import AnthropicStub, OpenAIStub
from tests.parity.conftest import KEY_A, KEY_B, rebuilt_clients

METRICS_TOKEN = "metrics-token-that-must-never-be-logged"
WRONG_KEY = "wrong-api-key-that-must-never-be-logged"
WRONG_TOKEN = "wrong-metrics-token-never-to-be-logged"
ANTHROPIC_KEY = "sk-ant-anthropic-key-never-to-be-logged"
BACKENDS = ("fastapi", "django")
ACCESS_FIELDS = {
    "request_id",
    "tenant",
    "operationId",
    "method",
    "path",
    "status",
    "duration_ms",
    "bytes_in",
    "bytes_out",
    "timestamp",
    "level",
}


class Keep(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def anthropic_stub() -> Iterator[AnthropicStub]:
    with AnthropicStub(api_key=ANTHROPIC_KEY) as stub:
        yield stub


@pytest.fixture(scope="module")
def json_clients(
    anthropic_stub: AnthropicStub, django_app: Any, clients: dict[str, httpx.Client]
) -> Iterator[dict[str, httpx.Client]]:
    env = {
        # Production: the in-process Django client calls from 127.0.0.1, which in development
        # reads the metrics without a token; here only the token opens them.
        "SYNTHSTACK_ENV": "production",
        "SYNTHSTACK_LOG_FORMAT": "json",
        "SYNTHSTACK_METRICS_TOKEN": METRICS_TOKEN,
        "ANTHROPIC_API_KEY": anthropic_stub.api_key,
        "ANTHROPIC_BASE_URL": anthropic_stub.base_url,
    }
    with rebuilt_clients(django_app, env) as rebuilt:
        yield rebuilt


@pytest.fixture
def kept() -> Iterator[Keep]:
    """Every record of every logger, DEBUG included, while the test runs."""
    root = logging.getLogger()
    handler = Keep()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _requests(
    client: httpx.Client, openai_stub: OpenAIStub, anthropic_stub: AnthropicStub, tag: str
) -> list[tuple[str, httpx.Response]]:
    """Requests carrying every kind of secret, in success and in failure."""
    sent: list[tuple[str, httpx.Response]] = []

    def send(method: str, path: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
        request_id = f"{tag}-{len(sent)}"
        response = client.request(
            method, path, headers={**headers, "X-Request-ID": request_id}, json=body
        )
        sent.append((request_id, response))
        return response

    a = {"Authorization": f"Bearer {KEY_A}"}
    models = "/api/v1/embeddings/models"
    assert send("GET", models, a).status_code == 200
    assert send("GET", models, {"X-API-Key": KEY_B}).status_code == 200
    assert send("GET", models, {"Authorization": f"Bearer {WRONG_KEY}"}).status_code == 401
    assert send("GET", models, {"X-API-Key": WRONG_KEY}).status_code == 401
    repeated = {"X-API-Key": f"{WRONG_KEY},{KEY_A}"}  # how a repeated header reaches the core
    assert send("GET", models, repeated).status_code == 401
    assert send("GET", "/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
    assert send("GET", "/metrics", {"Authorization": f"Bearer {WRONG_TOKEN}"}).status_code == 404
    embed = {"text": f"secrets {tag}", "model": "text-embedding-3-small"}
    assert send("POST", "/api/v1/embeddings/generate", a, embed).status_code == 200
    openai_stub.fail_next(500)
    embed = {"text": f"secrets {tag} again", "model": "text-embedding-3-small"}
    assert send("POST", "/api/v1/embeddings/generate", a, embed).status_code == 502
    openai_stub.fail_next(429, retry_after=2)
    assert send("POST", "/api/v1/generation/text", a, {
        "prompt": "Say hi", "model": "gpt-4o-mini", "max_tokens": 8
    }).status_code == 429  # fmt: skip
    chat = {"prompt": "Say hi", "model": "claude-haiku-4-5", "max_tokens": 8}
    assert send("POST", "/api/v1/generation/text", a, chat).status_code == 200
    anthropic_stub.fail_next(401)
    assert send("POST", "/api/v1/generation/text", a, chat).status_code == 502
    anthropic_stub.fail_next(500)
    streamed = send("POST", "/api/v1/generation/text", a, {**chat, "stream": True})
    assert streamed.status_code == 502
    return sent


@pytest.mark.parametrize("backend", BACKENDS)
def test_json_access_lines_and_no_secret_in_any_log_line(
    backend: str,
    json_clients: dict[str, httpx.Client],
    openai_stub: OpenAIStub,
    anthropic_stub: AnthropicStub,
    kept: Keep,
) -> None:
    sent = _requests(json_clients[backend], openai_stub, anthropic_stub, f"logs-{backend}")
    json_lines = [JsonLogFormatter().format(record) for record in kept.records]
    text = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    text_lines = [text.format(record) for record in kept.records]
    assert len(kept.records) > len(sent)  # DEBUG lines of the SDKs and httpx included

    secrets = {
        "API key of tenant-a": KEY_A,
        "API key of tenant-b": KEY_B,
        "unknown API key": WRONG_KEY,
        "metrics token": METRICS_TOKEN,
        "wrong metrics token": WRONG_TOKEN,
        "OpenAI key": openai_stub.api_key,
        "Anthropic key": ANTHROPIC_KEY,
    }
    for what, secret in secrets.items():
        leaks = [line for line in [*json_lines, *text_lines] if secret in line]
        assert leaks == [], f"the {what} reached a log line: {leaks[:3]}"

    access = {}
    for line in json_lines:
        fields = json.loads(line)  # every line is one JSON object
        assert {"timestamp", "level", "logger", "message"} <= set(fields), fields
        if fields["logger"] == "synthstack.access":
            access[fields["request_id"]] = fields
    for request_id, response in sent:
        fields = access[request_id]
        assert set(fields) >= ACCESS_FIELDS, fields
        assert fields["status"] == response.status_code
        assert fields["method"] == response.request.method
        assert fields["path"] == response.request.url.path
        assert fields["level"] == "INFO"
        assert isinstance(fields["duration_ms"], float) and fields["duration_ms"] >= 0
        assert fields["bytes_in"] == len(response.request.content)
        streamed = response.headers["content-type"] == "text/event-stream"
        assert fields["bytes_out"] == (None if streamed else len(response.content))
    by_id = {request_id: access[request_id] for request_id, _ in sent}
    first = by_id[sent[0][0]]
    assert (first["tenant"], first["operationId"]) == ("tenant-a", "embeddings-models")
    assert by_id[sent[1][0]]["tenant"] == "tenant-b"
    assert by_id[sent[2][0]]["tenant"] is None  # refused: no tenant
    assert by_id[sent[5][0]]["operationId"] == "metrics"
