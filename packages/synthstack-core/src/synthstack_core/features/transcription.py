"""Transcription: speech to text, as JSON, plain text or subtitles; formats, languages, cost.

:meth:`TranscriptionService.transcribe_form` takes the validated :class:`TranscriptionForm` (its
file already on disk, spooled and size-limited by the upload pipeline);
:meth:`TranscriptionService.transcribe` takes any file on disk and
:class:`TranscriptionParameters`. Either checks the request against the
chosen model *before* touching the audio (unknown model, a language it does not know, a format
that needs timestamps it cannot give), then reads the audio by its content
(:mod:`synthstack_core.features.audio`, in a worker thread) and hands it to the provider. The
answer, a :class:`TranscriptionResult`, renders any ``response_format``.

Decisions (also in the problem codes' docs):

* silent audio (digital silence, or speech-free audio where Whisper finds no segment) is a 200
  with an empty transcript (``text: ""``, no segments) and its duration, not an error: the file
  is valid, there is just nothing said in it;
* audio longer than ``max_audio_seconds`` is a 413 ``audio_too_long`` (like an oversize file, the
  caller must send less), refused from the container's declared duration before decoding.

With ``Prefer: respond-async`` (and the jobs feature), everything but the model's work is done
first (the form, the model and its capabilities, the audio probed and decoded), so a refused
request gets the synchronous call's 4xx and no job; then the file's bytes are kept with a
``transcription-transcribe`` job in PostgreSQL and a worker transcribes them. The job's progress
counts seconds of audio: the total is known from the start (the decoded duration), and local
Whisper reports each segment's end as it transcribes it (a cancelled job stops there); a remote
model reports nothing until it is done.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import anyio.from_thread
import anyio.to_thread

from synthstack_core.errors import FieldError, InvalidRequest
from synthstack_core.features.audio import (
    SAMPLE_RATE,
    AudioUpload,
    DecodedAudio,
    decoder_capabilities,
    load_audio,
)
from synthstack_core.features.jobs import JobService, Progress
from synthstack_core.features.subtitles import render_srt, render_vtt, subtitle_cues
from synthstack_core.languages import language_name
from synthstack_core.metrics import model_inference
from synthstack_core.preferences import NO_PREFERENCES, Preferences
from synthstack_core.providers.model_registry import ModelRegistry
from synthstack_core.providers.openai_client import OpenAIClient
from synthstack_core.providers.transcription import (
    Transcript,
    TranscriptionModelSpec,
    TranscriptionOptions,
    TranscriptionProvider,
    TranscriptSegment,
    TranscriptWord,
)
from synthstack_core.registry import Module, Stack, operation
from synthstack_core.replies import RawReply, Reply
from synthstack_core.schemas.transcription import (
    RESPONSE_FORMATS,
    AudioCodec,
    AudioContainer,
    AudioFormatList,
    AudioLimits,
    CostEstimateRequest,
    CostEstimateResponse,
    ResponseFormat,
    SupportedLanguage,
    TranscriptionForm,
    TranscriptionLanguageList,
    TranscriptionModelLanguages,
    TranscriptionOutput,
    TranscriptionParameters,
    TranscriptionResponse,
    TranscriptionSegment,
    TranscriptionWord,
    VerboseTranscriptionResponse,
)
from synthstack_core.settings import Settings
from synthstack_core.usage import count as count_usage

__all__ = [
    "MEDIA_TYPES",
    "MODULE",
    "TranscriptionModelRegistry",
    "TranscriptionResult",
    "TranscriptionService",
]

#: The ``Content-Type`` of each response format.
MEDIA_TYPES: dict[ResponseFormat, str] = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}
_NEEDS_TIMESTAMPS = frozenset({"verbose_json", "srt", "vtt"})
#: The kind of job of an asynchronous transcription, and the path it was asked on.
JOB_KIND = "transcription-transcribe"
_PATH = "/api/v1/transcription/transcribe"


def _whole_seconds(duration: float) -> int:
    """A clip's length as a job's progress total: seconds, rounded up."""
    return math.ceil(duration)


class TranscriptionModelRegistry(ModelRegistry[TranscriptionModelSpec, TranscriptionProvider]):
    """Which transcription models this deployment serves, through which provider, the default."""

    def __init__(self, providers: Sequence[TranscriptionProvider], default_model: str) -> None:
        super().__init__(
            providers,
            default_model,
            setting="SYNTHSTACK_TRANSCRIPTION_MODEL",
            listing="/api/v1/transcription/languages",
            hint="; OpenAI models need OPENAI_API_KEY or OPENAI_BASE_URL.",
        )
        self._default_spec, _ = self.lookup(None)

    @property
    def default(self) -> TranscriptionModelSpec:
        """The model used when a request names none."""
        return self._default_spec


@dataclass(frozen=True)
class TranscriptionResult:
    """A transcript and the format the caller asked for; :meth:`render` gives the response.

    For ``json`` and ``verbose_json`` :meth:`render` returns a response model (send it as JSON);
    for ``text``, ``srt`` and ``vtt`` it returns the text to send with :attr:`media_type`.
    :meth:`body` gives the bytes of any format.
    """

    transcript: Transcript
    response_format: ResponseFormat
    words: bool = False

    @property
    def media_type(self) -> str:
        """The ``Content-Type`` of the rendered response."""
        return MEDIA_TYPES[self.response_format]

    def render(self) -> TranscriptionResponse | VerboseTranscriptionResponse | str:
        """The response in the requested format."""
        t = self.transcript
        match self.response_format:
            case "json":
                return TranscriptionResponse(
                    text=t.text, language=t.language, duration=t.duration, model=t.model
                )
            case "verbose_json":
                return self.verbose()
            case "text":
                return t.text + "\n" if t.text else ""
            case "srt":
                return render_srt(subtitle_cues(t.segments, t.words))
            case "vtt":
                return render_vtt(subtitle_cues(t.segments, t.words))

    def verbose(self) -> VerboseTranscriptionResponse:
        """The ``verbose_json`` model (words only when they were asked for)."""
        t = self.transcript
        return VerboseTranscriptionResponse(
            text=t.text,
            language=t.language,
            duration=t.duration,
            model=t.model,
            segments=[
                TranscriptionSegment(
                    id=s.id,
                    start=s.start,
                    end=s.end,
                    text=s.text,
                    avg_logprob=s.avg_logprob,
                    no_speech_prob=s.no_speech_prob,
                )
                for s in t.segments
            ],
            words=(
                [TranscriptionWord(word=w.word, start=w.start, end=w.end) for w in t.words or ()]
                if self.words
                else None
            ),
        )

    def body(self) -> bytes:
        """The rendered response as the bytes to send (compact JSON or UTF-8 text)."""
        rendered = self.render()
        if isinstance(rendered, str):
            return rendered.encode("utf-8")
        return rendered.__pydantic_serializer__.to_json(rendered)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _tidy(transcript: Transcript) -> Transcript:
    """Timestamps within [0, duration], never going backwards, each end at or after its start.

    Whisper's last segment often ends a little past the audio, and word times may overlap.
    """
    duration = transcript.duration
    segments: list[TranscriptSegment] = []
    floor = 0.0
    for index, segment in enumerate(transcript.segments):
        start = _clamp(segment.start, floor, duration)
        end = _clamp(segment.end, start, duration)
        no_speech = segment.no_speech_prob
        segments.append(
            replace(
                segment,
                id=index,
                start=round(start, 3),
                end=round(end, 3),
                no_speech_prob=None if no_speech is None else _clamp(no_speech, 0.0, 1.0),
            )
        )
        floor = start
    words: list[TranscriptWord] | None = None
    if transcript.words is not None:
        words = []
        floor = 0.0
        for word in transcript.words:
            start = _clamp(word.start, floor, duration)
            end = _clamp(word.end, start, duration)
            words.append(TranscriptWord(word.word, round(start, 3), round(end, 3)))
            floor = start
    return replace(
        transcript,
        text=transcript.text.strip(),
        duration=round(duration, 3),
        segments=tuple(segments),
        words=None if words is None else tuple(words),
    )


class TranscriptionService:
    """The transcription feature: transcribe, formats, languages, cost estimates."""

    def __init__(
        self,
        registry: TranscriptionModelRegistry,
        *,
        max_audio_bytes: int,
        max_audio_seconds: float,
        jobs: JobService | None = None,
        upload_dir: Path | None = None,
    ) -> None:
        self.registry = registry
        self.max_audio_bytes = max_audio_bytes
        self.max_audio_seconds = max_audio_seconds
        #: Where a job writes its audio while it runs (``None``: the system's temporary folder).
        self.upload_dir = upload_dir
        self._jobs = jobs
        if jobs is not None:
            jobs.register(JOB_KIND, self.run_transcription_job, unit="seconds")

    @classmethod
    def from_settings(
        cls, settings: Settings, *, openai: OpenAIClient | None, jobs: JobService | None = None
    ) -> TranscriptionService:
        """The local Whisper model, plus OpenAI's models through ``openai`` (the stack's shared
        client; ``None``: OpenAI is not configured)
        (:func:`~synthstack_core.providers.factory.build_transcription_providers`); asynchronous
        transcriptions through ``jobs``."""
        from synthstack_core.providers.factory import build_transcription_providers

        providers = build_transcription_providers(settings, openai)
        return cls(
            TranscriptionModelRegistry(providers, settings.transcription_model),
            max_audio_bytes=settings.max_audio_bytes,
            max_audio_seconds=settings.max_audio_seconds,
            jobs=jobs,
            upload_dir=settings.upload_dir,
        )

    # -- transcribe ------------------------------------------------------------------------------

    def _check_capabilities(
        self, spec: TranscriptionModelSpec, form: TranscriptionParameters
    ) -> None:
        if form.language is not None and form.language not in spec.languages:
            able = [
                s.id
                for s in self.registry.specs(default_first=True)
                if form.language in s.languages
            ]
            name = language_name(form.language)
            if able:
                detail = (
                    f"Model {spec.id} does not transcribe {name} ({form.language}); "
                    f"models that do: {', '.join(able)}."
                )
            else:
                detail = (
                    f"No model served here transcribes {name} ({form.language}); "
                    "see GET /api/v1/transcription/languages."
                )
            raise InvalidRequest(
                detail,
                errors=[
                    FieldError(("language",), detail, "language_not_supported"),
                ],
                code="language_not_supported",
            )
        if form.response_format in _NEEDS_TIMESTAMPS and not spec.timestamps:
            able = [s.id for s in self.registry.specs(default_first=True) if s.timestamps]
            detail = (
                f"Model {spec.id} gives no timestamps, which `{form.response_format}` needs; "
                f"models that do: {', '.join(able)}."
            )
            raise InvalidRequest(
                detail,
                errors=[FieldError(("response_format",), detail, "timestamps_not_supported")],
                code="timestamps_not_supported",
            )

    async def read_audio(self, upload: AudioUpload, *, keep_samples: bool = True) -> DecodedAudio:
        """Probe and decode an upload in a worker thread (errors: see ``features.audio``)."""
        return await anyio.to_thread.run_sync(
            lambda: load_audio(
                upload,
                max_bytes=self.max_audio_bytes,
                max_seconds=self.max_audio_seconds,
                keep_samples=keep_samples,
            )
        )

    async def transcribe_form(self, form: TranscriptionForm) -> TranscriptionResult:
        """``POST /transcribe``: the uploaded file, transcribed as the form asks."""
        upload = AudioUpload(
            form.file.path,
            filename=form.file.filename,
            content_type=form.file.content_type,
            size=form.file.size,
        )
        return await self.transcribe(upload, form)

    @operation(
        "transcription-transcribe",
        response=TranscriptionOutput,
        form=True,
        body_limit="max_audio_bytes",
    )
    async def transcribe_request(
        self, tenant: str, body: TranscriptionForm, prefer: Preferences = NO_PREFERENCES
    ) -> TranscriptionResponse | VerboseTranscriptionResponse | RawReply | Reply:
        """``POST /transcribe``: JSON for ``json`` and ``verbose_json``, else text or subtitles;
        with ``Prefer: respond-async``, checked, then a job (the file kept with it)."""
        if self._jobs is not None and self._jobs.wanted(prefer):
            return await self._submit(tenant, body, self._jobs)
        result = await self.transcribe_form(body)
        rendered = result.render()
        if isinstance(rendered, str):
            return RawReply(result.body(), result.media_type)
        return rendered

    async def _submit(self, tenant: str, form: TranscriptionForm, jobs: JobService) -> Reply:
        """Everything the synchronous call checks before the model runs (the model, what it can
        do, the audio decoded), then a job holding the file's bytes."""
        spec, _ = self.registry.lookup(form.model)
        self._check_capabilities(spec, form)
        upload = AudioUpload(
            form.file.path,
            filename=form.file.filename,
            content_type=form.file.content_type,
            size=form.file.size,
        )
        audio = await self.read_audio(upload, keep_samples=False)
        data = await anyio.to_thread.run_sync(form.file.read_bytes)
        request = {
            "parameters": form.model_dump(mode="json", exclude={"file"}),
            "filename": form.file.filename,
            "content_type": form.file.content_type,
        }
        return await jobs.submit(
            tenant,
            JOB_KIND,
            request,
            data=data,
            path=_PATH,
            total=_whole_seconds(audio.duration),
        )

    async def run_transcription_job(
        self, tenant: str, request: dict[str, Any], data: bytes | None, progress: Progress
    ) -> TranscriptionResponse | VerboseTranscriptionResponse | str:
        """A ``transcription-transcribe`` job: the synchronous call's body (the text of a text or
        subtitle format), reporting seconds of audio transcribed."""
        assert data is not None
        parameters = TranscriptionParameters.model_validate(request["parameters"])
        if self.upload_dir is not None:
            self.upload_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix="synthstack-job-", dir=self.upload_dir)
        path = Path(name)
        try:
            with os.fdopen(handle, "wb") as file:
                await anyio.to_thread.run_sync(file.write, data)
            upload = AudioUpload(
                path,
                filename=request.get("filename"),
                content_type=request.get("content_type"),
                size=len(data),
            )
            result = await self.transcribe(upload, parameters, progress=progress)
        finally:
            path.unlink(missing_ok=True)
        return result.render()

    async def transcribe(
        self,
        upload: AudioUpload,
        form: TranscriptionParameters | None = None,
        *,
        progress: Progress | None = None,
    ) -> TranscriptionResult:
        """Transcribe a file on disk as ``form`` asks (defaults: the default model, json);
        ``progress`` (a job's) is told the seconds of audio transcribed."""
        form = form or TranscriptionParameters()
        spec, provider = self.registry.lookup(form.model)
        self._check_capabilities(spec, form)
        audio = await self.read_audio(upload, keep_samples=provider.needs_samples)
        on_segment = None
        if progress is not None:
            total = _whole_seconds(audio.duration)
            await progress(0, total)
            on_segment = _segment_reporter(progress, total)
        options = TranscriptionOptions(
            model=spec,
            language=form.language,
            prompt=form.prompt,
            temperature=form.temperature,
            segments=form.response_format in _NEEDS_TIMESTAMPS,
            words=form.word_timestamps,
            on_segment=on_segment,
        )
        with model_inference("transcription", spec.id):
            transcript = await provider.transcribe(audio, options)
        if form.word_timestamps and transcript.words is None:
            transcript = replace(transcript, words=())
        transcript = _tidy(transcript)
        count_usage(audio_seconds=transcript.duration)
        return TranscriptionResult(
            transcript=transcript,
            response_format=form.response_format,
            words=form.word_timestamps,
        )

    # -- formats, languages, cost ----------------------------------------------------------------

    @operation("transcription-formats")
    def formats(self) -> AudioFormatList:
        """The containers and codecs this deployment decodes (probed from PyAV), and the limits."""
        capabilities = decoder_capabilities()
        return AudioFormatList(
            containers=[
                AudioContainer(name=name, description=description, extensions=list(extensions))
                for name, description, extensions in capabilities.containers
            ],
            codecs=[
                AudioCodec(name=name, description=description)
                for name, description in capabilities.codecs
            ],
            response_formats=list(RESPONSE_FORMATS),
            timestamp_granularities=["segment", "word"],
            limits=AudioLimits(
                max_audio_bytes=self.max_audio_bytes,
                max_audio_seconds=self.max_audio_seconds,
                sample_rate=SAMPLE_RATE,
            ),
            decoder=capabilities.version,
        )

    @operation("transcription-languages")
    def languages(self) -> TranscriptionLanguageList:
        """Every servable model and the languages it transcribes."""
        data = []
        for spec in self.registry.specs(default_first=True):
            _, provider = self.registry.lookup(spec.id)
            codes = provider.languages(spec)
            data.append(
                TranscriptionModelLanguages(
                    model=spec.id,
                    provider=spec.provider,
                    multilingual=len(codes) > 1,
                    timestamps=spec.timestamps,
                    languages=[
                        SupportedLanguage(code=code, name=language_name(code))
                        for code in sorted(codes)
                    ],
                    default=spec.id == self.registry.default.id,
                )
            )
        return TranscriptionLanguageList(data=data, default_model=self.registry.default.id)

    @operation("transcription-estimate-cost")
    def estimate_cost(self, body: CostEstimateRequest) -> CostEstimateResponse:
        """Processing time from the model's configured real-time factor and, for a paid
        provider, the price from its documented per-minute rate.

        The factor is a setting (the local model's defaults to the benchmark's), never what this
        process measured of its own transcriptions: behind several workers, the answer must not
        depend on which one takes the request.
        """
        spec, provider = self.registry.lookup(body.model)
        duration = body.duration_seconds
        rtf = provider.real_time_factor(spec)
        source: Literal["benchmark", "unknown"] = "unknown" if rtf is None else "benchmark"
        price = spec.price_per_minute_usd
        return CostEstimateResponse(
            model=spec.id,
            provider=spec.provider,
            duration_seconds=duration,
            real_time_factor=None if rtf is None else round(rtf, 4),
            real_time_factor_source=source,
            estimated_processing_seconds=None if rtf is None else round(duration * rtf, 2),
            price_per_minute_usd=price,
            estimated_cost_usd=None if price is None else round(duration / 60 * price, 6),
            exceeds_limit=duration > self.max_audio_seconds,
        )

    # -- lifecycle -------------------------------------------------------------------------------

    async def check(self) -> str:
        """Readiness of the default model (loads the local model)."""
        spec, provider = self.registry.lookup(None)
        return await provider.check(spec)

    async def aclose(self) -> None:
        """Release every provider."""
        await self.registry.aclose()


def _segment_reporter(progress: Progress, total: int) -> Callable[[float], None]:
    """What a provider calls, from its thread, with each segment's end: the whole seconds done
    reported to ``progress`` when they grew (what it raises, a cancelled job, stops the model)."""
    reported = 0

    async def report(done: int) -> None:
        await progress(done, total)

    def on_segment(end: float) -> None:
        nonlocal reported
        done = min(total, max(0, math.floor(end)))
        if done > reported:
            reported = done
            anyio.from_thread.run(report, done)

    return on_segment


def build(stack: Stack) -> TranscriptionService:
    """Local Whisper, and OpenAI's models when a key is set; asynchronous transcriptions when the
    stack runs jobs."""
    try:
        jobs: JobService | None = stack.service(JobService)
    except RuntimeError:  # a stack built without the jobs module: no asynchronous transcription
        jobs = None
    return TranscriptionService.from_settings(stack.settings, openai=stack.openai_client, jobs=jobs)


MODULE = Module("transcription", TranscriptionService, build)
