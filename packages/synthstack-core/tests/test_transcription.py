"""Transcription: real faster-whisper on the committed fixtures, real PyAV decoding, subtitles
checked with the real ``srt`` and ``webvtt-py`` parsers, and OpenAI through the real SDK against
the local stub.

The fixtures (``fixtures/audio/``, made by ``scripts/make_audio_fixtures.py`` with espeak-ng) are
committed, so these tests need neither espeak-ng nor the network.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import openai
import pytest
import srt
import webvtt

from synthstack_core.errors import (
    InvalidRequest,
    ModelNotAvailable,
    PayloadTooLarge,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    SynthStackError,
    UnsupportedMediaType,
)
from synthstack_core.features.audio import (
    SAMPLE_RATE,
    AudioUpload,
    decode_audio,
    load_audio,
    probe_audio,
)
from synthstack_core.features.subtitles import (
    MAX_LINE_CHARS,
    render_srt,
    render_vtt,
    subtitle_cues,
)
from synthstack_core.features.transcription import TranscriptionResult, TranscriptionService
from synthstack_core.multipart import FormData, UploadedFile, parse_form
from synthstack_core.providers.openai_client import OpenAIClient
from synthstack_core.providers.transcription import (
    Transcript,
    TranscriptSegment,
    TranscriptWord,
)
from synthstack_core.schemas.common import Limits
from synthstack_core.schemas.transcription import (
    CostEstimateRequest,
    TranscriptionForm,
    TranscriptionParameters,
    TranscriptionResponse,
    VerboseTranscriptionResponse,
)
from synthstack_core.settings import Settings
from synthstack_testing import OpenAIStub
from synthstack_testing.openai_stub import expected_transcript

FIXTURES = Path(__file__).parent / "fixtures" / "audio"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
# tiny.en hears espeak-ng's "dog" as "nog" or "nard" once compressed: the other words are safe.
FOX = {"quick", "brown", "fox", "lazy"}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def _upload(name: str) -> AudioUpload:
    path = FIXTURES / name
    return AudioUpload(path, filename=name, content_type="audio/whatever", size=path.stat().st_size)


def _form(**fields: Any) -> TranscriptionParameters:
    return TranscriptionParameters.model_validate(fields)


def _settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
async def local() -> AsyncIterator[TranscriptionService]:
    """The local model only (no OpenAI configured); loaded once for the module."""
    service = TranscriptionService.from_settings(_settings(), openai=None)
    await service.check()
    yield service
    await service.aclose()


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


@pytest.fixture
async def remote(stub: OpenAIStub) -> AsyncIterator[TranscriptionService]:
    """The local model and OpenAI's (through the stub), no retries, a short timeout."""
    stub.reset()
    settings = _settings(
        openai_api_key=stub.api_key,
        openai_base_url=stub.base_url,
        provider_max_retries=0,
        provider_timeout_seconds=1.0,
    )
    client = OpenAIClient.from_settings(settings)
    service = TranscriptionService.from_settings(settings, openai=client)
    yield service
    await service.aclose()
    await client.aclose()


# -- the local model on real audio ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["speech.wav", "speech.flac", "speech.mp3", "speech.ogg"])
async def test_local_model_transcribes_every_container(
    local: TranscriptionService, name: str
) -> None:
    result = await local.transcribe(_upload(name), _form())
    response = result.render()
    assert isinstance(response, TranscriptionResponse)
    assert _words(response.text) >= FOX, response.text
    assert response.language == "en"
    assert response.model == "whisper-tiny.en"
    assert response.duration == pytest.approx(MANIFEST["files"]["speech.wav"]["duration"], abs=0.1)
    assert result.media_type == "application/json"
    assert json.loads(result.body()) == response.model_dump()


async def test_verbose_json_segments_and_words_are_ordered_and_within_the_audio(
    local: TranscriptionService,
) -> None:
    form = _form(response_format="verbose_json", timestamp_granularities=["segment", "word"])
    result = await local.transcribe(_upload("long.ogg"), form)
    response = result.render()
    assert isinstance(response, VerboseTranscriptionResponse)
    duration = response.duration
    assert duration == pytest.approx(MANIFEST["files"]["long.ogg"]["duration"], abs=0.1)
    assert len(response.segments) >= 4
    assert [s.id for s in response.segments] == list(range(len(response.segments)))
    previous = 0.0
    for segment in response.segments:
        assert previous <= segment.start <= segment.end <= duration
        assert segment.avg_logprob is not None and segment.no_speech_prob is not None
        previous = segment.start
    assert response.words is not None and len(response.words) >= 40
    previous = 0.0
    for word in response.words:
        assert previous <= word.start <= word.end <= duration
        previous = word.start
    heard = _words(response.text)
    assert {"meeting", "thursday", "umbrella", "garden", "window"} <= heard, response.text
    body = json.loads(result.body())
    assert set(body) == {"text", "language", "duration", "model", "segments", "words"}


async def test_a_job_s_progress_is_reported_segment_by_segment(
    local: TranscriptionService,
) -> None:
    """Seconds of audio transcribed, told to a job's progress as each segment is heard (from the
    model's thread), never going back, ending with the segments' end."""
    reported: list[tuple[int, int | None]] = []

    async def progress(done: int, total: int | None) -> None:
        reported.append((done, total))

    form = _form(response_format="verbose_json", temperature="0")
    result = await local.transcribe(_upload("long.ogg"), form, progress=progress)
    response = result.render()
    assert isinstance(response, VerboseTranscriptionResponse)
    assert reported[0] == (0, 35)  # 34.97 s, rounded up
    assert {total for _, total in reported} == {35}
    done = [value for value, _ in reported]
    assert done == sorted(done) and len(set(done)) == len(done)
    assert len(done) >= 4  # one report per segment (at least four here), beside the first
    assert done[-1] == int(response.segments[-1].end)
    # Without a progress, and with one, the same transcript.
    plain = (await local.transcribe(_upload("long.ogg"), form)).render()
    assert plain == response


async def test_what_a_progress_raises_stops_the_transcription(
    local: TranscriptionService,
) -> None:
    """A job cancelled while it runs: its progress raises, in the model's thread, and the
    transcription stops there, at the first segment."""
    reported: list[int] = []

    class Cancelled(Exception):
        pass

    async def progress(done: int, total: int | None) -> None:
        reported.append(done)
        if done > 0:
            raise Cancelled

    with pytest.raises(Cancelled):
        await local.transcribe(_upload("long.ogg"), _form(), progress=progress)
    assert len(reported) == 2 and reported[0] == 0 and 0 < reported[1] < 35


async def test_a_remote_model_reports_only_the_total(
    remote: TranscriptionService,
) -> None:
    reported: list[tuple[int, int | None]] = []

    async def progress(done: int, total: int | None) -> None:
        reported.append((done, total))

    await remote.transcribe(_upload("speech.wav"), _form(model="whisper-1"), progress=progress)
    assert reported == [(0, 4)]


async def test_verbose_json_without_word_granularity_has_no_words(
    local: TranscriptionService,
) -> None:
    result = await local.transcribe(_upload("s07.ogg"), _form(response_format="verbose_json"))
    body = json.loads(result.body())
    assert "words" not in body
    assert body["segments"] and "favorite" in body["text"].lower()


async def test_srt_vtt_and_text_of_a_real_transcript(local: TranscriptionService) -> None:
    upload = _upload("long.ogg")
    srt_result = await local.transcribe(upload, _form(response_format="srt"))
    assert srt_result.media_type == "application/x-subrip; charset=utf-8"
    text = srt_result.render()
    assert isinstance(text, str)
    subtitles = list(srt.parse(text))
    assert [s.index for s in subtitles] == list(range(1, len(subtitles) + 1))
    assert all(s.start < s.end for s in subtitles)
    assert all(a.end <= b.start for a, b in itertools.pairwise(subtitles))
    assert "umbrella" in " ".join(s.content for s in subtitles).lower()

    vtt_result = await local.transcribe(upload, _form(response_format="vtt"))
    assert vtt_result.media_type == "text/vtt; charset=utf-8"
    vtt_text = vtt_result.render()
    assert isinstance(vtt_text, str) and vtt_text.startswith("WEBVTT\n")
    captions = list(webvtt.from_string(vtt_text))
    assert len(captions) == len(subtitles)
    assert captions[0].start == srt.timedelta_to_srt_timestamp(subtitles[0].start).replace(",", ".")

    plain = await local.transcribe(upload, _form(response_format="text"))
    assert plain.media_type == "text/plain; charset=utf-8"
    assert plain.body().decode().endswith("\n")
    assert "garden" in plain.body().decode().lower()


async def test_silence_and_noise_give_an_empty_transcript(local: TranscriptionService) -> None:
    for name in ("silence.flac", "noise.ogg"):
        result = await local.transcribe(_upload(name), _form(response_format="verbose_json"))
        response = result.render()
        assert isinstance(response, VerboseTranscriptionResponse)
        assert response.text == "" and response.segments == [], name
        assert response.duration == pytest.approx(3.0, abs=0.05)
        srt_body = (await local.transcribe(_upload(name), _form(response_format="srt"))).render()
        assert srt_body == ""
        assert list(srt.parse(srt_body)) == []


async def test_prompt_and_temperature_are_accepted(local: TranscriptionService) -> None:
    # Any temperature above 0 samples (a random transcript): 0 keeps the test deterministic.
    form = _form(prompt="A pangram about a fox.", temperature="0")
    result = await local.transcribe(_upload("speech.ogg"), form)
    assert "fox" in result.transcript.text.lower()


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "error", "status", "code"),
    [
        ("empty.bin", InvalidRequest, 422, "empty_file"),
        ("not_audio.txt", UnsupportedMediaType, 415, "not_audio"),
        ("image.png", UnsupportedMediaType, 415, "not_audio"),
        ("truncated.wav", InvalidRequest, 422, "truncated_audio"),
        ("truncated.flac", InvalidRequest, 422, "truncated_audio"),
        ("header_only.wav", InvalidRequest, 422, "truncated_audio"),
        ("corrupt.mp3", InvalidRequest, 422, "corrupt_audio"),
    ],
)
async def test_bad_files_are_refused_with_a_stable_code(
    local: TranscriptionService,
    name: str,
    error: type[SynthStackError],
    status: int,
    code: str,
) -> None:
    with pytest.raises(error) as caught:
        await local.transcribe(_upload(name), _form())
    assert caught.value.status == status
    assert caught.value.instance_code == code


async def test_the_declared_type_and_name_are_not_trusted(local: TranscriptionService) -> None:
    path = FIXTURES / "not_audio.txt"
    disguised = AudioUpload(path, filename="song.mp3", content_type="audio/mpeg", size=256)
    with pytest.raises(UnsupportedMediaType):
        await local.transcribe(disguised, _form())
    real = AudioUpload(FIXTURES / "speech.ogg", filename="notes.txt", content_type="text/plain")
    assert "fox" in (await local.transcribe(real, _form())).transcript.text.lower()


async def test_limits_on_bytes_and_seconds() -> None:
    small = TranscriptionService.from_settings(
        _settings(max_audio_bytes=1024, max_audio_seconds=2.0), openai=None
    )
    with pytest.raises(PayloadTooLarge) as caught:
        await small.transcribe(_upload("speech.wav"), _form())
    assert (caught.value.status, caught.value.instance_code) == (413, "audio_too_large")

    short = TranscriptionService.from_settings(_settings(max_audio_seconds=2.0), openai=None)
    with pytest.raises(PayloadTooLarge) as caught:
        await short.transcribe(_upload("speech.flac"), _form())
    assert (caught.value.status, caught.value.instance_code) == (413, "audio_too_long")
    assert "2 s" in caught.value.detail


def test_decoding_stops_at_the_limit_when_the_header_says_nothing() -> None:
    path = FIXTURES / "long.ogg"
    info = probe_audio(path, max_bytes=10**7, max_seconds=3600)
    assert info.declared_duration is not None and info.declared_duration > 30
    silent_header = dataclasses.replace(info, declared_duration=None)
    with pytest.raises(PayloadTooLarge) as caught:
        decode_audio(path, silent_header, max_seconds=5)
    assert caught.value.instance_code == "audio_too_long"


def test_decoded_audio_is_16_khz_mono_float32() -> None:
    decoded = load_audio(_upload("speech.mp3"), max_bytes=10**7, max_seconds=60)
    assert decoded.samples is not None
    assert decoded.samples.dtype == np.float32 and decoded.samples.ndim == 1
    assert decoded.duration == pytest.approx(len(decoded.samples) / SAMPLE_RATE)
    assert 0.1 < decoded.peak <= 1.0 and not decoded.silent
    assert decoded.info.container == "mp3"
    only_counted = load_audio(
        _upload("speech.mp3"), max_bytes=10**7, max_seconds=60, keep_samples=False
    )
    assert only_counted.samples is None and only_counted.duration == decoded.duration


# -- request validation --------------------------------------------------------------------------


async def test_a_parsed_upload_form_is_transcribed(local: TranscriptionService) -> None:
    path = FIXTURES / "speech.flac"
    upload = UploadedFile("file", "speech.flac", "audio/flac", path, path.stat().st_size)
    form = FormData(
        fields={
            "language": ["EN"],
            "temperature": ["0.0"],
            "response_format": ["verbose_json"],
            "timestamp_granularities[]": ["segment", "word"],
            "prompt": [""],
            "model": ["whisper-tiny.en"],
        },
        files={"file": [upload]},
    )
    parsed = parse_form(TranscriptionForm, form, Limits())
    assert parsed.language == "en" and parsed.temperature == 0.0
    assert parsed.timestamp_granularities == ["segment", "word"] and parsed.word_timestamps
    assert parsed.prompt is None and parsed.model == "whisper-tiny.en"
    result = await local.transcribe_form(parsed)
    response = result.render()
    assert isinstance(response, VerboseTranscriptionResponse) and response.words
    assert _words(response.text) >= FOX


def test_strings_become_numbers_and_blanks_become_unset() -> None:
    parsed = _form(temperature=" 0.5 ", language="", model="", response_format="")
    assert parsed.temperature == 0.5 and parsed.language is None and parsed.model is None
    assert parsed.response_format == "json" and parsed.timestamp_granularities == []
    strict = TranscriptionParameters.model_validate(
        {"temperature": 1, "timestamp_granularities": "word", "response_format": "verbose_json"},
        strict=True,
    )
    assert strict.temperature == 1.0 and strict.timestamp_granularities == ["word"]


def test_the_file_is_required_and_the_schema_has_no_null() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_form(TranscriptionForm, FormData(fields={"model": ["whisper-1"]}), Limits())
    assert [e.loc for e in caught.value.errors] == [("file",)]
    schema = json.dumps(TranscriptionForm.model_json_schema())
    assert '"type": "null"' not in schema and '"format": "binary"' in schema


@pytest.mark.parametrize(
    ("fields", "loc", "kind"),
    [
        ({"temperature": ["1.5"]}, "temperature", "less_than_equal"),
        ({"temperature": ["nan"]}, "temperature", "float_parsing"),
        ({"temperature": ["warm"]}, "temperature", "float_parsing"),
        ({"response_format": ["mp3"]}, "response_format", "literal_error"),
        ({"language": ["xx"]}, "language", "language_code"),
        ({"language": ["en-US"]}, "language", "string_too_long"),
        (
            {"response_format": ["verbose_json"], "timestamp_granularities[]": ["word", "word"]},
            "timestamp_granularities",
            "list_duplicates",
        ),
        (
            {"timestamp_granularities[]": ["word"]},
            "timestamp_granularities",
            "verbose_json_required",
        ),
        (
            {"response_format": ["verbose_json"], "timestamp_granularities[]": ["char"]},
            "timestamp_granularities",
            "literal_error",
        ),
    ],
)
def test_invalid_form_fields(fields: dict[str, list[str]], loc: str, kind: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_form(TranscriptionForm, FormData(fields=fields), Limits())
    assert caught.value.status == 422
    assert any(e.loc[0] == loc and e.type == kind for e in caught.value.errors), caught.value.errors


async def test_another_language_is_refused_naming_the_models_that_can(
    local: TranscriptionService, remote: TranscriptionService
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await local.transcribe(_upload("speech.ogg"), _form(language="fr"))
    error = caught.value
    assert (error.status, error.instance_code) == (422, "language_not_supported")
    assert "No model served here transcribes French (fr)" in error.detail
    assert error.errors[0].loc == ("language",)

    with pytest.raises(InvalidRequest) as caught:
        await remote.transcribe(_upload("speech.ogg"), _form(language="fr"))
    detail = caught.value.detail
    assert "whisper-tiny.en does not transcribe French (fr)" in detail
    for model in ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"):
        assert model in detail


async def test_unknown_model_and_formats_a_model_cannot_give(
    remote: TranscriptionService,
) -> None:
    with pytest.raises(ModelNotAvailable):
        await remote.transcribe(_upload("speech.ogg"), _form(model="whisper-large-v9"))
    with pytest.raises(InvalidRequest) as caught:
        await remote.transcribe(
            _upload("speech.ogg"), _form(model="gpt-4o-transcribe", response_format="srt")
        )
    assert caught.value.instance_code == "timestamps_not_supported"
    assert "whisper-tiny.en" in caught.value.detail and "whisper-1" in caught.value.detail


# -- OpenAI through the real SDK and the stub ----------------------------------------------------


async def test_openai_whisper_verbose_json_with_words(
    remote: TranscriptionService, stub: OpenAIStub
) -> None:
    form = _form(
        model="whisper-1",
        language="en",
        prompt="Names: Fox.",
        temperature="0",
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    result = await remote.transcribe(_upload("speech.wav"), form)
    response = result.render()
    assert isinstance(response, VerboseTranscriptionResponse)
    wav = (FIXTURES / "speech.wav").read_bytes()
    assert response.text == expected_transcript(wav)
    assert response.language == "en" and response.model == "whisper-1"
    assert response.duration == pytest.approx(MANIFEST["files"]["speech.wav"]["duration"], abs=0.01)
    assert len(response.segments) == 2 and response.words
    assert all(w.end <= response.duration for w in response.words)
    sent = stub.requests[-1]
    assert sent.path == "/v1/audio/transcriptions"
    assert sent.body["model"] == "whisper-1"
    assert sent.body["response_format"] == "verbose_json"
    assert sent.body["timestamp_granularities[]"] == ["segment", "word"]
    assert sent.body["language"] == "en" and sent.body["prompt"] == "Names: Fox."
    assert sent.body["file"] == {
        "filename": "audio.wav",
        "content_type": "audio/wav",
        "size": len(wav),
    }


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt"])
async def test_openai_whisper_every_format(remote: TranscriptionService, fmt: str) -> None:
    result = await remote.transcribe(
        _upload("speech.ogg"), _form(model="whisper-1", response_format=fmt)
    )
    expected = expected_transcript((FIXTURES / "speech.ogg").read_bytes())
    rendered = result.render()
    if fmt == "json":
        assert isinstance(rendered, TranscriptionResponse) and rendered.text == expected
    elif fmt == "text":
        assert rendered == expected + "\n"
    elif fmt == "srt":
        assert isinstance(rendered, str)
        assert " ".join(s.content.replace("\n", " ") for s in srt.parse(rendered)) == expected
    else:
        assert isinstance(rendered, str)
        captions = webvtt.from_string(rendered)
        assert " ".join(c.text.replace("\n", " ") for c in captions) == expected


async def test_openai_gpt4o_models_answer_json_only(
    remote: TranscriptionService, stub: OpenAIStub
) -> None:
    form = _form(model="gpt-4o-mini-transcribe", language="de")
    result = await remote.transcribe(_upload("speech.mp3"), form)
    response = result.render()
    assert isinstance(response, TranscriptionResponse)
    assert response.text == expected_transcript((FIXTURES / "speech.mp3").read_bytes())
    assert response.language == "de" and response.model == "gpt-4o-mini-transcribe"
    assert stub.requests[-1].body["response_format"] == "json"
    assert stub.requests[-1].body["file"]["filename"] == "audio.mp3"


async def test_openai_gets_flac_for_a_container_it_does_not_read(
    remote: TranscriptionService, stub: OpenAIStub, tmp_path: Path
) -> None:
    decoded = load_audio(_upload("speech.flac"), max_bytes=10**7, max_seconds=60)
    assert decoded.samples is not None
    path = tmp_path / "speech.aiff"
    with av.open(str(path), mode="w", format="aiff") as container:
        stream = container.add_stream("pcm_s16be", rate=SAMPLE_RATE)
        stream.layout = "mono"
        pcm = (decoded.samples * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    result = await remote.transcribe(AudioUpload(path), _form(model="whisper-1"))
    sent = stub.requests[-1].body["file"]
    assert sent["filename"] == "audio.flac" and sent["content_type"] == "audio/flac"
    assert result.transcript.text and sent["size"] > 1000


async def test_openai_silence_is_not_sent(remote: TranscriptionService, stub: OpenAIStub) -> None:
    result = await remote.transcribe(_upload("silence.flac"), _form(model="whisper-1"))
    assert result.transcript.text == "" and stub.requests == []


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("500", ProviderError, 502),
        ("400", ProviderError, 502),
        ("429", RateLimited, 429),
        ("garbage", ProviderError, 502),
        ("delay", ProviderTimeout, 504),
    ],
)
async def test_openai_failures_map_to_our_errors(
    remote: TranscriptionService, stub: OpenAIStub, fault: str, error: type[Exception], status: int
) -> None:
    if fault == "garbage":
        stub.garbage_next()
    elif fault == "delay":
        stub.delay_next(3.0)
    elif fault == "429":
        stub.fail_next(429, retry_after=7)
    else:
        stub.fail_next(int(fault))
    with pytest.raises(error) as caught:
        await remote.transcribe(_upload("speech.ogg"), _form(model="whisper-1"))
    problem = caught.value
    assert isinstance(problem, SynthStackError) and problem.status == status
    assert stub.api_key not in problem.detail and "Injected" not in problem.detail
    if fault == "429":
        assert problem.headers["Retry-After"] == "7"


def test_stub_answers_like_openai_through_the_sdk(stub: OpenAIStub) -> None:
    wav = (FIXTURES / "speech.wav").read_bytes()
    with openai.OpenAI(base_url=stub.base_url, api_key=stub.api_key, max_retries=0) as client:
        verbose = client.audio.transcriptions.create(
            file=("speech.wav", wav, "audio/wav"),
            model="whisper-1",
            response_format="verbose_json",
            timestamp_granularities=["segment", "word"],
        )
        assert verbose.text == expected_transcript(wav) and verbose.language == "english"
        assert verbose.segments and verbose.words
        vtt = client.audio.transcriptions.create(
            file=("speech.wav", wav), model="whisper-1", response_format="vtt"
        )
        assert isinstance(vtt, str) and vtt.startswith("WEBVTT")
        with pytest.raises(openai.BadRequestError):
            client.audio.transcriptions.create(
                file=("speech.wav", wav), model="gpt-4o-transcribe", response_format="srt"
            )
        with pytest.raises(openai.NotFoundError):
            client.audio.transcriptions.create(file=("speech.wav", wav), model="whisper-9")
        with pytest.raises(openai.BadRequestError):
            client.audio.transcriptions.create(file=("speech.txt", wav), model="whisper-1")


# -- subtitles -----------------------------------------------------------------------------------


def _transcript(*segments: TranscriptSegment, words: tuple[TranscriptWord, ...] | None = None):
    end = max((s.end for s in segments), default=0.0)
    return Transcript("x", "en", end, "m", segments=segments, words=words)


def test_long_segments_wrap_and_split_into_numbered_cues() -> None:
    text = " ".join(f"word{i}" for i in range(40))
    segment = TranscriptSegment(0, 3661.25, 3681.75, text)
    cues = subtitle_cues([segment])
    assert len(cues) > 1
    assert all(len(line) <= MAX_LINE_CHARS for cue in cues for line in cue.lines)
    assert all(len(cue.lines) <= 2 for cue in cues)
    assert cues[0].start == 3661.25 and cues[-1].end == 3681.75
    parsed = list(srt.parse(render_srt(cues)))
    assert [p.index for p in parsed] == list(range(1, len(cues) + 1))
    assert render_srt(cues).startswith("1\n01:01:01,250 --> ")
    assert " ".join(p.content.replace("\n", " ") for p in parsed) == text
    vtt = render_vtt(cues)
    assert "01:01:01.250 --> " in vtt
    assert len(list(webvtt.from_string(vtt))) == len(cues)


def test_cues_split_at_word_timestamps_when_known() -> None:
    tokens = [f"w{i:02d}" for i in range(30)]
    words = tuple(TranscriptWord(t, i * 0.5, i * 0.5 + 0.4) for i, t in enumerate(tokens))
    cues = subtitle_cues([TranscriptSegment(0, 0.0, 15.0, " ".join(tokens))], words)
    assert len(cues) >= 2
    first_word_of_second = cues[1].lines[0].split(" ")[0]
    assert cues[1].start == pytest.approx(words[tokens.index(first_word_of_second)].start)


def test_escaping_and_degenerate_timings() -> None:
    segments = [
        TranscriptSegment(0, 0.0, 1.0, "Tom & Jerry <b>bold</b> --> next"),
        TranscriptSegment(1, 0.5, 0.5, "overlapping\n\nwith a blank line"),
        TranscriptSegment(2, 2.0, 2.0, "   "),
    ]
    cues = subtitle_cues(segments)
    assert len(cues) == 2
    assert cues[1].start >= cues[0].end and cues[1].end > cues[1].start
    vtt = render_vtt(cues)
    assert "Tom &amp; Jerry &lt;b&gt;bold&lt;/b&gt; --&gt; next" in vtt
    captions = list(webvtt.from_string(vtt))
    assert len(captions) == 2 and captions[1].text == "overlapping with a blank line"
    srt_text = render_srt(cues)
    assert "--> next" not in srt_text and "-> next" in srt_text
    parsed = list(srt.parse(srt_text))
    assert parsed[1].content == "overlapping with a blank line"
    assert render_srt([]) == "" and render_vtt([]) == "WEBVTT\n"


def test_result_renders_each_format() -> None:
    transcript = Transcript(
        "Hello there.",
        "en",
        2.0,
        "whisper-tiny.en",
        segments=(TranscriptSegment(0, 0.0, 1.5, "Hello there.", -0.2, 0.01),),
    )
    assert TranscriptionResult(transcript, "text").body() == b"Hello there.\n"
    verbose = json.loads(TranscriptionResult(transcript, "verbose_json").body())
    assert verbose["segments"][0] == {
        "id": 0,
        "start": 0.0,
        "end": 1.5,
        "text": "Hello there.",
        "avg_logprob": -0.2,
        "no_speech_prob": 0.01,
    }
    assert "words" not in verbose
    with_words = TranscriptionResult(
        dataclasses.replace(transcript, words=()), "verbose_json", words=True
    )
    assert json.loads(with_words.body())["words"] == []


# -- formats, languages, cost --------------------------------------------------------------------


def test_formats_are_probed_from_pyav(local: TranscriptionService) -> None:
    formats = local.formats()
    containers = {c.name for c in formats.containers}
    assert {"wav", "ogg", "flac", "mp3", "mov", "matroska"} <= containers
    codecs = {c.name for c in formats.codecs}
    assert {"pcm_s16le", "flac", "mp3float", "opus", "vorbis", "aac"} <= codecs
    assert formats.limits.max_audio_bytes == 25 * 1_048_576
    assert formats.limits.max_audio_seconds == 3600 and formats.limits.sample_rate == 16_000
    assert formats.response_formats == ["json", "verbose_json", "text", "srt", "vtt"]
    assert "FFmpeg" in formats.decoder


def test_languages_per_model(local: TranscriptionService, remote: TranscriptionService) -> None:
    only_local = local.languages()
    assert only_local.default_model == "whisper-tiny.en"
    [tiny] = only_local.data
    assert tiny.languages[0].code == "en" and tiny.languages[0].name == "English"
    assert not tiny.multilingual and tiny.timestamps and tiny.default

    listed = {m.model: m for m in remote.languages().data}
    assert set(listed) == {
        "whisper-tiny.en",
        "whisper-1",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
    }
    whisper = listed["whisper-1"]
    assert whisper.multilingual and whisper.timestamps and whisper.provider == "openai"
    assert {"fr": "French", "ja": "Japanese"}.items() <= {
        lang.code: lang.name for lang in whisper.languages
    }.items()
    assert not listed["gpt-4o-transcribe"].timestamps


def test_estimate_cost(remote: TranscriptionService) -> None:
    local_estimate = remote.estimate_cost(CostEstimateRequest(duration_seconds=600))
    assert local_estimate.model == "whisper-tiny.en" and local_estimate.provider == "local"
    assert local_estimate.price_per_minute_usd is None and local_estimate.estimated_cost_usd is None
    assert local_estimate.real_time_factor == 0.05
    assert local_estimate.real_time_factor_source == "benchmark"
    assert local_estimate.estimated_processing_seconds == 30.0
    assert not local_estimate.exceeds_limit

    paid = remote.estimate_cost(CostEstimateRequest(duration_seconds=5400, model="whisper-1"))
    assert paid.price_per_minute_usd == 0.006
    assert paid.estimated_cost_usd == pytest.approx(0.54)
    assert paid.exceeds_limit
    assert paid.real_time_factor_source == "unknown" and paid.estimated_processing_seconds is None
    mini = remote.estimate_cost(
        CostEstimateRequest(duration_seconds=60, model="gpt-4o-mini-transcribe")
    )
    assert mini.estimated_cost_usd == pytest.approx(0.003)
    with pytest.raises(ModelNotAvailable):
        remote.estimate_cost(CostEstimateRequest(duration_seconds=60, model="nope"))


async def test_cost_estimate_quotes_the_configured_factor_not_a_measured_one(
    local: TranscriptionService,
) -> None:
    """Every worker quotes the same: what one process measured of its own transcriptions would
    make two workers answer differently."""
    before = local.estimate_cost(CostEstimateRequest(duration_seconds=60))
    await local.transcribe(_upload("speech.ogg"), _form())
    assert local.estimate_cost(CostEstimateRequest(duration_seconds=60)) == before
    configured = TranscriptionService.from_settings(
        _settings(whisper_real_time_factor=0.25), openai=None
    )
    try:
        estimate = configured.estimate_cost(CostEstimateRequest(duration_seconds=60))
    finally:
        await configured.aclose()
    assert estimate.real_time_factor == 0.25 and estimate.estimated_processing_seconds == 15.0
    assert estimate.real_time_factor_source == "benchmark"


def test_cost_request_validation() -> None:
    for bad in ({"duration_seconds": 0}, {"duration_seconds": "60"}, {"duration_seconds": 1e9}):
        with pytest.raises(ValueError):
            CostEstimateRequest.model_validate(bad, strict=True)
