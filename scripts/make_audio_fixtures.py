"""Generate the audio fixtures of the transcription tests and benchmark.

Speech is synthesised with ``espeak-ng`` (``apt-get install -y espeak-ng``) from known sentences,
resampled to 16 kHz mono and encoded with PyAV (its bundled FFmpeg: WAV, FLAC, MP3 through
libmp3lame, Ogg/Opus); the bad inputs are made by hand. The committed output
(``packages/synthstack-core/tests/fixtures/audio/``, under 1 MB) lets the tests run without
espeak-ng; run this again only to change the fixtures::

    .hatch/test/bin/python scripts/make_audio_fixtures.py [--out DIR]

Files (``manifest.json`` lists the sentences and each file's duration):

* ``s01.ogg`` ... ``s24.ogg``: one sentence each (Opus, 24 kb/s), the benchmark's corpus;
* ``speech.wav``, ``speech.flac``, ``speech.mp3``, ``speech.ogg``: sentence 1 in each format;
* ``long.ogg``: eight sentences with pauses between them (~35 s: the VAD path);
* ``silence.flac`` (3 s of digital silence), ``noise.ogg`` (3 s of white noise);
* ``truncated.wav``, ``truncated.flac``: cut in half, their headers still declaring the whole;
* ``header_only.wav``: a WAV header without its data;
* ``corrupt.mp3``: ``speech.mp3`` with 2000 random bytes in its middle (the decoder fails);
* ``not_audio.txt``, ``image.png``, ``empty.bin`` (zero bytes).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "packages" / "synthstack-core" / "tests" / "fixtures" / "audio"
RATE = 16_000

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back when you get this message.",
    "The meeting has been moved to Thursday afternoon.",
    "We need to buy milk, bread and eggs from the store.",
    "It is raining outside so bring an umbrella.",
    "The train to the city leaves early in the morning.",
    "My favorite color is blue.",
    "She opened the window to let in some fresh air.",
    "The children are playing in the garden.",
    "Can you help me carry these boxes upstairs?",
    "The coffee shop on the corner makes great sandwiches.",
    "He forgot his keys at the office again.",
    "Our team won the game last night.",
    "The doctor said I should drink more water.",
    "Turn left at the next traffic light.",
    "The book on the table belongs to my sister.",
    "We are planning a trip to the mountains this summer.",
    "Please remember to lock the door when you leave.",
    "The music was too loud at the party.",
    "I would like a cup of tea with honey.",
    "The new software update fixed several problems.",
    "Dinner will be ready in a few minutes.",
    "The cat is sleeping on the warm blanket.",
    "Thank you very much for your kind help.",
)


def speak(text: str) -> npt.NDArray[np.float32]:
    """``text`` spoken by espeak-ng (US English), as 16 kHz mono float32."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is not installed: apt-get install -y espeak-ng")
    wav = subprocess.run(
        [espeak, "-v", "en-us", "-s", "150", "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    return decode(wav)


def decode(data: bytes) -> npt.NDArray[np.float32]:
    """Any audio PyAV reads, as 16 kHz mono float32."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    chunks: list[npt.NDArray[np.float32]] = []
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(chunks).astype(np.float32)


def encode(samples: npt.NDArray[np.float32], fmt: str, codec: str, **options: str) -> bytes:
    """Encode 16 kHz mono float32 ``samples`` in a container, in memory."""
    rate = 48_000 if codec == "libopus" else RATE
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = RATE
        for out in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(out):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def opus(samples: npt.NDArray[np.float32]) -> bytes:
    """Ogg/Opus at 24 kb/s (speech stays clear, a sentence takes ~10 kB)."""
    return encode(samples, "ogg", "libopus", b="24000")


def png_1x1() -> bytes:
    """A valid 1x1 PNG: a real file that is not audio."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00"))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    manifest: dict[str, object] = {"sample_rate": RATE, "sentences": [], "files": {}}
    files: dict[str, dict[str, object]] = {}

    def write(name: str, data: bytes, **meta: object) -> None:
        (out / name).write_bytes(data)
        files[name] = {"bytes": len(data), **meta}

    spoken = [speak(text) for text in SENTENCES]
    sentences = []
    for index, (text, samples) in enumerate(zip(SENTENCES, spoken, strict=True), start=1):
        name = f"s{index:02d}.ogg"
        write(name, opus(samples), duration=round(len(samples) / RATE, 3))
        sentences.append({"id": f"s{index:02d}", "text": text, "file": name})
    manifest["sentences"] = sentences

    first = spoken[0]
    duration = round(len(first) / RATE, 3)
    wav = encode(first, "wav", "pcm_s16le")
    flac = encode(first, "flac", "flac")
    write("speech.wav", wav, duration=duration, text=SENTENCES[0])
    write("speech.flac", flac, duration=duration, text=SENTENCES[0])
    mp3 = encode(first, "mp3", "libmp3lame", b="32000")
    write("speech.mp3", mp3, duration=duration)
    write("speech.ogg", opus(first), duration=duration, text=SENTENCES[0])

    pause = np.zeros(int(1.5 * RATE), dtype=np.float32)
    long = np.concatenate([part for samples in spoken[1:9] for part in (samples, pause)])
    write(
        "long.ogg",
        opus(long),
        duration=round(len(long) / RATE, 3),
        text=" ".join(SENTENCES[1:9]),
    )

    write(
        "silence.flac", encode(np.zeros(3 * RATE, dtype=np.float32), "flac", "flac"), duration=3.0
    )
    noise = (rng.standard_normal(3 * RATE) * 0.1).astype(np.float32)
    write("noise.ogg", opus(noise), duration=3.0)

    write("truncated.wav", wav[: len(wav) // 2])
    write("truncated.flac", flac[: len(flac) // 2])
    write("header_only.wav", wav[:44])
    damaged = bytearray(mp3)
    middle = len(mp3) * 3 // 10
    damaged[middle : middle + 2000] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    write("corrupt.mp3", bytes(damaged))
    write("not_audio.txt", b"This is a text file, not audio.\n" * 8)
    write("image.png", png_1x1())
    write("empty.bin", b"")

    manifest["files"] = files
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    total = sum(path.stat().st_size for path in out.iterdir())
    print(f"{len(files)} files in {out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
