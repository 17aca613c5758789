"""The speech-to-text provider interface, the description of a servable model and a transcript."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    from synthstack_core.features.audio import DecodedAudio

__all__ = [
    "Transcript",
    "TranscriptSegment",
    "TranscriptWord",
    "TranscriptionModelSpec",
    "TranscriptionOptions",
    "TranscriptionProvider",
]

ProviderName = Literal["local", "openai"]


@dataclass(frozen=True)
class TranscriptionModelSpec:
    """A model a provider can serve, and what it can do."""

    id: str
    provider: ProviderName
    #: ISO 639-1 codes of the languages it transcribes.
    languages: tuple[str, ...]
    #: Whether it gives segment (and word) timestamps: needed by verbose_json, srt and vtt.
    timestamps: bool
    #: The provider's documented price per minute of audio (None: no fee).
    price_per_minute_usd: float | None = None
    #: Processing seconds per audio second measured by the benchmark (None: not measured).
    benchmark_real_time_factor: float | None = None

    @property
    def multilingual(self) -> bool:
        """More than one language."""
        return len(self.languages) > 1


@dataclass(frozen=True)
class TranscriptionOptions:
    """How to transcribe: the resolved model and the request's options."""

    model: TranscriptionModelSpec
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    #: Segment timestamps are wanted (verbose_json, srt, vtt).
    segments: bool = False
    #: Word timestamps are wanted (verbose_json with ``timestamp_granularities[]=word``).
    words: bool = False
    #: Told the end (seconds into the audio) of each segment as it is transcribed, by a provider
    #: that transcribes segment by segment (local Whisper), in the thread that runs the model; what
    #: it raises stops the transcription (a job cancelled). Other providers never call it.
    on_segment: Callable[[float], None] | None = None


@dataclass(frozen=True)
class TranscriptWord:
    """A word and its timing, in seconds."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class TranscriptSegment:
    """A segment of speech and its timing, in seconds."""

    id: int
    start: float
    end: float
    text: str
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


@dataclass(frozen=True)
class Transcript:
    """What a provider heard. ``language`` is an ISO 639-1 code or None; ``words`` is None unless
    word timestamps were asked for."""

    text: str
    language: str | None
    duration: float
    model: str
    segments: tuple[TranscriptSegment, ...] = ()
    words: tuple[TranscriptWord, ...] | None = None


class TranscriptionProvider(ABC):
    """Turns audio into text. Capabilities as class attributes."""

    name: ClassVar[ProviderName]
    #: Whether :meth:`transcribe` needs the decoded samples (a local model) or only the file.
    needs_samples: ClassVar[bool] = True

    @abstractmethod
    def models(self) -> Sequence[TranscriptionModelSpec]:
        """The models this provider serves in this deployment."""

    def languages(self, model: TranscriptionModelSpec) -> Sequence[str]:
        """ISO 639-1 codes of the languages ``model`` transcribes."""
        return model.languages

    @abstractmethod
    async def transcribe(self, audio: DecodedAudio, options: TranscriptionOptions) -> Transcript:
        """Transcribe a decoded, validated clip (``audio.path`` is the original file)."""

    def real_time_factor(self, model: TranscriptionModelSpec) -> float | None:
        """Processing seconds per audio second that cost estimates quote for ``model`` (None: not
        known). A fixed figure, never this process's own measurement, so every worker quotes the
        same."""
        return model.benchmark_real_time_factor

    async def check(self, model: TranscriptionModelSpec) -> str:
        """Make sure ``model`` can run now (load it if needed); return a short description."""
        return model.id

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and models."""
