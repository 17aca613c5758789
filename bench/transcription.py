"""Transcription benchmark: word error rate, real-time factor and memory of the local Whisper model.

The corpus is the 24 espeak-ng sentences committed in
``packages/synthstack-core/tests/fixtures/audio/`` (``manifest.json``; regenerate them with
``scripts/make_audio_fixtures.py``). The core is called in this process, as the service does it:
:class:`~synthstack_core.features.transcription.TranscriptionService` decodes each file with PyAV
and runs Whisper tiny.en (faster-whisper, int8) in a worker thread.

Figures:

* **WER**: word-level edit distance (substitutions + deletions + insertions) between the reference
  and the transcript, both normalised by :func:`normalise` (lower case, punctuation dropped, a
  few spelling variants unified), summed over the corpus and divided by the reference words;
* **RTF** (real-time factor): transcription seconds (decode + inference) per second of audio, on
  the whole corpus in one file (~95 s, made at run time in a temporary folder) after a warm-up
  call; the model load is reported apart. ``per_clip_rtf`` is the same over the 24 separate
  ~3 s files: Whisper pads every input to a 30 s window, so short clips cost far more per second;
* **peak RSS** of this process (``ru_maxrss``), and the CPU other processes took meanwhile (the
  machine may be shared: read RTF with that figure).

Run it from the repository root::

    .hatch/test/bin/python bench/transcription.py
    .hatch/test/bin/python bench/transcription.py --beam 5 --json bench/results/transcription.json

Targets: WER <= 10 % and RTF <= 0.06 on 2 cores. A missed target is reported, not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import psutil  # type: ignore[import-untyped]  # no stubs installed
from _servers import ROOT, ForeignLoad, machine, progress

from synthstack_core.features.audio import SAMPLE_RATE, AudioUpload, load_audio
from synthstack_core.features.transcription import TranscriptionService
from synthstack_core.schemas.transcription import TranscriptionParameters
from synthstack_core.settings import Settings

FIXTURES = ROOT / "packages" / "synthstack-core" / "tests" / "fixtures" / "audio"
WER_TARGET = 0.10
RTF_TARGET = 0.06

# Spellings the model and the references may disagree on without either being wrong.
_VARIANTS = {"favourite": "favorite", "colour": "color", "ok": "okay", "alright": "all right"}


def normalise(text: str) -> list[str]:
    """The words of ``text`` for scoring: lower case, no punctuation, variants unified."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    words = [word.strip("'") for word in text.split()]
    return [w for word in words if word for w in _VARIANTS.get(word, word).split()]


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (one row of the table at a time)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_word != hyp_word),  # substitution or match
                )
            )
        previous = current
    return previous[-1]


def word_error_rate(pairs: Sequence[tuple[str, str]]) -> float:
    """Corpus WER of (reference, hypothesis) pairs."""
    errors = words = 0
    for reference, hypothesis in pairs:
        ref = normalise(reference)
        errors += edit_distance(ref, normalise(hypothesis))
        words += len(ref)
    return errors / max(1, words)


def concatenated_corpus(sentences: Sequence[dict[str, Any]], folder: Path) -> tuple[Path, float]:
    """Every sentence in a row, one second of silence after each, as 16 kHz FLAC in ``folder``."""
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)
    parts: list[npt.NDArray[np.float32]] = []
    for sentence in sentences:
        upload = AudioUpload(FIXTURES / sentence["file"])
        decoded = load_audio(upload, max_bytes=10**8, max_seconds=3600)
        assert decoded.samples is not None
        parts += [decoded.samples, pause]
    samples = np.concatenate(parts)
    pcm = (samples * 32767).astype("<i2").reshape(1, -1)
    path = folder / "corpus.flac"
    with av.open(str(path), mode="w", format="flac") as container:
        stream = container.add_stream("flac", rate=SAMPLE_RATE)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path, len(samples) / SAMPLE_RATE


async def bench_core(settings: Settings, repeat: int) -> dict[str, Any]:
    """WER, RTF and memory of the core, in this process."""
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    service = TranscriptionService.from_settings(settings)
    form = TranscriptionParameters()
    started = time.perf_counter()
    await service.check()  # loads the model
    load_seconds = time.perf_counter() - started
    sentences = manifest["sentences"]
    await service.transcribe(AudioUpload(FIXTURES / sentences[0]["file"]), form)  # warm-up

    pairs: list[tuple[str, str]] = []
    clip_audio = clip_busy = 0.0
    long_audio = long_busy = 0.0
    worst: list[dict[str, Any]] = []
    long_text = ""
    with tempfile.TemporaryDirectory() as folder:
        corpus, corpus_seconds = concatenated_corpus(sentences, Path(folder))
        with ForeignLoad([psutil.Process()]) as foreign:
            for round_ in range(repeat):
                # Long form: the whole corpus in one file (Whisper's 30 s windows are full).
                started = time.perf_counter()
                result = await service.transcribe(AudioUpload(corpus), form)
                long_busy += time.perf_counter() - started
                long_audio += corpus_seconds
                long_text = result.transcript.text
                # One sentence a file: each ~3 s clip still costs a whole 30 s window.
                for sentence in sentences:
                    started = time.perf_counter()
                    upload = AudioUpload(FIXTURES / sentence["file"])
                    result = await service.transcribe(upload, form)
                    clip_busy += time.perf_counter() - started
                    clip_audio += result.transcript.duration
                    if round_:
                        continue
                    heard = result.transcript.text
                    pairs.append((sentence["text"], heard))
                    errors = edit_distance(normalise(sentence["text"]), normalise(heard))
                    if errors:
                        worst.append({"id": sentence["id"], "errors": errors, "heard": heard})
    await service.aclose()
    reference = " ".join(sentence["text"] for sentence in sentences)
    return {
        "surface": "core",
        "sentences": len(pairs),
        "wer": round(word_error_rate(pairs), 4),
        "rtf": round(long_busy / long_audio, 4),
        "long_form": {
            "audio_seconds": round(corpus_seconds, 1),
            "wer": round(word_error_rate([(reference, long_text)]), 4),
        },
        "per_clip_rtf": round(clip_busy / clip_audio, 4),
        "model_load_seconds": round(load_seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "foreign_load_cores": None if foreign.cores is None else round(foreign.cores, 2),
        "errors": worst,
    }


# -- HTTP ----------------------------------------------------------------------------------------
# HTTP SIDE GOES HERE, once POST /api/v1/transcription/transcribe exists: for each backend
# (fastapi, django) start `synthstack serve` with `_servers.serve(backend, server_env(...), ...)`
# (it needs the embedded PostgreSQL: `_servers.start_database`), post every sentence's file as
# multipart (`files={"file": (name, bytes, "audio/ogg")}`, `headers={"Authorization": f"Bearer
# {API_KEY}"}`), and report the same WER, the end-to-end RTF (upload + decode + inference) and the
# server's memory (`Server.memory()`), as bench/embeddings.py does for its backends.


def bench_http(backend: str) -> dict[str, Any]:
    """Placeholder for the HTTP measurement of ``backend`` (see the comment above)."""
    raise NotImplementedError(
        f"the transcription endpoint does not exist yet; {backend} is not measured"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: settings)")
    parser.add_argument("--threads", type=int, default=None, help="CTranslate2 threads")
    parser.add_argument("--vad-min-seconds", type=float, default=None, help="VAD from this length")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the corpus")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    overrides: dict[str, Any] = {"_env_file": None}
    if args.beam is not None:
        overrides["whisper_beam_size"] = args.beam
    if args.threads is not None:
        overrides["whisper_threads"] = args.threads
    if args.vad_min_seconds is not None:
        overrides["whisper_vad_min_seconds"] = args.vad_min_seconds
    settings = Settings(**overrides)
    progress(
        f"whisper-tiny.en, beam {settings.whisper_beam_size}, "
        f"threads {settings.whisper_threads or 'one per core'}"
    )
    core = asyncio.run(bench_core(settings, args.repeat))
    results = {
        "machine": machine(),
        "settings": {
            "beam_size": settings.whisper_beam_size,
            "threads": settings.whisper_threads,
            "vad_min_seconds": settings.whisper_vad_min_seconds,
        },
        "core": core,
        "targets": {
            "wer": {"target": WER_TARGET, "met": core["wer"] <= WER_TARGET},
            "rtf": {"target": RTF_TARGET, "met": core["rtf"] <= RTF_TARGET},
        },
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
