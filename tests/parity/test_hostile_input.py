"""A client's mistake is never a 5xx: hostile values in every field the contract declares.

The test walks ``contracts/openapi.yaml``: for every operation, every field of its body (nested
objects, list items, metadata and filter values and keys, query and path parameters, form fields
and the uploaded file's name) gets, one at a time, in an otherwise valid request:

- ``NaN``, ``Infinity``, ``-Infinity`` (RFC 8259 has no such numbers: a body holding one is not
  JSON, 400) and ``1e400`` (JSON, but no finite number: 422);
- a string with a NUL character, a string one character over the field's ``maxLength``, and lone
  surrogates written as JSON escapes (``\\ud800``: no Unicode text holds them, 400).

Each answer must be a 400/422 (413 for a body over the limit) problem+json listed for the operation
in the contract, and byte-for-byte the same on both backends (the same ``X-Request-ID`` is sent to
both). The valid bodies the hostile values go into are themselves checked to succeed on both
backends, so that each refusal is the hostile value's alone.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from tests.parity.conftest import AUTH

ROOT = Path(__file__).parents[2]
CONTRACT = yaml.safe_load((ROOT / "contracts" / "openapi.yaml").read_text())
SCHEMAS: dict[str, Any] = CONTRACT["components"]["schemas"]
SPEECH = (ROOT / "packages/synthstack-core/tests/fixtures/audio/speech.ogg").read_bytes()
BACKENDS = ("fastapi", "django")
COLLECTION = "hostile-input"
PROBLEM = "application/problem+json"

#: An otherwise valid JSON body for every operation that takes one (a new operation fails
#: ``test_every_operation_is_covered`` until it has one here).
JSON_BODIES: dict[str, dict[str, Any]] = {
    "POST /api/v1/embeddings/generate": {
        "text": "The cat sits on the mat",
        "model": "all-MiniLM-L6-v2",
        "dimensions": 384,
    },
    "POST /api/v1/embeddings/batch": {
        "texts": ["first text", "second text"],
        "model": "all-MiniLM-L6-v2",
        "dimensions": 384,
    },
    "POST /api/v1/embeddings/similarity": {
        "text1": "a cat",
        "text2": "a kitten",
        "model": "all-MiniLM-L6-v2",
    },
    "POST /api/v1/rag/collections": {
        "name": "hostile-created",
        "embedding_model": "all-MiniLM-L6-v2",
        "description": "made by the hostile-input test",
    },
    "POST /api/v1/rag/index": {
        "content": "Cats purr when they are content. Dogs bark at strangers.",
        "source": "pets.txt",
        "source_type": "text",
        "title": "Pets",
        "metadata": {"topic": "pets", "year": 2026},
        "collection": COLLECTION,
        "document_id": "pets",
        "chunk_size": 64,
        "chunk_overlap": 0,
    },
    "POST /api/v1/rag/index-project-document": {
        "document_id": "plan",
        "project_id": "hostile",
        "filename": "plan.md",
        "content": "# Plan\n\nShip the hostile-input test.",
        "file_type": "md",
        "chunk_size": 64,
        "chunk_overlap": 0,
    },
    "POST /api/v1/rag/search": {
        "query": "why do cats purr",
        "collection": COLLECTION,
        "limit": 3,
        "min_score": 0.0,
        "mode": "hybrid",
        "filter": {"topic": "pets", "year": {"in": [2026, 2027]}},
    },
    "POST /api/v1/rag/query": {
        "query": "Why do cats purr?",
        "collection": COLLECTION,
        "context_limit": 2,
        "filter": {"topic": "pets", "year": {"in": [2026]}},
        "system_prompt": "Answer briefly.",
        "stream": False,
        "answer_mode": "extractive",
    },
    "POST /api/v1/generation/text": {
        "prompt": "Say hello.",
        "system_prompt": "Be brief.",
        "max_tokens": 8,
        "temperature": 0.0,
        "stream": False,
    },
    "POST /api/v1/generation/chat": {
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 8,
        "temperature": 0.0,
        "stream": False,
    },
    "POST /api/v1/analysis/text": {"text": "I love this phone.", "analyses": ["sentiment"]},
    "POST /api/v1/analysis/sentiment": {"text": "I love this phone.", "include_aspects": False},
    "POST /api/v1/analysis/summarize": {"text": "Cats purr. Dogs bark. Birds sing in the morning."},
    "POST /api/v1/analysis/keywords": {"text": "Cats purr when content.", "max_keywords": 3},
    "POST /api/v1/analysis/classify": {
        "text": "The match ended two to one.",
        "categories": ["sport", "politics"],
        "multi_label": False,
    },
    "POST /api/v1/analysis/generate": {
        "prompt": "Say hello.",
        "context": "A greeting.",
        "max_tokens": 8,
        "temperature": 0.0,
    },
    "POST /api/v1/complexity/estimate": {
        "title": "Add a login page",
        "description": "A form with two fields.",
        "issue_type": "task",
        "labels": ["frontend"],
        "milestone": "v1",
        "project_context": "A web shop.",
        "related_files": ["app/login.py"],
    },
    "POST /api/v1/complexity/analyze": {
        "lines_added": 10,
        "lines_removed": 2,
        "files_changed": 1,
        "commits": 1,
        "time_to_merge_hours": 1.5,
        "review_comments": 0,
        "pr_description": "Fix a typo.",
        "pre_complexity_score": 1,
        "pre_estimated_hours": 1.0,
        "pre_reasoning": "Small.",
    },
    "POST /api/v1/complexity/adjustment": {"pre_level": 2, "actual_level": 3},
    "POST /api/v1/transcription/estimate-cost": {
        "duration_seconds": 60.0,
        "model": "whisper-tiny.en",
    },
}

#: The uploads: an otherwise valid form (text fields) and its file.
FORMS: dict[str, tuple[dict[str, str], tuple[str, bytes, str]]] = {
    "POST /api/v1/rag/documents": (
        {
            "collection": COLLECTION,
            "document_id": "upload",
            "title": "Notes",
            "metadata": '{"topic": "notes"}',
            "source_type": "text",
            "chunk_size": "64",
            "chunk_overlap": "0",
        },
        ("notes.txt", b"Bees dance to tell the hive where flowers are.", "text/plain"),
    ),
    "POST /api/v1/transcription/transcribe": (
        {
            "language": "en",
            "model": "whisper-tiny.en",
            "prompt": "Speech.",
            "temperature": "0",
            "response_format": "json",
        },
        ("speech.ogg", SPEECH, "audio/ogg"),
    ),
}

#: Valid values of path and query parameters.
PARAMETERS = {"name": COLLECTION, "document_id": "pets", "collection": COLLECTION, "limit": "5"}

# -- the contract ------------------------------------------------------------------------------


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]] | {
            k: v for k, v in schema.items() if k != "$ref"
        }
    return schema


def _branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a schema (``anyOf``/``oneOf`` flattened)."""
    schema = _resolve(schema)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return [b for alt in alternatives for b in _branches(alt)]
    return [] if schema.get("type") == "null" else [schema]


Path_ = tuple[str | int, ...]
#: The key used for free-form objects (metadata, filter): one the valid bodies already hold.
FREE_KEY = "topic"
YEAR_KEY = "year"


def _fields(schema: dict[str, Any], path: Path_ = ()) -> Iterator[tuple[Path_, list[Any]]]:
    """Every field under ``schema``: its path and its alternatives, depth first."""
    branches = _branches(schema)
    if path:
        yield path, branches
    for branch in branches:
        for name, sub in branch.get("properties", {}).items():
            yield from _fields(sub, (*path, name))
        for sub in branch.get("patternProperties", {}).values():
            yield from _fields(sub, (*path, FREE_KEY))
            if path and path[-1] == "filter":  # the `{"in": [...]}` form on a key holding it
                yield from _fields(sub, (*path, YEAR_KEY))
        if branch.get("type") == "array" and "items" in branch:
            yield from _fields(branch["items"], (*path, 0))


def _operations() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in CONTRACT["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield f"{method.upper()} {path}", op


OPERATIONS = dict(_operations())


def _client_statuses(op_id: str) -> set[int]:
    return {int(s) for s in OPERATIONS[op_id]["responses"] if s.startswith("4")}


# -- hostile values ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is (``NaN`` is no Python value json.dumps would write for us)."""

    token: str


NON_FINITE = ("NaN", "Infinity", "-Infinity")


@dataclass
class Case:
    """One request: what it sends and the statuses it may get."""

    name: str
    statuses: set[int]
    method: str
    url: str
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _encode(body: Any) -> bytes:
    raws: dict[str, str] = {}

    def default(value: Any) -> str:
        marker = f"@@raw-{len(raws)}@@"
        raws[marker] = value.token
        return marker

    text = json.dumps(body, default=default)  # ensure_ascii: lone surrogates become \ud800
    for marker, token in raws.items():
        text = text.replace(f'"{marker}"', token)
    return text.encode()


def _with(body: Any, path: Path_, value: Any) -> Any:
    """``body`` with ``value`` at ``path`` (containers on the way made when missing)."""
    body = copy.deepcopy(body)
    node = body
    for segment, following in itertools.pairwise(path):
        wanted: type = list if isinstance(following, int) else dict
        if isinstance(node, dict):
            child = node.get(segment)
            if not isinstance(child, wanted):
                child = node[segment] = wanted()
        else:
            assert isinstance(segment, int)
            child = node[segment] if segment < len(node) else None
            if not isinstance(child, wanted):
                child = wanted()
                node[segment : segment + 1] = [child]
        node = child
    last = path[-1]
    if isinstance(node, list):
        assert isinstance(last, int)
        node[last : last + 1] = [value]
    else:
        node[last] = value
    return body


def _max_length(branches: list[dict[str, Any]]) -> int:
    lengths = [b["maxLength"] for b in branches if "maxLength" in b]
    return max(lengths) if lengths else 100_000


def _hostile_values(branches: list[dict[str, Any]]) -> Iterator[tuple[str, Any, set[int]]]:
    """(name, value, statuses it may get) for one field."""
    for token in NON_FINITE:
        yield token, Raw(token), {400}
    yield "1e400", Raw("1e400"), {422}
    yield "nul", "a\x00b", {422}
    yield "over-long", "x" * (_max_length(branches) + 1), {413, 422}
    yield "lone-high-surrogate", "a\ud800b", {400, 422}
    yield "lone-low-surrogate", "\udc00", {400, 422}
    if any("patternProperties" in b for b in branches):
        yield "nul-key", {"a\x00": 1}, {422}
        yield "surrogate-key", {"\ud800": 1}, {400, 422}
        yield "over-long-key", {"k" * 65: 1}, {422}


def _json_cases() -> Iterator[tuple[str, list[Case]]]:
    for op_id, base in JSON_BODIES.items():
        method, path = op_id.split(" ", 1)
        allowed = _client_statuses(op_id)
        ref = OPERATIONS[op_id]["requestBody"]["content"]["application/json"]["schema"]
        yield (
            f"{op_id} (body)",
            [
                Case(f"{op_id} body={token}", {400}, method, path, token.encode(), {})
                for token in (*NON_FINITE, '{"text": NaN}', '"\\ud800"')
            ],
        )
        for field_path, branches in _fields(ref):
            cases = [
                Case(
                    f"{op_id} {'.'.join(map(str, field_path))}={name}",
                    expected & allowed,
                    method,
                    path,
                    _encode(_with(base, field_path, value)),
                )
                for name, value, expected in _hostile_values(branches)
            ]
            yield f"{op_id} {'.'.join(map(str, field_path))}", cases


def _multipart(
    fields: list[tuple[str, bytes]], file: tuple[bytes, bytes, str]
) -> tuple[str, bytes]:
    """A ``multipart/form-data`` body written byte by byte (clients escape what we want sent)."""
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value + b"\r\n"
    filename, content, content_type = file
    out += f"--{boundary}\r\n".encode()
    out += b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
    out += f"Content-Type: {content_type}\r\n\r\n".encode() + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", bytes(out)


def _form_case(
    op_id: str,
    name: str,
    statuses: set[int],
    fields: dict[str, bytes],
    filename: bytes | None = None,
    content: bytes | None = None,
) -> Case:
    base, (file_name, file_content, content_type) = FORMS[op_id]
    merged = {k: v.encode() for k, v in base.items()} | fields
    content_type_header, body = _multipart(
        list(merged.items()),
        (filename or file_name.encode(), content or file_content, content_type),
    )
    method, path = op_id.split(" ", 1)
    return Case(
        f"{op_id} {name}", statuses, method, path, body, {"Content-Type": content_type_header}
    )


def _form_cases() -> Iterator[tuple[str, list[Case]]]:
    for op_id in FORMS:
        allowed = _client_statuses(op_id)
        media = OPERATIONS[op_id]["requestBody"]["content"]["multipart/form-data"]
        encoding = media.get("encoding", {})
        for name, sub in _resolve(media["schema"])["properties"].items():
            if name == "file":
                continue
            branches = _branches(sub)
            key = f"{name}[]" if any(b.get("type") == "array" for b in branches) else name
            values: list[tuple[str, bytes]] = [
                ("nul", b"a\x00b"),
                ("over-long", b"x" * (_max_length(branches) + 1)),
                ("lone-surrogate", "a\ud800b".encode("utf-8", "surrogatepass")),
            ]
            if any(b.get("type") in ("number", "integer") for b in branches):
                values += [(v, v.encode()) for v in (*NON_FINITE, "inf", "nan", "1e400")]
            # A JSON-carried field: said by the part's encoding, or by its schema (an object, or
            # a string whose content is JSON).
            if (
                encoding.get(name, {}).get("contentType") == "application/json"
                or any(b.get("type") == "object" for b in branches)
                or any(b.get("contentMediaType") == "application/json" for b in branches)
            ):
                values += [
                    (f"json-{v}", f'{{"{FREE_KEY}": {v}}}'.encode()) for v in (*NON_FINITE, "1e400")
                ]
                values += [
                    ("json-NaN-alone", b"NaN"),
                    ("json-nul", b'{"topic": "a\\u0000b"}'),
                    ("json-nul-key", b'{"a\\u0000": 1}'),
                    ("json-surrogate", b'{"topic": "\\ud800"}'),
                ]
            yield (
                f"{op_id} {name}",
                [
                    _form_case(op_id, f"{name}={label}", {422} & allowed, {key: value})
                    for label, value in values
                ],
            )
        yield (
            f"{op_id} filename",
            [
                _form_case(op_id, "filename=nul", {422} & allowed, {}, b"notes\x00.txt"),
                _form_case(op_id, "filename=only-nul", {422} & allowed, {}, b"\x00"),
            ],
        )


def _quote(value: str) -> str:
    return quote(value, safe="", errors="surrogatepass")


def _parameter_cases() -> Iterator[tuple[str, list[Case]]]:
    for op_id, op in OPERATIONS.items():
        method, template = op_id.split(" ", 1)
        declared = [
            CONTRACT["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p
            for p in op.get("parameters", [])
        ]
        # Path and query parameters; a header parameter (``Prefer``) is no client's error whatever
        # it holds (RFC 7240: what is not understood is ignored), see
        # test_hostile_prefer_headers_are_ignored.
        parameters = [p for p in declared if p["in"] in ("path", "query")]
        if not parameters:
            continue
        allowed = _client_statuses(op_id)
        valid = {p["name"]: PARAMETERS[p["name"]] for p in parameters if p["name"] in PARAMETERS}
        for parameter in parameters:
            branches = _branches(parameter["schema"])
            cases = []
            for label, value in (
                ("nul", "a\x00b"),
                ("over-long", "x" * (min(_max_length(branches), 1000) + 1)),
                ("lone-surrogate", "a\ud800b"),  # sent as %ED%A0%80, which is no UTF-8
                ("NaN", "NaN"),
                ("Infinity", "Infinity"),
            ):
                if label in ("NaN", "Infinity") and not any(
                    b.get("type") in ("number", "integer") for b in branches
                ):
                    continue
                values = valid | {parameter["name"]: value}
                path = re.sub(r"\{(\w+)\}", lambda m, values=values: _quote(values[m[1]]), template)
                query = "&".join(
                    f"{p['name']}={_quote(values[p['name']])}"
                    for p in parameters
                    if p["in"] == "query" and p["name"] in values
                )
                # A path that names nothing is a 404; a bad query parameter a 422.
                expected = {404} if parameter["in"] == "path" else {422}
                cases.append(
                    Case(
                        f"{op_id} {parameter['name']}={label}",
                        expected & allowed,
                        method,
                        f"{path}?{query}" if query else path,
                    )
                )
            yield f"{op_id} {parameter['name']}", cases


GROUPS = dict([*_json_cases(), *_form_cases(), *_parameter_cases()])


# -- the tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def collection(clients: dict[str, httpx.Client]) -> str:
    """The collection the valid bodies search and index into, with one document."""
    body = JSON_BODIES["POST /api/v1/rag/index"]
    response = clients["fastapi"].post("/api/v1/rag/index", headers=AUTH, json=body)
    assert response.status_code == 200, response.text
    return COLLECTION


def _send(client: httpx.Client, case: Case, request_id: str) -> httpx.Response:
    headers = {**AUTH, "X-Request-ID": request_id, **case.headers}
    if case.content is not None:
        headers.setdefault("Content-Type", "application/json")
    return client.request(case.method, case.url, headers=headers, content=case.content)


def test_every_operation_is_covered() -> None:
    with_body = {op_id for op_id, op in OPERATIONS.items() if "requestBody" in op}
    assert with_body == set(JSON_BODIES) | set(FORMS)
    assert len(GROUPS) > 100
    # The form's JSON field is recognised as one, whichever way the contract says it.
    names = {case.name for case in GROUPS["POST /api/v1/rag/documents metadata"]}
    assert "POST /api/v1/rag/documents metadata=json-NaN" in names


@pytest.mark.parametrize("op_id", [*JSON_BODIES, *FORMS])
def test_the_valid_requests_succeed(
    op_id: str, clients: dict[str, httpx.Client], collection: str
) -> None:
    """Each hostile case differs from one of these by one value: they are accepted."""
    method, path = op_id.split(" ", 1)
    for backend in BACKENDS:
        if op_id in FORMS:
            case = _form_case(op_id, "valid", set(), {})
            response = _send(clients[backend], case, f"hostile-valid-{backend}")
        else:
            response = clients[backend].request(method, path, headers=AUTH, json=JSON_BODIES[op_id])
        created_twice = op_id == "POST /api/v1/rag/collections" and response.status_code == 409
        assert response.status_code < 300 or created_twice, (backend, response.text[:500])


@pytest.mark.parametrize("group", list(GROUPS))
def test_hostile_values_are_the_clients_error(
    group: str, clients: dict[str, httpx.Client], collection: str, upload_dir: Path
) -> None:
    failures = []
    for number, case in enumerate(GROUPS[group]):
        request_id = f"hostile-{abs(hash(group)) % 10**8}-{number}"
        answers = {backend: _send(clients[backend], case, request_id) for backend in BACKENDS}
        fastapi, django = answers["fastapi"], answers["django"]
        problem: list[str] = []
        if fastapi.status_code not in case.statuses:
            problem.append(f"status {fastapi.status_code}, expected one of {sorted(case.statuses)}")
        if fastapi.headers.get("content-type") != PROBLEM:
            problem.append(f"content-type {fastapi.headers.get('content-type')}")
        if (fastapi.status_code, fastapi.content) != (django.status_code, django.content):
            problem.append(f"backends differ: django {django.status_code} {django.text[:200]}")
        if problem:
            failures.append(f"{case.name}: {'; '.join(problem)} -- {fastapi.text[:200]}")
    assert not failures, "\n".join(failures)


def test_an_over_long_file_name_is_cut_to_the_source_limit(
    clients: dict[str, httpx.Client], collection: str, upload_dir: Path
) -> None:
    """A file name is the document's default ``source``: a 600-character one is cut to 512, as a
    file's own title is."""
    filename = "n" * 597 + ".md"
    for backend in BACKENDS:
        case = _form_case(
            "POST /api/v1/rag/documents",
            "long file name",
            set(),
            {"document_id": f"long-name-{backend}".encode(), "source_type": b"markdown"},
            filename.encode(),
            b"# Heading\n\nSome text.",
        )
        response = _send(clients[backend], case, f"hostile-long-name-{backend}")
        assert response.status_code == 201, (backend, response.text[:300])
        document = response.json()
        assert document["source"] == filename[:512]


def test_an_over_long_audio_file_name_is_no_error(
    clients: dict[str, httpx.Client], upload_dir: Path
) -> None:
    """The audio's file name is stored nowhere: a 600-character one changes nothing."""
    answers = [
        _send(
            clients[backend],
            _form_case(
                "POST /api/v1/transcription/transcribe",
                "long",
                set(),
                {},
                b"s" * 596 + b".ogg",
            ),
            "hostile-long-audio-name",
        )
        for backend in BACKENDS
    ]
    assert [a.status_code for a in answers] == [200, 200], answers[0].text[:300]
    assert answers[0].json() == answers[1].json()


@pytest.mark.parametrize(
    "prefer",
    [
        "x" * 8000,
        'respond-async="unclosed',
        "=;,,;=respond-async",
        ",".join(["wait=1"] * 2000),
    ],
)
def test_hostile_prefer_headers_are_ignored(
    prefer: str, clients: dict[str, httpx.Client], collection: str
) -> None:
    """A ``Prefer`` header no parser reads as ``respond-async`` leaves the synchronous answer, the
    same on both backends."""
    body = JSON_BODIES["POST /api/v1/rag/index"]
    answers = {
        backend: clients[backend].post(
            "/api/v1/rag/index",
            headers={**AUTH, "X-Request-ID": "hostile-prefer", "Prefer": prefer},
            json=body,
        )
        for backend in BACKENDS
    }
    for backend, answer in answers.items():
        assert answer.status_code == 200, (backend, answer.text[:300])
        assert "preference-applied" not in answer.headers
    assert answers["fastapi"].json() == answers["django"].json()
