"""A percent-encoded request path gets the same answer from both backends.

Both routers decode the path before matching it; the problem's ``instance`` is that decoded path
percent-encoded again (``synthstack_core.errors.uri_path``), so it is the same on both, whichever
way the client spelled an escape.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.parity.conftest import AUTH

DOCUMENTS = "/api/v1/rag/documents/"

# (path as sent, the problem's instance, status)
CASES = [
    (DOCUMENTS + "abc%0A", DOCUMENTS + "abc%0A", 404),  # a newline
    (DOCUMENTS + "abc%0a", DOCUMENTS + "abc%0A", 404),
    (DOCUMENTS + "abc%0D%09", DOCUMENTS + "abc%0D%09", 404),
    (DOCUMENTS + "abc%20def", DOCUMENTS + "abc%20def", 404),
    (DOCUMENTS + "caf%C3%A9", DOCUMENTS + "caf%C3%A9", 404),  # é, UTF-8
    (DOCUMENTS + "caf%c3%a9", DOCUMENTS + "caf%C3%A9", 404),
    (DOCUMENTS + "%E6%96%87%E6%9B%B8", DOCUMENTS + "%E6%96%87%E6%9B%B8", 404),  # 文書
    (DOCUMENTS + "100%25", DOCUMENTS + "100%25", 404),  # a literal %
    (DOCUMENTS + "what%3F", DOCUMENTS + "what%3F", 404),  # a literal ?
    (DOCUMENTS + "a%23b", DOCUMENTS + "a%23b", 404),  # a literal #
    (DOCUMENTS + "%41bc", DOCUMENTS + "Abc", 404),  # an unreserved character, decoded
    # %2F is a slash to both routers: a path with one more segment, which nothing serves.
    (DOCUMENTS + "abc%2Fdef", DOCUMENTS + "abc/def", 404),
    ("/api/v1/nothing%0Ahere", "/api/v1/nothing%0Ahere", 404),
    ("/api/v1/caf%C3%A9", "/api/v1/caf%C3%A9", 404),
]


def _send(client: httpx.Client, path: str) -> httpx.Response:
    # httpx keeps the escapes of a raw path as they are given.
    url = client.base_url.copy_with(raw_path=path.encode("ascii"))
    return client.get(url, headers={**AUTH, "X-Request-ID": "path-probe"})


@pytest.mark.parametrize(("path", "instance", "status"), CASES)
def test_problem_instance_is_the_path_percent_encoded(
    clients: dict[str, httpx.Client], path: str, instance: str, status: int
) -> None:
    responses = {name: _send(client, path) for name, client in clients.items()}
    for name, response in responses.items():
        assert response.status_code == status, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json", name
        body = json.loads(response.content)
        assert body["instance"] == instance, (name, body)
        assert body["request_id"] == "path-probe"
    assert responses["fastapi"].content == responses["django"].content
