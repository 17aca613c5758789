"""A local HTTP stub of the OpenAI embeddings API, for tests and benchmarks.

:class:`OpenAIStub` runs a :class:`http.server.ThreadingHTTPServer` on ``127.0.0.1`` (port chosen
by the OS) in a daemon thread and answers ``POST /v1/embeddings`` the way OpenAI does, so that the
real ``openai`` SDK can be driven with no internet access::

    with OpenAIStub() as stub:
        client = openai.OpenAI(base_url=stub.base_url, api_key=stub.api_key, max_retries=0)
        with client:
            vectors = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])

Vectors are deterministic and carry a little meaning: each lower-cased word of the input is
hashed (with a sign hash) into the model's native dimension, the bag of words is summed and
L2-normalised. Equal texts give equal vectors, and texts sharing words have a higher cosine
similarity than unrelated texts. When ``dimensions`` is requested, the first ``dimensions``
components of the native vector are kept and re-normalised, as OpenAI does for its
``text-embedding-3`` models. Every word is hashed once into each of a series of bands
``[0, 1), [1, 2), [2, 4), [4, 8), ...`` with a weight proportional to the square root of the band
width, so any prefix of the vector still holds a trace of every word while the full vector behaves
like an ordinary sparse hashing embedding.

Token counts (``usage.prompt_tokens``) are an approximation: the number of words plus
punctuation marks matched by a simple regular expression, not a real BPE tokenisation. Token-array
inputs count one token per element.

Faults can be injected, thread-safely, with :meth:`OpenAIStub.fail_next`,
:meth:`OpenAIStub.delay_next` and :meth:`OpenAIStub.garbage_next`; every request received is
recorded in :attr:`OpenAIStub.requests`.

``POST /v1/chat/completions`` answers a deterministic reply (see
:mod:`synthstack_testing.chat_stub`), whole or streamed as OpenAI frames it (server-sent
events, ``stream_options.include_usage``, ``data: [DONE]``), and ``response_format`` of type
``json_object`` with one JSON object. The stream controls of
:class:`~synthstack_testing.chat_stub.ChatStubControls` (token delay, a stream broken midway,
counters of abandoned streams) apply to it.

``POST /v1/audio/transcriptions`` (``multipart/form-data``, parsed with the standard library)
answers :func:`expected_transcript` of the uploaded bytes in OpenAI's ``json``, ``verbose_json``
(segments, and words with ``timestamp_granularities[]=word``), ``text``, ``srt`` or ``vtt``; its
recorded body is the form's text fields and ``file`` as ``{filename, content_type, size}``.

Only the standard library and numpy are used: the core must not depend on a web framework.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import secrets
import socket
import sys
import threading
import time
import wave
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, NamedTuple, Self, cast

import numpy as np
import numpy.typing as npt

from synthstack_testing.chat_stub import (
    ChatStubControls,
    ChunkedWriter,
    approximate_chat_prompt_tokens,
    expected_chat_reply,
)

__all__ = [
    "DEFAULT_API_KEY",
    "KNOWN_CHAT_MODELS",
    "KNOWN_MODELS",
    "KNOWN_TRANSCRIPTION_MODELS",
    "MAX_AUDIO_FILE_BYTES",
    "MAX_INPUTS_PER_REQUEST",
    "MAX_TOKENS_PER_INPUT",
    "MAX_TOKENS_PER_REQUEST",
    "TRANSCRIPTIONS_PATH",
    "EmbeddingModelSpec",
    "OpenAIStub",
    "RecordedRequest",
    "approximate_token_count",
    "expected_audio_duration",
    "expected_embedding",
    "expected_transcript",
]

DEFAULT_API_KEY: Final = "sk-stub-key"
"""The API key an :class:`OpenAIStub` accepts unless told otherwise."""

MAX_INPUTS_PER_REQUEST: Final = 2048
"""Largest number of inputs OpenAI accepts in one embeddings request."""

MAX_TOKENS_PER_INPUT: Final = 8192
"""Largest number of tokens OpenAI accepts in a single input (approximated here)."""

MAX_TOKENS_PER_REQUEST: Final = 300_000
"""Largest number of tokens OpenAI accepts across all inputs of one request (approximated)."""


@dataclass(frozen=True, slots=True)
class EmbeddingModelSpec:
    """What the stub knows about one OpenAI embedding model."""

    native_dimensions: int
    """Length of the vectors the model returns when ``dimensions`` is not given."""

    supports_dimensions: bool
    """Whether the model accepts the ``dimensions`` parameter (``text-embedding-3`` and later)."""


KNOWN_MODELS: Final[Mapping[str, EmbeddingModelSpec]] = {
    "text-embedding-3-small": EmbeddingModelSpec(1536, supports_dimensions=True),
    "text-embedding-3-large": EmbeddingModelSpec(3072, supports_dimensions=True),
    "text-embedding-ada-002": EmbeddingModelSpec(1536, supports_dimensions=False),
}
"""The embedding models the stub serves; any other model name is answered with a 404."""

_ALLOWED_PARAMS: Final = frozenset({"input", "model", "dimensions", "encoding_format", "user"})
_WORD_RE: Final = re.compile(r"\w+")
_TOKEN_RE: Final = re.compile(r"\w+|[^\w\s]")
_HASH_PERSON: Final = b"synthstack-stub"
_GARBAGE_BODY: Final = b'{"object": "list", "data": [{"object": "embedding", "index": 0, "embe'


class RecordedRequest(NamedTuple):
    """One request received by the stub, as stored in :attr:`OpenAIStub.requests`."""

    path: str
    """The request target, e.g. ``"/v1/embeddings"`` (with its query string, if any)."""

    body: Any
    """The body parsed as JSON, or ``None`` when it was empty or not valid JSON."""

    headers: dict[str, str]
    """The request headers, keys lower-cased (a repeated header keeps its last value)."""


# --------------------------------------------------------------------------------------------
# Deterministic vectors
# --------------------------------------------------------------------------------------------


def approximate_token_count(text: str) -> int:
    """Approximate the number of tokens of ``text`` as OpenAI would count them.

    This counts words plus punctuation marks with a regular expression (at least 1 for a
    non-empty text); it is *not* a BPE tokenisation and under-counts long or rare words.
    """
    return max(1, len(_TOKEN_RE.findall(text))) if text else 0


def _bands(native_dimensions: int) -> list[tuple[int, int]]:
    """Split ``[0, native_dimensions)`` into the bands ``[0,1), [1,2), [2,4), [4,8), ...``."""
    bands = [(0, 1)]
    low = 1
    while low < native_dimensions:
        high = min(low * 2, native_dimensions)
        bands.append((low, high))
        low = high
    return bands


@lru_cache(maxsize=65_536)
def _feature_hits(
    feature: str, native_dimensions: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Return the (indices, signed weights) one occurrence of ``feature`` adds to a vector."""
    bands = _bands(native_dimensions)
    digest = hashlib.blake2b(
        feature.encode("utf-8", "surrogatepass"), digest_size=64, person=_HASH_PERSON
    ).digest()
    indices = np.empty(len(bands), dtype=np.intp)
    weights = np.empty(len(bands), dtype=np.float64)
    for band, (low, high) in enumerate(bands):
        chunk = int.from_bytes(digest[4 * band : 4 * band + 4], "little")
        width = high - low
        indices[band] = low + chunk % width
        sign = -1.0 if chunk >> 31 else 1.0
        weights[band] = sign * (width / native_dimensions) ** 0.5
    indices.setflags(write=False)
    weights.setflags(write=False)
    return indices, weights


def _features(item: str | Sequence[int]) -> list[str]:
    """Turn one input (a text or a token array) into the features hashed into its vector."""
    if isinstance(item, str):
        words = _WORD_RE.findall(item.lower())
        # A text without any word (punctuation or blanks only) still gets its own vector.
        return words if words else ["\x00raw:" + item]
    return [f"\x00tok:{token}" for token in item]


def _unit_vector(
    item: str | Sequence[int], native_dimensions: int, dimensions: int
) -> npt.NDArray[np.float32]:
    """Compute the unit-norm float32 vector of ``item``, truncated to ``dimensions``."""
    hits = [_feature_hits(feature, native_dimensions) for feature in _features(item)]
    indices = np.concatenate([index for index, _ in hits])
    weights = np.concatenate([weight for _, weight in hits])
    native = np.bincount(indices, weights=weights, minlength=native_dimensions)
    vector = native[:dimensions]
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:  # Opposite signs cancelled out exactly: fall back to a fixed unit vector.
        vector = np.zeros(dimensions, dtype=np.float64)
        vector[0] = 1.0
        norm = 1.0
    return (vector / norm).astype(np.float32)


def expected_embedding(
    item: str | Sequence[int],
    model: str = "text-embedding-3-small",
    dimensions: int | None = None,
) -> npt.NDArray[np.float32]:
    """Return the vector the stub answers for ``item`` (a text or a token array).

    Useful to assert on exact values without an HTTP round trip. Raises :class:`KeyError` for an
    unknown model and :class:`ValueError` for an out-of-range ``dimensions``.
    """
    spec = KNOWN_MODELS[model]
    size = spec.native_dimensions if dimensions is None else dimensions
    if not 1 <= size <= spec.native_dimensions:
        raise ValueError(f"dimensions must be within 1..{spec.native_dimensions}, got {size}")
    return _unit_vector(item, spec.native_dimensions, size)


# --------------------------------------------------------------------------------------------
# Request validation
# --------------------------------------------------------------------------------------------


class _APIError(Exception):
    """An error answered with OpenAI's error shape; raised while handling a request."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type_ = type_
        self.param = param
        self.code = code

    def body(self) -> dict[str, object]:
        """Return the JSON body OpenAI would send for this error."""
        return _error_body(self.message, self.type_, self.param, self.code)


def _error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, object]:
    """Build OpenAI's error body ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _invalid(message: str, param: str | None = None, code: str | None = None) -> _APIError:
    """Build a 400 ``invalid_request_error``."""
    return _APIError(400, message, param=param, code=code)


def _is_int(value: object) -> bool:
    """Tell whether ``value`` is a JSON integer (``bool`` excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_input(raw: object) -> list[str] | list[list[int]]:
    """Validate OpenAI's ``input`` parameter and return it as a list of texts or token arrays."""
    if isinstance(raw, str):
        if not raw:
            raise _invalid("'$.input' is invalid: the input must not be an empty string.", "input")
        return [raw]
    if not isinstance(raw, list) or not raw:
        raise _invalid(
            "'$.input' is invalid: expected a non-empty string, array of strings, array of "
            "integers or array of integer arrays.",
            "input",
        )
    if len(raw) > MAX_INPUTS_PER_REQUEST:
        raise _invalid(
            f"'$.input' is invalid: array must be {MAX_INPUTS_PER_REQUEST} dimensions or less.",
            "input",
        )
    if all(isinstance(item, str) for item in raw):
        texts = cast(list[str], raw)
        for position, text in enumerate(texts):
            if not text:
                raise _invalid(
                    f"'$.input[{position}]' is invalid: the input must not be an empty string.",
                    "input",
                )
        return texts
    if all(_is_int(item) for item in raw):
        return [_check_tokens(cast(list[int], raw), "$.input")]
    if all(isinstance(item, list) for item in raw):
        arrays = cast(list[list[object]], raw)
        return [_check_tokens(array, f"$.input[{i}]") for i, array in enumerate(arrays)]
    raise _invalid(
        "'$.input' is invalid: mixing strings, integers and arrays is not allowed.", "input"
    )


def _check_tokens(tokens: Sequence[object], where: str) -> list[int]:
    """Validate one token array (non-empty, non-negative integers)."""
    if not tokens:
        raise _invalid(f"'{where}' is invalid: token arrays must not be empty.", "input")
    for token in tokens:
        if not _is_int(token) or cast(int, token) < 0:
            raise _invalid(
                f"'{where}' is invalid: token arrays must hold non-negative integers.", "input"
            )
    return cast(list[int], list(tokens))


@dataclass(frozen=True, slots=True)
class _EmbeddingsRequest:
    """A validated ``POST /v1/embeddings`` body."""

    inputs: Sequence[str | Sequence[int]]
    model: str
    spec: EmbeddingModelSpec
    dimensions: int
    encoding_format: str


def _parse_embeddings_request(body: object) -> _EmbeddingsRequest:
    """Validate an embeddings request body the way OpenAI does, raising :class:`_APIError`."""
    if not isinstance(body, dict):
        raise _invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)"
        )
    for key in body:
        if key not in _ALLOWED_PARAMS:
            raise _invalid(f"Unrecognized request argument supplied: {key}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid(
            "You must provide a model parameter.", "model", code="missing_required_parameter"
        )
    if "input" not in body:
        raise _invalid("'input' is a required property", "input")
    inputs = _parse_input(body["input"])

    encoding_format = body.get("encoding_format")
    if encoding_format is None:
        encoding_format = "float"
    if encoding_format not in ("float", "base64"):
        raise _invalid(
            f"Invalid value for 'encoding_format' = {encoding_format}. "
            "Supported values are: 'float' and 'base64'.",
            "encoding_format",
        )
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _invalid("'$.user' is invalid: expected a string.", "user")

    spec = KNOWN_MODELS.get(model)
    if spec is None:
        raise _APIError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )

    raw_dimensions = body.get("dimensions")
    dimensions = spec.native_dimensions
    if raw_dimensions is not None:
        if not spec.supports_dimensions:
            raise _invalid("This model does not support specifying dimensions.", "dimensions")
        if not _is_int(raw_dimensions):
            raise _invalid("'$.dimensions' is invalid: expected an integer.", "dimensions")
        dimensions = cast(int, raw_dimensions)
        if dimensions < 1:
            raise _invalid(
                f"Invalid value for 'dimensions' = {dimensions}. Must be greater than 0.",
                "dimensions",
            )
        if dimensions > spec.native_dimensions:
            raise _invalid(
                f"Invalid value for 'dimensions' = {dimensions}. Must be less than or equal "
                f"to {spec.native_dimensions}.",
                "dimensions",
            )
    return _EmbeddingsRequest(inputs, model, spec, dimensions, cast(str, encoding_format))


def _embeddings_response(request: _EmbeddingsRequest) -> dict[str, object]:
    """Compute OpenAI's response body for a validated embeddings request."""
    total_tokens = 0
    data: list[dict[str, object]] = []
    for index, item in enumerate(request.inputs):
        tokens = approximate_token_count(item) if isinstance(item, str) else len(item)
        if tokens > MAX_TOKENS_PER_INPUT:
            raise _invalid(
                f"This model's maximum context length is {MAX_TOKENS_PER_INPUT} tokens, however "
                f"you requested {tokens} tokens ({tokens} in your prompt; 0 for the "
                "completion). Please reduce your prompt; or completion length.",
                code="context_length_exceeded",
            )
        total_tokens += tokens
        vector = _unit_vector(item, request.spec.native_dimensions, request.dimensions)
        embedding: object
        if request.encoding_format == "base64":
            embedding = base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
        else:
            embedding = vector.astype(np.float64).tolist()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    if total_tokens > MAX_TOKENS_PER_REQUEST:
        raise _invalid(
            f"Requested {total_tokens} tokens, max {MAX_TOKENS_PER_REQUEST} tokens per request",
            "input",
            code="max_tokens_per_request",
        )
    return {
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": {"prompt_tokens": total_tokens, "total_tokens": total_tokens},
    }


# --------------------------------------------------------------------------------------------
# Audio transcriptions
# --------------------------------------------------------------------------------------------

TRANSCRIPTIONS_PATH: Final = "/v1/audio/transcriptions"
"""The path of OpenAI's speech-to-text endpoint (``multipart/form-data``)."""

KNOWN_TRANSCRIPTION_MODELS: Final[Mapping[str, bool]] = {
    "whisper-1": True,
    "gpt-4o-transcribe": False,
    "gpt-4o-mini-transcribe": False,
}
"""The transcription models the stub serves, and whether each gives timestamps
(``verbose_json``, ``srt``, ``vtt``); the ``gpt-4o`` models answer ``json`` and ``text`` only."""

MAX_AUDIO_FILE_BYTES: Final = 25 * 1024 * 1024
"""OpenAI's limit on an uploaded audio file."""

_AUDIO_EXTENSIONS: Final = (
    "flac",
    "m4a",
    "mp3",
    "mp4",
    "mpeg",
    "mpga",
    "oga",
    "ogg",
    "wav",
    "webm",
)
_TRANSCRIPTION_FORMATS: Final = ("json", "text", "srt", "verbose_json", "vtt")
_TRANSCRIPT_SENTENCES: Final = (
    "The quick brown fox jumps over the lazy dog.",
    "Please send the quarterly report before Friday.",
    "The weather today is sunny with a light breeze.",
    "Our meeting starts at nine in the main conference room.",
    "She sells sea shells by the sea shore.",
    "The library opens early on weekdays.",
)
_LANGUAGE_NAMES: Final = {"en": "english", "fr": "french", "de": "german", "es": "spanish"}


@dataclass(frozen=True, slots=True)
class _FormPart:
    """One part of a ``multipart/form-data`` body."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def _parse_multipart(content_type: str, raw: bytes) -> list[_FormPart]:
    """Split a ``multipart/form-data`` body into its parts (standard library only)."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise _invalid("Could not parse multipart form: expected multipart/form-data.")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = raw.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise _invalid("Could not parse multipart form: the closing boundary is missing.")
    parts: list[_FormPart] = []
    for chunk in chunks[1:-1]:
        head, separator, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise _invalid("Could not parse multipart form: a part has no headers.")
        headers = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                headers[key.strip()] = value.strip()
        name = headers.get_param("name", header="content-disposition")
        filename = headers.get_filename()
        if not isinstance(name, str):
            raise _invalid("Could not parse multipart form: a part has no name.")
        content = data.removesuffix(b"\r\n")
        parts.append(_FormPart(name, filename, headers.get("content-type"), content))
    return parts


def _transcription_record(content_type: str, raw: bytes) -> dict[str, object] | None:
    """What :attr:`OpenAIStub.requests` keeps of a transcription request: its text fields
    (a list for a repeated one) and ``file`` as ``{"filename", "content_type", "size"}``."""
    try:
        parts = _parse_multipart(content_type, raw)
    except _APIError:
        return None
    record: dict[str, object] = {}
    for part in parts:
        value: object
        if part.filename is not None:
            value = {
                "filename": part.filename,
                "content_type": part.content_type,
                "size": len(part.data),
            }
        else:
            value = part.data.decode("utf-8", "replace")
        if part.name in record:
            previous = record[part.name]
            record[part.name] = (
                [*previous, value] if isinstance(previous, list) else [previous, value]
            )
        else:
            record[part.name] = value
    return record


def expected_transcript(audio: bytes) -> str:
    """The transcript the stub answers for the file ``audio``: two of a fixed set of sentences,
    chosen by a hash of the bytes (equal files, equal transcripts)."""
    digest = hashlib.blake2b(audio, digest_size=8, person=_HASH_PERSON).digest()
    first = digest[0] % len(_TRANSCRIPT_SENTENCES)
    second = (first + 1 + digest[1] % (len(_TRANSCRIPT_SENTENCES) - 1)) % len(_TRANSCRIPT_SENTENCES)
    return f"{_TRANSCRIPT_SENTENCES[first]} {_TRANSCRIPT_SENTENCES[second]}"


def expected_audio_duration(audio: bytes) -> float:
    """The duration the stub reports: a WAV file's real one, else one second per 16 kB."""
    try:
        with wave.open(io.BytesIO(audio)) as reader:
            frames, rate = int(reader.getnframes()), int(reader.getframerate())
    except (wave.Error, EOFError):
        rate = 0
    if rate > 0:
        return round(frames / rate, 3)
    return round(max(0.1, len(audio) / 16_000), 3)


def _subtitle_time(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    return (
        f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}"
        f"{separator}{millis % 1000:03d}"
    )


def _transcript_timing(
    text: str, duration: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Segments (one per sentence) and words, spread over ``duration`` by character count."""
    sentences = re.findall(r"[^.!?]+[.!?]?", text)
    total = sum(len(sentence) for sentence in sentences) or 1
    segments: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []
    start = 0.0
    for index, sentence in enumerate(sentences):
        end = round(start + duration * len(sentence) / total, 3)
        segments.append(
            {
                "id": index,
                "seek": 0,
                "start": start,
                "end": end,
                "text": " " + sentence.strip(),
                "tokens": [50364 + position for position in range(len(sentence.split()))],
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 1.2,
                "no_speech_prob": 0.01,
            }
        )
        tokens = sentence.split()
        step = (end - start) / max(1, len(tokens))
        for position, token in enumerate(tokens):
            word_start = round(start + position * step, 3)
            words.append(
                {
                    "word": token.strip(".,!?"),
                    "start": word_start,
                    "end": round(word_start + step, 3),
                }
            )
        start = end
    return segments, words


def _serve_transcriptions(handler: _StubHandler, raw: bytes) -> None:
    """Answer ``POST /v1/audio/transcriptions`` in the requested ``response_format``."""
    parts = _parse_multipart(handler.headers.get("Content-Type", ""), raw)
    fields: dict[str, list[str]] = {}
    files = [part for part in parts if part.filename is not None]
    for part in parts:
        if part.filename is None:
            fields.setdefault(part.name.removesuffix("[]"), []).append(part.data.decode())
    model = (fields.get("model") or [""])[0]
    if not model:
        raise _invalid(
            "you must provide a model parameter", "model", code="missing_required_parameter"
        )
    if not files or files[0].name != "file":
        raise _invalid("Could not parse multipart form: 'file' is required.", "file")
    upload = files[0]
    timestamps = KNOWN_TRANSCRIPTION_MODELS.get(model)
    if timestamps is None:
        raise _APIError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    if len(upload.data) > MAX_AUDIO_FILE_BYTES:
        raise _APIError(413, f"Maximum content size limit ({MAX_AUDIO_FILE_BYTES}) exceeded.")
    extension = (upload.filename or "").rpartition(".")[2].lower()
    if extension not in _AUDIO_EXTENSIONS:
        raise _invalid(f"Invalid file format. Supported formats: {list(_AUDIO_EXTENSIONS)}", "file")
    if not upload.data:
        raise _invalid(
            "Audio file is too short. Minimum audio length is 0.1 seconds.",
            "file",
            code="audio_too_short",
        )
    response_format = (fields.get("response_format") or ["json"])[0]
    if response_format not in _TRANSCRIPTION_FORMATS:
        raise _invalid(
            f"Invalid value for 'response_format': {response_format!r}.", "response_format"
        )
    if not timestamps and response_format not in ("json", "text"):
        raise _invalid(
            f"response_format '{response_format}' is not compatible with model '{model}'. "
            "Use 'json' or 'text' instead.",
            "response_format",
            code="unsupported_value",
        )
    granularities = fields.get("timestamp_granularities", [])
    if granularities and response_format != "verbose_json":
        raise _invalid(
            "timestamp_granularities requires response_format=verbose_json.",
            "timestamp_granularities",
        )
    if any(value not in ("segment", "word") for value in granularities):
        raise _invalid("Invalid value for 'timestamp_granularities'.", "timestamp_granularities")
    language = (fields.get("language") or [""])[0]
    if language and not re.fullmatch(r"[a-z]{2}", language):
        raise _invalid(
            f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format.",
            "language",
        )
    temperature = (fields.get("temperature") or ["0"])[0]
    try:
        if not 0 <= float(temperature) <= 1:
            raise ValueError(temperature)
    except ValueError:
        raise _invalid(
            "Invalid value for 'temperature': expected a number within 0..1.", "temperature"
        ) from None

    text = expected_transcript(upload.data)
    duration = expected_audio_duration(upload.data)
    segments, words = _transcript_timing(text, duration)
    usage: dict[str, object] = (
        {"type": "duration", "seconds": max(1, round(duration))}
        if timestamps
        else {
            "type": "tokens",
            "input_tokens": 50,
            "output_tokens": len(text.split()),
            "total_tokens": 50 + len(text.split()),
            "input_token_details": {"text_tokens": 0, "audio_tokens": 50},
        }
    )
    if response_format == "json":
        handler._send_json(200, {"text": text, "usage": usage})
        return
    if response_format == "verbose_json":
        payload: dict[str, object] = {
            "task": "transcribe",
            "language": _LANGUAGE_NAMES.get(language or "en", language),
            "duration": duration,
            "text": text,
            "segments": segments,
            "usage": usage,
        }
        if "word" in granularities:
            payload["words"] = words
        if granularities == ["word"]:
            del payload["segments"]
        handler._send_json(200, payload)
        return
    if response_format == "text":
        body = text + "\n"
    else:
        separator = "," if response_format == "srt" else "."
        cues = [
            f"{segment['id'] + 1}\n{_subtitle_time(segment['start'], separator)} --> "
            f"{_subtitle_time(segment['end'], separator)}\n{segment['text'].strip()}\n"
            for segment in segments
        ]
        body = ("WEBVTT\n\n" if response_format == "vtt" else "") + "\n".join(cues) + "\n"
    encoded = body.encode("utf-8")
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain; charset=utf-8")
    handler.send_header("Content-Length", str(len(encoded)))
    handler.send_header("x-request-id", f"req_{secrets.token_hex(16)}")
    handler.end_headers()
    handler.wfile.write(encoded)


# --------------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------------


_FAULT_ERRORS: Final[Mapping[int, tuple[str, str, str | None]]] = {
    400: ("Injected fault: bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to perform this request.", "invalid_request_error", None),
    404: ("The requested resource does not exist.", "invalid_request_error", None),
    409: ("The request conflicts with another request.", "invalid_request_error", None),
    422: ("The request could not be processed.", "invalid_request_error", None),
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}


@dataclass(slots=True)
class _ResponseFault:
    """A queued replacement answer (an error status or a garbage body)."""

    status: int
    garbage: bool
    retry_after: float | None
    remaining: int


@dataclass(slots=True)
class _DelayFault:
    """A queued delay applied before answering."""

    seconds: float
    remaining: int


def _check_times(times: int) -> None:
    """Reject a non-positive repetition count."""
    if not _is_int(times) or times < 1:
        raise ValueError(f"times must be a positive integer, got {times!r}")


def _format_seconds(seconds: float) -> str:
    """Format a ``retry-after`` value, as an integer when it is one."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


class _StubServer(ThreadingHTTPServer):
    """The threading HTTP server, bound to its :class:`OpenAIStub`."""

    daemon_threads = True

    def __init__(self, stub: OpenAIStub) -> None:
        self.stub = stub
        super().__init__(("127.0.0.1", 0), _StubHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away (timeouts, closed pools, stop())."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _StubHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests (HTTP/1.1 keep-alive)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "SynthStackOpenAIStub/1.0"
    sys_version = ""

    @property
    def _stub(self) -> OpenAIStub:
        return cast(_StubServer, self.server).stub

    def setup(self) -> None:
        """Register the connection so that :meth:`OpenAIStub.stop` can interrupt it."""
        super().setup()
        self._stub._track(cast(socket.socket, self.connection))

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            super().finish()
        finally:
            self._stub._untrack(cast(socket.socket, self.connection))

    def log_message(self, format: str, *args: Any) -> None:
        """Do not log every request to stderr."""

    def do_POST(self) -> None:
        """Handle a POST request."""
        self._dispatch()

    def do_GET(self) -> None:
        """Handle a GET request (always an error: only POST /v1/embeddings exists)."""
        self._dispatch()

    do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        """Read the request body (``Content-Length`` or chunked transfer encoding)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(65_537).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65_537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65_537)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        """Record the request, apply injected faults, then answer it."""
        stub = self._stub
        try:
            raw_body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send_json(400, _error_body("Malformed request body.", "invalid_request_error"))
            return
        body: Any = None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                body = None
        if body is None and self.path.split("?", 1)[0] == TRANSCRIPTIONS_PATH:
            body = _transcription_record(self.headers.get("Content-Type", ""), raw_body)
        headers = {key.lower(): value for key, value in self.headers.items()}
        stub._record(RecordedRequest(self.path, body, headers))

        generation = stub._generation()
        delay, fault = stub._take_faults()
        if delay > 0:
            stub._stopping.wait(delay)
            if stub._outlived_reset(generation):
                self.close_connection = True
                return
        if fault is not None:
            self._send_fault(fault)
            return

        try:
            self._check_auth(headers.get("authorization"))
            if self.command == "POST" and self.path.split("?", 1)[0] == TRANSCRIPTIONS_PATH:
                _serve_transcriptions(self, raw_body)
                return
            if self.command == "POST" and self.path.split("?", 1)[0] == "/v1/chat/completions":
                _serve_chat_completions(self, body)
                return
            if self.command != "POST" or self.path.split("?", 1)[0].rstrip("/") != "/v1/embeddings":
                raise _APIError(404, f"Invalid URL ({self.command} {self.path})")
            if body is None:
                raise _invalid(
                    "We could not parse the JSON body of your request. (HINT: This likely means "
                    "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                    "payload, but what was sent was not valid JSON.)"
                )
            request = _parse_embeddings_request(body)
            started = time.perf_counter()
            payload = _embeddings_response(request)
            elapsed_ms = round((time.perf_counter() - started) * 1000)
        except _APIError as error:
            self._send_json(error.status, error.body())
        except Exception as error:  # A bug in the stub: answer like OpenAI's 500s.
            message = f"The stub failed: {type(error).__name__}: {error}"
            self._send_json(500, _error_body(message, "server_error"))
        else:
            self._send_json(
                200,
                payload,
                {"openai-model": request.model, "openai-processing-ms": str(elapsed_ms)},
            )

    def _check_auth(self, authorization: str | None) -> None:
        """Require ``Authorization: Bearer <api_key>``, else raise a 401."""
        if not authorization or not authorization.startswith("Bearer "):
            raise _APIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        key = authorization.removeprefix("Bearer ").strip()
        if not secrets.compare_digest(key.encode(), self._stub.api_key.encode()):
            masked = f"{key[:3]}*****{key[-4:]}" if len(key) > 8 else "*****"
            raise _APIError(
                401,
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    def _send_fault(self, fault: _ResponseFault) -> None:
        """Answer with an injected error or garbage body."""
        extra: dict[str, str] = {}
        if fault.retry_after is not None:
            extra["retry-after"] = _format_seconds(fault.retry_after)
        if fault.garbage:
            self._send_raw(fault.status, _GARBAGE_BODY, extra)
            return
        message, type_, code = _FAULT_ERRORS.get(
            fault.status,
            (
                f"Injected fault: HTTP {fault.status}.",
                "server_error" if fault.status >= 500 else "invalid_request_error",
                None,
            ),
        )
        self._send_json(fault.status, _error_body(message, type_, None, code), extra)

    def _send_json(
        self, status: int, payload: object, headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer with a JSON body."""
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self._send_raw(status, body, headers or {})

    def _send_raw(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        """Answer with ``body`` labelled as JSON (whether or not it is valid JSON)."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", f"req_{secrets.token_hex(16)}")
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


# --------------------------------------------------------------------------------------------
# Chat completions
# --------------------------------------------------------------------------------------------

KNOWN_CHAT_MODELS: Final = frozenset(
    {"gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-3.5-turbo"}
)
"""The chat models the stub serves; any other model name is answered with a 404."""

_CHAT_PARAMS: Final = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "n",
        "stream",
        "stream_options",
        "response_format",
        "stop",
        "seed",
        "user",
        "presence_penalty",
        "frequency_penalty",
    }
)
_CHAT_ROLES: Final = frozenset({"system", "developer", "user", "assistant"})
_GARBAGE_EVENT: Final = b'data: {"id": "chatcmpl-broken", "object": "chat.completion.chu\n\n'


@dataclass(frozen=True, slots=True)
class _ChatCompletionsRequest:
    """A validated ``POST /v1/chat/completions`` body."""

    model: str
    texts: tuple[str, ...]
    last_user_message: str
    max_tokens: int | None
    json_output: bool
    stream: bool
    include_usage: bool


def _message_text(message: object, position: int) -> tuple[str, str]:
    """Validate one chat message and return its role and text."""
    where = f"$.messages[{position}]"
    if not isinstance(message, dict):
        raise _invalid(f"'{where}' is invalid: expected an object.", "messages")
    role = message.get("role")
    if role not in _CHAT_ROLES:
        raise _invalid(f"Invalid value for '{where}.role': {role!r}.", "messages")
    content = message.get("content")
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(parts) != len(content) or not all(isinstance(p, str) for p in parts):
            raise _invalid(f"'{where}.content' is invalid: only text parts are served.", "messages")
        content = "".join(cast(list[str], parts))
    if not isinstance(content, str):
        raise _invalid(f"'{where}.content' is invalid: expected a string.", "messages")
    return cast(str, role), content


def _parse_chat_request(body: object) -> _ChatCompletionsRequest:
    """Validate a chat completions body the way OpenAI does, raising :class:`_APIError`."""
    if not isinstance(body, dict):
        raise _invalid("We could not parse the JSON body of your request.")
    for key in body:
        if key not in _CHAT_PARAMS:
            raise _invalid(f"Unrecognized request argument supplied: {key}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid(
            "You must provide a model parameter.", "model", code="missing_required_parameter"
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("'messages' must be a non-empty array.", "messages")
    roles_texts = [_message_text(message, i) for i, message in enumerate(messages)]
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not _is_int(max_tokens) or cast(int, max_tokens) < 1):
        raise _invalid("Invalid 'max_tokens': expected an integer of at least 1.", "max_tokens")
    temperature = body.get("temperature")
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise _invalid("Invalid 'temperature': expected a number within 0..2.", "temperature")
    stream = body.get("stream") is True
    stream_options = body.get("stream_options")
    if stream_options is not None and not stream:
        raise _invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if response_format is not None and kind not in ("text", "json_object"):
        raise _invalid("Invalid 'response_format': the stub serves text and json_object.")
    json_output = kind == "json_object"
    if json_output and not any("json" in text.lower() for _, text in roles_texts):
        raise _invalid(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of "
            "type 'json_object'.",
            "messages",
        )
    if model not in KNOWN_CHAT_MODELS:
        raise _APIError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    users = [text for role, text in roles_texts if role == "user"]
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    return _ChatCompletionsRequest(
        model,
        tuple(text for _, text in roles_texts),
        users[-1] if users else "",
        cast(int | None, max_tokens),
        json_output,
        stream,
        include_usage,
    )


def _chat_usage(request: _ChatCompletionsRequest, completion_tokens: int) -> dict[str, object]:
    """OpenAI's usage object for a chat completion."""
    prompt_tokens = approximate_chat_prompt_tokens(request.texts)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _serve_chat_completions(handler: _StubHandler, body: object) -> None:
    """Answer ``POST /v1/chat/completions``, whole or streamed."""
    request = _parse_chat_request(body)
    reply = expected_chat_reply(
        request.model,
        request.last_user_message,
        max_tokens=request.max_tokens,
        json_output=request.json_output,
    )
    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    if request.stream:
        _stream_chat_completion(handler, request, completion_id)
        return
    payload = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": reply.content,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": reply.finish,
            }
        ],
        "usage": _chat_usage(request, reply.completion_tokens),
        "service_tier": "default",
        "system_fingerprint": "fp_stub",
    }
    handler._send_json(200, payload, {"openai-model": request.model})


def _stream_chat_completion(
    handler: _StubHandler, request: _ChatCompletionsRequest, completion_id: str
) -> None:
    """Stream a chat completion as OpenAI does: server-sent events in a chunked response."""
    stub = handler._stub
    reply = expected_chat_reply(
        request.model,
        request.last_user_message,
        max_tokens=request.max_tokens,
        json_output=request.json_output,
    )
    fault = stub._take_stream_fault()
    created = int(time.time())

    def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
        payload: dict[str, object] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "system_fingerprint": "fp_stub",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if request.include_usage:
            payload["usage"] = None
        return payload

    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("x-request-id", f"req_{secrets.token_hex(16)}")
    handler.send_header("openai-model", request.model)
    handler.end_headers()
    writer = ChunkedWriter(handler)
    try:
        writer.event({**chunk({"role": "assistant", "content": "", "refusal": None})})
        for position, token in enumerate(reply.tokens):
            if fault is not None and position == fault.after_chunks:
                if not fault.garbage:
                    writer.cut()
                    return
                writer.send(_GARBAGE_EVENT)
            if stub.token_delay:
                stub._stopping.wait(stub.token_delay)
            writer.event(chunk({"content": token}))
        writer.event(chunk({}, reply.finish))
        if request.include_usage:
            usage_chunk = chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = _chat_usage(request, reply.completion_tokens)
            writer.event(usage_chunk)
        writer.send(b"data: [DONE]\n\n")
        writer.end()
    except OSError:  # the client went away (closed the stream early)
        handler.close_connection = True
        stub._stream_ended(aborted=True)
        return
    stub._stream_ended(aborted=False)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


class OpenAIStub(ChatStubControls):
    """A local, deterministic stand-in for the OpenAI embeddings API.

    Use it as a context manager (``with OpenAIStub() as stub: ...``) or call :meth:`start` and
    :meth:`stop`. Point a client at :attr:`base_url` with :attr:`api_key`. Requests without
    ``Authorization: Bearer <api_key>`` are answered 401.

    Fault injection (all thread-safe, each fault consumed by the next requests in arrival order,
    whatever their path or validity):

    * :meth:`fail_next` answers the next requests with an error status and OpenAI's error body;
    * :meth:`garbage_next` answers the next requests 200 with a body that is not valid JSON;
    * :meth:`delay_next` sleeps before answering the next requests.

    Error and garbage faults share one queue, used in the order they were added; delays have
    their own queue, so one request can be both delayed and failed. :meth:`stop` interrupts
    pending delays.
    """

    def __init__(self, api_key: str = DEFAULT_API_KEY) -> None:
        """Prepare a stub accepting ``api_key``; nothing listens until :meth:`start`."""
        self.api_key = api_key
        """The key clients must send as ``Authorization: Bearer <api_key>``."""
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: deque[_ResponseFault] = deque()
        self._delays: deque[_DelayFault] = deque()
        self._connections: set[socket.socket] = set()
        self._accepted = 0
        self._stopping = threading.Event()
        self._server: _StubServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start listening on ``127.0.0.1`` on a free port; returns the stub itself."""
        if self._server is not None:
            raise RuntimeError("the OpenAI stub is already running")
        self._stopping = threading.Event()
        server = _StubServer(self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"openai-stub-{server.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop the server, interrupt delays, close connections and wait for handler threads.

        Calling it on a stopped stub does nothing.
        """
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            _shutdown_socket(connection)
        server.server_close()
        thread.join()

    def __enter__(self) -> Self:
        """Start the stub."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the stub."""
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the stub is listening."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The TCP port the stub listens on (only while running)."""
        if self._server is None:
            raise RuntimeError("the OpenAI stub is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL to give an OpenAI client, e.g. ``"http://127.0.0.1:54321/v1"``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- assertions and faults ---------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, oldest first: ``(path, body, headers)``."""
        with self._lock:
            return list(self._requests)

    @property
    def accepted_connections(self) -> int:
        """TCP connections accepted since the stub was made (a client's pool reuses its own)."""
        with self._lock:
            return self._accepted

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``times`` requests with HTTP ``status`` and OpenAI's error body.

        ``status`` must be within 400..599. When ``retry_after`` (seconds) is given, the answers
        carry a ``retry-after`` header (meant for 429 and 5xx, which the SDK may retry).
        """
        if not _is_int(status) or not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400..599), got {status!r}")
        _check_times(times)
        if retry_after is not None and not retry_after >= 0:
            raise ValueError(f"retry_after must be >= 0, got {retry_after!r}")
        with self._lock:
            self._faults.append(_ResponseFault(status, False, retry_after, times))

    def garbage_next(self, times: int = 1) -> None:
        """Answer the next ``times`` requests 200 with a body that is not valid JSON.

        The body is a truncated JSON document served as ``application/json``.
        """
        _check_times(times)
        with self._lock:
            self._faults.append(_ResponseFault(200, True, None, times))

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """Sleep ``seconds`` before answering each of the next ``times`` requests."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        _check_times(times)
        with self._lock:
            self._delays.append(_DelayFault(float(seconds), times))

    def reset(self) -> None:
        """Forget pending faults and recorded requests."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()
            self._requests.clear()
        self._reset_chat()

    # -- used by the request handler ---------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_faults(self) -> tuple[float, _ResponseFault | None]:
        """Consume one pending delay and one pending response fault, if any."""
        with self._lock:
            delay = 0.0
            if self._delays:
                pending_delay = self._delays[0]
                delay = pending_delay.seconds
                pending_delay.remaining -= 1
                if pending_delay.remaining == 0:
                    self._delays.popleft()
            fault: _ResponseFault | None = None
            if self._faults:
                pending = self._faults[0]
                fault = _ResponseFault(pending.status, pending.garbage, pending.retry_after, 1)
                pending.remaining -= 1
                if pending.remaining == 0:
                    self._faults.popleft()
            return delay, fault

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
            self._accepted += 1
        if self._stopping.is_set():  # Accepted while stopping: do not let it block stop().
            _shutdown_socket(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)


def _shutdown_socket(connection: socket.socket) -> None:
    """Shut a connection down so that a handler blocked reading it returns."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
