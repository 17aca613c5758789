"""``/api/v1/transcription/*`` on both backends: real Whisper (tiny.en) on the committed espeak-ng
fixtures, every response format (subtitles parsed with the real ``srt`` and ``webvtt-py``), OpenAI's
models through the real SDK against the stub, and every bad upload — the same answer on both
backends, and the upload directory empty after each request."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import srt
import webvtt

from synthstack_testing import OpenAIStub
from tests.parity.conftest import AUTH, rebuilt_clients

BACKENDS = ["fastapi", "django"]
URL = "/api/v1/transcription/transcribe"
FIXTURES = Path(__file__).parents[2] / "packages/synthstack-core/tests/fixtures/audio"
SPEECH = (FIXTURES / "speech.ogg").read_bytes()


def _post(
    client: httpx.Client,
    content: bytes = SPEECH,
    name: str = "speech.ogg",
    content_type: str = "audio/ogg",
    **fields: Any,
) -> httpx.Response:
    return client.post(
        URL, headers=AUTH, files={"file": (name, content, content_type)}, data=fields
    )


def _both(**kwargs: Any) -> Any:
    def run(clients: dict[str, httpx.Client]) -> list[httpx.Response]:
        return [_post(clients[name], **kwargs) for name in BACKENDS]

    return run


def _mask(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: "<masked>" if k == "request_id" else _mask(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_mask(item) for item in body]
    return body


def test_json_transcript_is_the_same_on_both_backends(
    clients: dict[str, httpx.Client], upload_dir: Path
) -> None:
    answers = _both(temperature="0")(clients)
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    first = answers[0].json()
    assert first == answers[1].json()
    assert first["model"] == "whisper-tiny.en" and first["language"] == "en"
    assert first["duration"] > 1 and first["text"].strip()
    assert set(first) == {"text", "language", "duration", "model"}


def test_verbose_json_with_words(clients: dict[str, httpx.Client], upload_dir: Path) -> None:
    fields = {"response_format": "verbose_json", "temperature": "0"}
    answers = [
        clients[name].post(
            URL,
            headers=AUTH,
            files=[
                ("file", ("speech.ogg", SPEECH, "audio/ogg")),
                ("timestamp_granularities[]", (None, "segment")),
                ("timestamp_granularities[]", (None, "word")),
            ],
            data=fields,
        )
        for name in BACKENDS
    ]
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    body = answers[0].json()
    assert body == answers[1].json()
    assert body["segments"] and body["words"]
    ends = [word["end"] for word in body["words"]]
    assert ends == sorted(ends) and ends[-1] <= body["duration"] + 0.5


@pytest.mark.parametrize(
    ("response_format", "media_type"),
    [("srt", "application/x-subrip"), ("vtt", "text/vtt"), ("text", "text/plain")],
)
def test_text_and_subtitle_formats_parse(
    clients: dict[str, httpx.Client], upload_dir: Path, response_format: str, media_type: str
) -> None:
    answers = _both(response_format=response_format, temperature="0")(clients)
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    assert answers[0].content == answers[1].content
    assert answers[0].headers["content-type"].split(";")[0] == media_type
    assert answers[0].headers["content-type"] == answers[1].headers["content-type"]
    text = answers[0].text
    if response_format == "srt":
        cues = list(srt.parse(text))
        assert cues and all(cue.start < cue.end for cue in cues)
    elif response_format == "vtt":
        cues = webvtt.from_buffer(io.StringIO(text)).captions
        assert cues and cues[0].text.strip()
    else:
        assert text.strip()


def test_openai_transcription_through_the_stub(
    clients: dict[str, httpx.Client], openai_stub: OpenAIStub, upload_dir: Path
) -> None:
    answers = _both(model="whisper-1", response_format="verbose_json")(clients)
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["model"] == "whisper-1"


def test_formats_languages_and_cost(clients: dict[str, httpx.Client]) -> None:
    for path, body in (
        ("/api/v1/transcription/formats", None),
        ("/api/v1/transcription/languages", None),
        ("/api/v1/transcription/estimate-cost", {"duration_seconds": 600, "model": "whisper-1"}),
        ("/api/v1/transcription/estimate-cost", {"duration_seconds": 60}),
    ):
        answers = [
            clients[name].request("POST" if body else "GET", path, headers=AUTH, json=body)
            for name in BACKENDS
        ]
        assert [a.status_code for a in answers] == [200, 200], (path, answers[0].text)
        assert answers[0].content == answers[1].content, path
    languages = (
        answers and clients["fastapi"].get("/api/v1/transcription/languages", headers=AUTH).json()
    )
    models = {entry["model"] for entry in languages["data"]}
    assert {"whisper-tiny.en", "whisper-1"} <= models


def _estimates(clients: dict[str, httpx.Client]) -> dict[tuple[str, str], bytes]:
    url = "/api/v1/transcription/estimate-cost"
    answers = {}
    for name in BACKENDS:
        for model in ("whisper-tiny.en", "whisper-1"):
            body = {"duration_seconds": 600, "model": model}
            response = clients[name].post(url, headers=AUTH, json=body)
            assert response.status_code == 200, response.text
            answers[name, model] = response.content
    return answers


def test_cost_estimate_does_not_depend_on_what_the_process_transcribed(
    clients: dict[str, httpx.Client], upload_dir: Path
) -> None:
    """The estimate quotes the configured factor: a transcription in one process (one worker of
    several) must not change what that process answers, or two workers would disagree."""
    before = _estimates(clients)
    local = json.loads(before["fastapi", "whisper-tiny.en"])
    assert local["real_time_factor"] == 0.05  # SYNTHSTACK_WHISPER_REAL_TIME_FACTOR's default
    assert local["real_time_factor_source"] == "benchmark"
    assert local["estimated_processing_seconds"] == 30.0
    remote = json.loads(before["fastapi", "whisper-1"])
    assert remote["real_time_factor"] is None
    assert remote["real_time_factor_source"] == "unknown"
    for name in BACKENDS:  # both models really run in both processes
        for model in ("whisper-tiny.en", "whisper-1"):
            answer = _post(clients[name], model=model)
            assert answer.status_code == 200, answer.text
    assert _estimates(clients) == before
    assert before["fastapi", "whisper-tiny.en"] == before["django", "whisper-tiny.en"]
    assert before["fastapi", "whisper-1"] == before["django", "whisper-1"]


def test_the_configured_real_time_factor_is_quoted(django_app: Any) -> None:
    env = {"SYNTHSTACK_WHISPER_REAL_TIME_FACTOR": "0.2"}
    with rebuilt_clients(django_app, env) as clients:
        answers = [
            clients[name].post(
                "/api/v1/transcription/estimate-cost",
                headers=AUTH,
                json={"duration_seconds": 60, "model": "whisper-tiny.en"},
            )
            for name in BACKENDS
        ]
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    assert answers[0].content == answers[1].content
    assert answers[0].json()["real_time_factor"] == 0.2
    assert answers[0].json()["estimated_processing_seconds"] == 12.0


REFUSALS: list[tuple[str, dict[str, Any], int, str]] = [
    ("not audio", {"content": b"hello, this is text", "name": "a.wav"}, 415, "not_audio"),
    ("an image", {"content": (FIXTURES / "image.png").read_bytes(), "name": "a.mp3"}, 415, "not_audio"),
    ("empty file", {"content": b"", "name": "a.wav"}, 422, "empty_file"),
    ("truncated", {"content": (FIXTURES / "truncated.wav").read_bytes()}, 422, "truncated_audio"),
    ("corrupt", {"content": (FIXTURES / "corrupt.mp3").read_bytes()}, 422, "corrupt_audio"),
    ("a language tiny.en cannot do", {"language": "fr"}, 422, "language_not_supported"),
    ("an unknown language code", {"language": "xx"}, 422, "invalid_request"),
    ("words without verbose_json", {"timestamp_granularities[]": "word"}, 422, "invalid_request"),
    ("an unknown format", {"response_format": "docx"}, 422, "invalid_request"),
    ("temperature out of range", {"temperature": "1.5"}, 422, "invalid_request"),
    ("an unknown model", {"model": "whisper-huge"}, 422, "model_not_available"),
    ("over the duration limit", {"content": (FIXTURES / "long.ogg").read_bytes()}, 413, "audio_too_long"),
    ("over the size limit", {"content": SPEECH * 60}, 413, "payload_too_large"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "fields", "status", "code"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_bad_uploads_are_refused_alike(
    clients: dict[str, httpx.Client],
    upload_dir: Path,
    case: str,
    fields: dict[str, Any],
    status: int,
    code: str,
) -> None:
    answers = _both(**fields)(clients)
    assert [a.status_code for a in answers] == [status, status], (case, answers[0].text)
    problems = [_mask(answer.json()) for answer in answers]
    assert problems[0] == problems[1]
    assert problems[0]["code"] == code, problems[0]


def test_silence_is_an_empty_transcript(clients: dict[str, httpx.Client], upload_dir: Path) -> None:
    silence = (FIXTURES / "silence.flac").read_bytes()
    answers = _both(content=silence, name="silence.flac", content_type="audio/flac")(clients)
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["text"] == "" and answers[0].json()["duration"] > 2.5


def test_a_missing_file_part_and_a_wrong_content_type(
    clients: dict[str, httpx.Client], upload_dir: Path
) -> None:
    for name in BACKENDS:
        client = clients[name]
        missing = client.post(URL, headers=AUTH, files={"response_format": (None, "json")})
        assert missing.status_code == 422
        assert json.loads(missing.text)["errors"][0]["loc"] == ["file"]
        wrong = client.post(URL, headers=AUTH, json={"file": "speech.ogg"})
        assert wrong.status_code == 415
