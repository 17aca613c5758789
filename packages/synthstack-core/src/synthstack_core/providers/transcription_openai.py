"""OpenAI speech-to-text (``whisper-1``, ``gpt-4o-transcribe``, ``gpt-4o-mini-transcribe``).

Called through the official ``openai`` SDK when ``OPENAI_API_KEY`` (or ``OPENAI_BASE_URL``) is
set. The file goes as uploaded when its container (detected from its bytes) is one OpenAI reads,
under a neutral name with the right extension; any other container is re-encoded to 16 kHz mono
FLAC in memory first. ``whisper-1`` is asked for ``verbose_json`` (segments, and words when
wanted), so every response format can be rendered here the same way as for the local model; the
``gpt-4o`` models only give text (no timestamps). Failures map to SynthStack's errors through
:func:`~synthstack_core.providers.remote_errors.map_remote_error`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import anyio.to_thread
import httpx

from synthstack_core.errors import ProviderError
from synthstack_core.extras import requires_extra
from synthstack_core.features.audio import DECODING, SAMPLE_RATE, DecodedAudio, decode_audio
from synthstack_core.languages import WHISPER_LANGUAGES, language_code
from synthstack_core.providers.remote_errors import map_remote_error
from synthstack_core.providers.transcription import (
    Transcript,
    TranscriptionModelSpec,
    TranscriptionOptions,
    TranscriptionProvider,
    TranscriptSegment,
    TranscriptWord,
)

if TYPE_CHECKING:
    from synthstack_core.providers.openai_client import OpenAIClient

__all__ = ["OPENAI_TRANSCRIPTION_MODELS", "OpenAITranscriptionProvider"]

#: OpenAI's documented prices per minute of audio (the gpt-4o models are billed by tokens;
#: these are OpenAI's own per-minute estimates for them).
OPENAI_TRANSCRIPTION_MODELS: tuple[TranscriptionModelSpec, ...] = (
    TranscriptionModelSpec("whisper-1", "openai", WHISPER_LANGUAGES, True, 0.006),
    TranscriptionModelSpec("gpt-4o-transcribe", "openai", WHISPER_LANGUAGES, False, 0.006),
    TranscriptionModelSpec("gpt-4o-mini-transcribe", "openai", WHISPER_LANGUAGES, False, 0.003),
)

# Containers OpenAI's transcription endpoint reads, by FFmpeg demuxer name: the name to send
# the file under and its media type.
_ACCEPTED: dict[str, tuple[str, str]] = {
    "wav": ("audio.wav", "audio/wav"),
    "mp3": ("audio.mp3", "audio/mpeg"),
    "flac": ("audio.flac", "audio/flac"),
    "ogg": ("audio.ogg", "audio/ogg"),
    "mov,mp4,m4a,3gp,3g2,mj2": ("audio.m4a", "audio/mp4"),
    "matroska,webm": ("audio.webm", "audio/webm"),
}


def _upload_file(audio: DecodedAudio, max_seconds: float) -> tuple[str, bytes, str]:
    """The (name, bytes, media type) to send for ``audio`` (blocking)."""
    accepted = _ACCEPTED.get(audio.info.container)
    if accepted is not None:
        return accepted[0], audio.path.read_bytes(), accepted[1]
    decoded = decode_audio(audio.path, audio.info, max_seconds=max_seconds, keep_samples=True)
    return "audio.flac", _flac_bytes(decoded), "audio/flac"


def _flac_bytes(decoded: DecodedAudio) -> bytes:
    """16 kHz mono FLAC of the decoded samples, encoded in memory."""
    assert decoded.samples is not None
    with requires_extra("audio", DECODING):
        import av
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="flac") as container:
        stream = container.add_stream("flac", rate=SAMPLE_RATE)
        stream.layout = "mono"
        stream.format = "s16"
        pcm = (decoded.samples * 32767).astype("<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


class OpenAITranscriptionProvider(TranscriptionProvider):
    """Transcriptions from OpenAI or an OpenAI-compatible base URL."""

    name = "openai"
    needs_samples: ClassVar[bool] = False

    def __init__(self, client: OpenAIClient, *, max_audio_seconds: float = 3600.0) -> None:
        """Transcribe through ``client``, the stack's shared client (which closes it)."""
        self.client = client
        self._max_seconds = max_audio_seconds

    def models(self) -> Sequence[TranscriptionModelSpec]:
        """OpenAI's transcription models."""
        return OPENAI_TRANSCRIPTION_MODELS

    async def transcribe(self, audio: DecodedAudio, options: TranscriptionOptions) -> Transcript:
        """Send the file to OpenAI and read its answer."""
        import openai

        model = options.model
        if audio.silent:  # nothing to pay for
            return Transcript("", options.language, audio.duration, model.id)
        upload = await anyio.to_thread.run_sync(_upload_file, audio, self._max_seconds)
        kwargs: dict[str, Any] = {"file": upload, "model": model.id}
        if model.timestamps:
            kwargs["response_format"] = "verbose_json"
            kwargs["timestamp_granularities"] = (
                ["segment", "word"] if options.words else ["segment"]
            )
        else:
            kwargs["response_format"] = "json"
        if options.language is not None:
            kwargs["language"] = options.language
        if options.prompt is not None:
            kwargs["prompt"] = options.prompt
        if options.temperature is not None:
            kwargs["temperature"] = options.temperature
        try:
            response = await self.client.get().audio.transcriptions.create(**kwargs)
        except (openai.APIError, httpx.HTTPError, ValueError) as exc:  # ValueError: not JSON
            raise map_remote_error(exc, subject="transcription provider") from exc
        return _transcript(response, audio, options)

    async def check(self, model: TranscriptionModelSpec) -> str:
        """Remote models are checked when used; readiness does not spend money."""
        return f"{model.id} (openai, not called)"


def _number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ProviderError("The transcription provider answered with malformed timestamps.")


def _transcript(response: Any, audio: DecodedAudio, options: TranscriptionOptions) -> Transcript:
    """Read the SDK's answer (``Transcription`` or ``TranscriptionVerbose``) defensively."""
    text = getattr(response, "text", None)
    if not isinstance(text, str):
        raise ProviderError("The transcription provider answered without a transcript.")
    language = language_code(getattr(response, "language", None)) or options.language
    segments: list[TranscriptSegment] = []
    for index, segment in enumerate(getattr(response, "segments", None) or ()):
        segments.append(
            TranscriptSegment(
                id=index,
                start=_number(segment.start),
                end=_number(segment.end),
                text=str(segment.text).strip(),
                avg_logprob=getattr(segment, "avg_logprob", None),
                no_speech_prob=getattr(segment, "no_speech_prob", None),
            )
        )
    words: tuple[TranscriptWord, ...] | None = None
    if options.words:
        words = tuple(
            TranscriptWord(str(w.word).strip(), _number(w.start), _number(w.end))
            for w in getattr(response, "words", None) or ()
        )
    return Transcript(
        text=text.strip(),
        language=language,
        duration=audio.duration,
        model=options.model.id,
        segments=tuple(segments),
        words=words,
    )
