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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import anyio.to_thread

from synthstack_core.errors import FieldError, InvalidRequest
from synthstack_core.features.audio import (
    SAMPLE_RATE,
    AudioUpload,
    DecodedAudio,
    decoder_capabilities,
    load_audio,
)
from synthstack_core.features.subtitles import render_srt, render_vtt, subtitle_cues
from synthstack_core.languages import language_name
from synthstack_core.metrics import model_inference
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
from synthstack_core.replies import RawReply
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
    ) -> None:
        self.registry = registry
        self.max_audio_bytes = max_audio_bytes
        self.max_audio_seconds = max_audio_seconds

    @classmethod
    def from_settings(
        cls, settings: Settings, *, openai: OpenAIClient | None
    ) -> TranscriptionService:
        """The local Whisper model, plus OpenAI's models through ``openai`` (the stack's shared
        client; ``None``: OpenAI is not configured)
        (:func:`~synthstack_core.providers.factory.build_transcription_providers`)."""
        from synthstack_core.providers.factory import build_transcription_providers

        providers = build_transcription_providers(settings, openai)
        return cls(
            TranscriptionModelRegistry(providers, settings.transcription_model),
            max_audio_bytes=settings.max_audio_bytes,
            max_audio_seconds=settings.max_audio_seconds,
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
        self, body: TranscriptionForm
    ) -> TranscriptionResponse | VerboseTranscriptionResponse | RawReply:
        """``POST /transcribe``: JSON for ``json`` and ``verbose_json``, else text or subtitles."""
        result = await self.transcribe_form(body)
        rendered = result.render()
        if isinstance(rendered, str):
            return RawReply(result.body(), result.media_type)
        return rendered

    async def transcribe(
        self, upload: AudioUpload, form: TranscriptionParameters | None = None
    ) -> TranscriptionResult:
        """Transcribe a file on disk as ``form`` asks (defaults: the default model, json)."""
        form = form or TranscriptionParameters()
        spec, provider = self.registry.lookup(form.model)
        self._check_capabilities(spec, form)
        audio = await self.read_audio(upload, keep_samples=provider.needs_samples)
        options = TranscriptionOptions(
            model=spec,
            language=form.language,
            prompt=form.prompt,
            temperature=form.temperature,
            segments=form.response_format in _NEEDS_TIMESTAMPS,
            words=form.word_timestamps,
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


def build(stack: Stack) -> TranscriptionService:
    """Local Whisper, and OpenAI's models when a key is set."""
    return TranscriptionService.from_settings(stack.settings, openai=stack.openai_client)


MODULE = Module("transcription", TranscriptionService, build)
