"""Reading uploaded audio: probe and decode by content with PyAV (its bundled FFmpeg).

Nothing here trusts a file name or a declared content type: the file is opened as a stream of
bytes (no name, so FFmpeg cannot guess from an extension) and judged by what it holds. Audio is
decoded to 16 kHz mono float32, what Whisper wants. Nothing is written to disk.

The outcomes, each with a stable problem ``code``:

========================  ======  ==============================================================
code                      status  when
========================  ======  ==============================================================
``audio_too_large``       413     the file is over ``max_audio_bytes``
``empty_file``            422     the file has no bytes
``not_audio``             415     no container FFmpeg knows, or one without an audio stream
``unsupported_audio_codec`` 415   an audio stream this build of FFmpeg cannot decode
``audio_too_long``        413     longer than ``max_audio_seconds`` (the container's declared
                                  duration is trusted for this, so a long file is refused before
                                  it is decoded; decoding also stops as soon as it goes past)
``corrupt_audio``         422     the decoder fails on the data
``truncated_audio``       422     the file ends well before the length its header declares (WAV
                                  sizes, and the exact durations of FLAC, Ogg, Matroska/WebM and
                                  MP4; MP3 and ADTS durations are estimates, so not checked)
``empty_audio``           422     a valid container with no audio samples in it
========================  ======  ==============================================================

Silence is not an error: :attr:`DecodedAudio.silent` tells the caller, which answers with an empty
transcript.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from synthstack_core.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from synthstack_core.extras import requires_extra

if TYPE_CHECKING:
    import av
    import av.container

__all__ = [
    "SAMPLE_RATE",
    "SILENCE_PEAK",
    "AudioInfo",
    "AudioUpload",
    "DecodedAudio",
    "DecoderCapabilities",
    "decode_audio",
    "decoder_capabilities",
    "load_audio",
    "probe_audio",
]

#: What needs the extra ``audio`` (PyAV), local Whisper or not.
DECODING: Final = "Decoding audio (PyAV)"

#: Whisper's sample rate; every decoded clip is mono at this rate.
SAMPLE_RATE: Final = 16_000
#: A clip whose loudest sample is below this (about -80 dBFS) is digital silence.
SILENCE_PEAK: Final = 1e-4

# Containers whose declared duration is exact, so a shorter decode means a truncated file.
_EXACT_DURATION: Final = frozenset({"flac", "ogg", "matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2"})
# Tolerance of that check: encoder padding and priming make the last frame slightly short.
_TRUNCATION_SLACK_SECONDS: Final = 0.5
_TRUNCATION_SLACK_RATIO: Final = 0.02

# The containers worth naming in GET /formats (FFmpeg knows hundreds, mostly video or obscure),
# with the extensions people use for them. Only those this build can read are listed.
_CONTAINERS: Final = (
    ("wav", ("wav", "wave")),
    ("ogg", ("ogg", "oga", "opus")),
    ("flac", ("flac",)),
    ("mp3", ("mp3",)),
    ("mov", ("m4a", "mp4", "mov", "3gp")),
    ("matroska", ("webm", "mka", "mkv")),
    ("aac", ("aac",)),
    ("aiff", ("aif", "aiff")),
    ("caf", ("caf",)),
    ("w64", ("w64",)),
    ("au", ("au", "snd")),
    ("amr", ("amr",)),
    ("wv", ("wv",)),
    ("ape", ("ape",)),
    ("tta", ("tta",)),
    ("asf", ("wma", "asf")),
)


@dataclass(frozen=True)
class AudioUpload:
    """An uploaded file, already on disk and size-limited by the upload pipeline.

    ``filename`` and ``content_type`` are what the client declared: labels only, never trusted
    (the content decides) and never used as a path.
    """

    path: Path
    filename: str | None = None
    content_type: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about the file, read without decoding it."""

    container: str
    codec: str
    sample_rate: int
    channels: int
    declared_duration: float | None
    size: int


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded clip: its probe, its real duration, its loudness and (if kept) its samples."""

    path: Path
    info: AudioInfo
    duration: float
    peak: float
    #: 16 kHz mono float32 in [-1, 1], or None when the caller did not keep them.
    samples: npt.NDArray[np.float32] | None

    @property
    def silent(self) -> bool:
        """Digital silence: nothing to transcribe."""
        return self.peak < SILENCE_PEAK


@dataclass(frozen=True)
class DecoderCapabilities:
    """What this deployment's FFmpeg reads: containers (name, description, extensions), codecs."""

    containers: tuple[tuple[str, str, tuple[str, ...]], ...]
    codecs: tuple[tuple[str, str], ...]
    version: str


@contextmanager
def _open(path: Path) -> Iterator[av.container.InputContainer]:
    """Open ``path`` for demuxing by content only (a file object has no name to guess from)."""
    with requires_extra("audio", DECODING):
        import av
    with path.open("rb") as handle:
        try:
            container = av.open(handle, mode="r")
        except (av.FFmpegError, EOFError) as exc:
            if _wav_data_missing(path):  # a WAV header whose data is (nearly all) missing
                raise _truncated_error() from exc
            raise UnsupportedMediaType(
                "The file is not audio this service can read; see GET /api/v1/transcription/formats.",
                code="not_audio",
            ) from exc
        try:
            yield container
        finally:
            container.close()


def _too_long(seconds: float, max_seconds: float) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The audio lasts {seconds:.0f} s; this service transcribes at most {max_seconds:g} s.",
        code="audio_too_long",
    )


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise PayloadTooLarge(
            f"The file has {size} bytes; the limit is {max_bytes}.", code="audio_too_large"
        )
    if size == 0:
        raise InvalidRequest("The file is empty.", code="empty_file")


def probe_audio(path: Path, *, max_bytes: int, max_seconds: float) -> AudioInfo:
    """Read the container's header: its first audio stream, codec and declared duration.

    Bounded work (FFmpeg's probe reads a few megabytes at most). Raises the errors of the module
    table for an empty, oversized, non-audio, undecodable or declared-too-long file.
    """
    size = path.stat().st_size
    _check_size(size, max_bytes)
    with _open(path) as container:
        if not container.streams.audio:
            raise UnsupportedMediaType("The file holds no audio stream.", code="not_audio")
        stream = container.streams.audio[0]
        codec = stream.codec_context
        if codec is None or not codec.name:
            raise UnsupportedMediaType(
                "The file's audio codec cannot be decoded here; see GET "
                "/api/v1/transcription/formats.",
                code="unsupported_audio_codec",
            )
        declared = _declared_duration(container, stream)
        info = AudioInfo(
            container=container.format.name,
            codec=codec.name,
            sample_rate=int(codec.sample_rate or 0),
            channels=int(codec.channels or 0),
            declared_duration=declared,
            size=size,
        )
    if declared is not None and declared > max_seconds:
        raise _too_long(declared, max_seconds)
    return info


def _declared_duration(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def decode_audio(
    path: Path, info: AudioInfo, *, max_seconds: float, keep_samples: bool = True
) -> DecodedAudio:
    """Decode the first audio stream to 16 kHz mono float32.

    Stops (``audio_too_long``) as soon as the decoded audio goes past ``max_seconds``, whatever
    the header said. With ``keep_samples=False`` only the duration and the peak are kept (a remote
    provider gets the original file; decoding it still proves it is whole).
    """
    with requires_extra("audio", DECODING):
        import av
    limit = int(max_seconds * SAMPLE_RATE) + SAMPLE_RATE  # one second of resampler slack
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    # One buffer, sized from the declared duration and grown if needed: an hour of audio is
    # 230 MB of float32, so collecting chunks and concatenating them would need twice that.
    expected = int((info.declared_duration or 30.0) * SAMPLE_RATE) + SAMPLE_RATE
    buffer = np.empty(min(expected, limit) if keep_samples else 0, dtype=np.float32)
    count = 0
    peak = 0.0

    def take(frames: list[av.AudioFrame]) -> None:
        nonlocal buffer, count, peak
        for frame in frames:
            data = frame.to_ndarray().reshape(-1)
            if data.size == 0:
                continue
            if count + data.size > limit:
                raise _too_long((count + data.size) / SAMPLE_RATE, max_seconds)
            peak = max(peak, float(np.max(np.abs(data))))
            if keep_samples:
                if count + data.size > buffer.size:
                    grown = np.empty(
                        min(max(2 * buffer.size, count + data.size), limit), np.float32
                    )
                    grown[:count] = buffer[:count]
                    buffer = grown
                buffer[count : count + data.size] = data
            count += data.size

    with _open(path) as container:
        stream = container.streams.audio[0]
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    take(resampler.resample(frame))
            take(resampler.resample(None))
        except (av.FFmpegError, ValueError, EOFError) as exc:
            # A decoder failing on a cut-off last frame is a truncated file, not a corrupt one.
            if _truncated(path, info, count / SAMPLE_RATE):
                raise _truncated_error() from exc
            raise InvalidRequest(
                "The audio is corrupt: it cannot be decoded.", code="corrupt_audio"
            ) from exc
    duration = count / SAMPLE_RATE
    if _truncated(path, info, duration):
        raise _truncated_error()
    if count == 0:
        raise InvalidRequest("The file holds no audio samples.", code="empty_audio")
    samples = None
    if keep_samples:
        samples = buffer[:count]
        np.clip(samples, -1.0, 1.0, out=samples)
    return DecodedAudio(path=path, info=info, duration=duration, peak=peak, samples=samples)


def _truncated_error() -> InvalidRequest:
    return InvalidRequest(
        "The file ends before the length its header declares: it looks truncated.",
        code="truncated_audio",
    )


def _truncated(path: Path, info: AudioInfo, duration: float) -> bool:
    if info.container == "wav":
        return _wav_data_missing(path)
    declared = info.declared_duration
    if info.container not in _EXACT_DURATION or declared is None:
        return False
    slack = max(_TRUNCATION_SLACK_SECONDS, _TRUNCATION_SLACK_RATIO * declared)
    return duration < declared - slack


def _wav_data_missing(path: Path) -> bool:
    """Whether a RIFF/WAVE file's ``data`` chunk declares more bytes than the file holds.

    FFmpeg quietly shortens such a file to what is there, so the header is read here. A streamed
    WAV (size 0 or 0xFFFFFFFF) declares nothing and is never called truncated.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        return _riff_data_missing(handle, size)


def _riff_data_missing(handle: IO[bytes], size: int) -> bool:
    header = handle.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return False
    offset = 12
    for _ in range(64):  # a WAV has a handful of chunks before `data`
        handle.seek(offset)
        chunk = handle.read(8)
        if len(chunk) < 8:
            return True  # the header ends before the data chunk
        chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if chunk_id == b"data":
            if chunk_size in (0, 0xFFFFFFFF):
                return False
            return bool(offset + 8 + chunk_size > size)
        offset += 8 + chunk_size + (chunk_size & 1)
    return False


def load_audio(
    upload: AudioUpload, *, max_bytes: int, max_seconds: float, keep_samples: bool = True
) -> DecodedAudio:
    """Probe, then decode, an upload (blocking: call it from a worker thread)."""
    info = probe_audio(upload.path, max_bytes=max_bytes, max_seconds=max_seconds)
    return decode_audio(upload.path, info, max_seconds=max_seconds, keep_samples=keep_samples)


@functools.cache
def decoder_capabilities() -> DecoderCapabilities:
    """The containers and audio codecs this build of FFmpeg reads (probed once)."""
    with requires_extra("audio", DECODING):
        import av
    containers: list[tuple[str, str, tuple[str, ...]]] = []
    for name, extensions in _CONTAINERS:
        if name not in av.formats_available:
            continue
        try:
            fmt = av.format.ContainerFormat(name, "r")
        except (ValueError, av.FFmpegError):
            continue
        containers.append((name, fmt.long_name, extensions))
    codecs: list[tuple[str, str]] = []
    for name in sorted(av.codecs_available):
        try:
            codec = av.codec.Codec(name, "r")
        except (ValueError, av.FFmpegError):
            continue  # an encoder only
        if codec.type == "audio":
            codecs.append((name, codec.long_name))
    version = f"PyAV {av.__version__}, FFmpeg {av.ffmpeg_version_info}"
    return DecoderCapabilities(tuple(containers), tuple(codecs), version)
