"""Transcription benchmark: the core in-process against the FastAPI and Django backends over HTTP.

The corpus is the 24 espeak-ng sentences committed in
``packages/synthstack-core/tests/fixtures/audio/`` (``manifest.json``; regenerate them with
``scripts/make_audio_fixtures.py``). One run measures three surfaces with the local Whisper
tiny.en model (faster-whisper, int8), side by side:

* ``core``: :class:`~synthstack_core.features.transcription.TranscriptionService` in this process,
  as the service calls it (PyAV decodes the file, Whisper runs in a worker thread);
* ``fastapi``: ``synthstack serve --backend fastapi --workers 1`` (uvicorn), over HTTP;
* ``django``: ``synthstack serve --backend django --workers 1`` (gunicorn gthread), over HTTP.

Every surface transcribes the same audio with the same settings (``response_format=json``,
``temperature=0``: one decoding pass, no fallback ladder), so their transcripts must be identical.
HTTP timings are end to end from one sequential keep-alive ``httpx.Client``: the multipart
upload, the server spooling it to disk, decoding, inference and the JSON answer all count.

Figures:

* **WER**: word-level edit distance (substitutions + deletions + insertions) between the reference
  and the transcript, both normalised by :func:`normalise` (lower case, punctuation dropped, a
  few spelling variants unified), summed over the 24 clips and divided by the reference words;
  ``long_form.wer`` is the same for the whole corpus in one file;
* **RTF** (real-time factor): transcription seconds per second of audio, on the whole corpus in
  one file (~95 s, made at run time in a temporary folder), after warm-up; ``per_clip_rtf`` is
  the same over the 24 separate ~3 s files: Whisper pads every input to a 30 s window, so short
  clips cost far more per second. ``overhead_percent`` = HTTP RTF / core RTF - 1;
* **RSS**: each server's worker (the process holding the model) after warm-up and after the run,
  and its peak (``VmHWM``); for the core, this process's peak (``ru_maxrss``);
* diagnostics for the HTTP overhead: per-request HTTP - core differences paired by clip and
  round, ``GET /health``, and the cost of an upload the server refuses before decoding
  (``language=fr``: a 422 after the file is spooled), i.e. the transport's share of a request.

All three run at once and take turns (the order rotating: the long file once per round, the
clips in blocks), so a change in outside load falls on all of them alike; the CPU other processes
used meanwhile is reported, and the run first waits (``--settle``) for the machine to go quiet.

Run it from the repository root::

    .hatch/default/bin/python bench/transcription.py --json bench/results/transcription.json
    .hatch/default/bin/python bench/transcription.py --quick     # smoke run, 6 clips, 1 round
    .hatch/default/bin/python bench/transcription.py --surfaces core --beam 1

Targets: WER <= 10 %, RTF <= 0.06 on 2 cores, HTTP overhead <= 5 %. A missed target is reported
(the exit status stays 0); only a surface that could not be measured makes it non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Protocol, TypeVar

import av
import httpx
import numpy as np
import numpy.typing as npt
import psutil  # type: ignore[import-untyped]  # no stubs installed
from _servers import (
    RESULTS_DIR,
    ROOT,
    ForeignLoad,
    KeepAliveClient,
    Server,
    ServerFailed,
    database_processes,
    machine,
    parse_with_surfaces,
    percentiles_ms,
    progress,
    serve,
    server_env,
    start_database,
    wait_for_quiet,
)

from synthstack_core.features.audio import SAMPLE_RATE, AudioUpload, load_audio
from synthstack_core.features.transcription import TranscriptionService
from synthstack_core.schemas.transcription import TranscriptionParameters
from synthstack_core.settings import Settings

FIXTURES = ROOT / "packages" / "synthstack-core" / "tests" / "fixtures" / "audio"
TRANSCRIBE = "/api/v1/transcription/transcribe"
SURFACES = ("core", "fastapi", "django")
WER_TARGET = 0.10
RTF_TARGET = 0.06
OVERHEAD_TARGET = 0.05
#: Deterministic decoding: one pass at temperature 0 on every surface (the default is a ladder).
TEMPERATURE = 0.0
_MEDIA_TYPES = {".ogg": "audio/ogg", ".flac": "audio/flac", ".wav": "audio/wav"}

T = TypeVar("T")

# Spellings the model and the references may disagree on without either being wrong.
_VARIANTS = {"favourite": "favorite", "colour": "color", "ok": "okay", "alright": "all right"}


# -- scoring -------------------------------------------------------------------------------------


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


# -- audio ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """One audio file to transcribe, its reference text, and its bytes (read once, up front)."""

    id: str
    path: Path
    reference: str
    data: bytes

    @property
    def media_type(self) -> str:
        """The ``Content-Type`` the client declares (the server reads the content anyway)."""
        return _MEDIA_TYPES.get(self.path.suffix, "application/octet-stream")


def load_clips(limit: int | None) -> list[Clip]:
    """The corpus sentences (the first ``limit`` of them, or all)."""
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    sentences = manifest["sentences"][:limit]
    return [
        Clip(s["id"], FIXTURES / s["file"], s["text"], (FIXTURES / s["file"]).read_bytes())
        for s in sentences
    ]


def concatenated_corpus(clips: Sequence[Clip], folder: Path) -> tuple[Clip, float]:
    """Every clip in a row, one second of silence after each, as 16 kHz FLAC in ``folder``."""
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)
    parts: list[npt.NDArray[np.float32]] = []
    for clip in clips:
        decoded = load_audio(AudioUpload(clip.path), max_bytes=10**8, max_seconds=3600)
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
    reference = " ".join(clip.reference for clip in clips)
    return Clip("corpus", path, reference, path.read_bytes()), len(samples) / SAMPLE_RATE


# -- surfaces ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heard:
    """One transcription: how long it took (s), the text, and the audio's duration (s)."""

    seconds: float
    text: str
    duration: float


class Surface(Protocol):
    """Something that transcribes."""

    name: str

    def transcribe(self, clip: Clip) -> Heard:
        """Transcribe ``clip``; what was heard and how long it took."""
        ...


#: A coroutine to await on the core's loop, and where its (seconds, result) goes.
_Call = tuple[Callable[[], Awaitable[Any]], "Future[tuple[float, Any]]"]


async def _timed(awaitable: Awaitable[T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = await awaitable
    return time.perf_counter() - start, result


class CoreSurface:
    """:class:`TranscriptionService` in this process, on one event loop that runs for the whole run.

    The loop runs in its own thread under one long-lived root task that awaits each call in turn,
    as a server's loop does. This matters: anyio ties its worker threads to the root task, so a
    fresh root task per call (``asyncio.run`` or ``Runner.run`` per call) hands every call to a
    new worker thread, and Whisper inference from a new thread measured 2-25x slower here. The
    clock runs inside the loop around the ``await`` alone (decode + inference).
    """

    name = "core"

    def __init__(self, settings: Settings) -> None:
        self._service = TranscriptionService.from_settings(settings, openai=None)  # local Whisper
        self._form = TranscriptionParameters(response_format="json", temperature=TEMPERATURE)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Call | None] | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._ready.set()
        try:
            while (call := await self._queue.get()) is not None:
                factory, future = call
                try:
                    future.set_result(await _timed(factory()))
                except Exception as exc:  # handed to the caller
                    future.set_exception(exc)
        finally:
            await self._service.aclose()

    def _submit(self, call: _Call | None) -> None:
        assert self._loop is not None and self._queue is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, call)

    def __enter__(self) -> CoreSurface:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._submit(None)
        self._thread.join(timeout=60)

    def transcribe(self, clip: Clip) -> Heard:
        """``await service.transcribe(AudioUpload(path), form)``."""
        upload = AudioUpload(clip.path, filename=clip.path.name, size=len(clip.data))
        future: Future[tuple[float, Any]] = Future()
        self._submit((lambda: self._service.transcribe(upload, self._form), future))
        seconds, result = future.result()
        return Heard(seconds, result.transcript.text, result.transcript.duration)


class HttpSurface(KeepAliveClient):
    """A running server, called by one sequential client over a keep-alive connection."""

    timeout = 300.0

    def _post(self, clip: Clip, form: dict[str, str]) -> tuple[float, httpx.Response]:
        start = time.perf_counter()
        response = self._client.post(
            TRANSCRIBE, data=form, files={"file": (clip.path.name, clip.data, clip.media_type)}
        )
        response.read()
        return time.perf_counter() - start, response

    def transcribe(self, clip: Clip) -> Heard:
        """``POST /api/v1/transcription/transcribe`` (multipart), the JSON answer decoded."""
        form = {"response_format": "json", "temperature": str(TEMPERATURE)}
        start = time.perf_counter()
        _, response = self._post(clip, form)
        payload = response.json()
        seconds = time.perf_counter() - start
        _expect(response.status_code == 200, f"{self.name}: {response.status_code} {payload}")
        return Heard(seconds, payload["text"], float(payload["duration"]))

    def refused_upload(self, clip: Clip) -> float:
        """An upload of ``clip`` that the server refuses before decoding it (``language=fr``).

        The file is received, parsed and spooled to disk, the key checked, then the request is a
        422 ``language_not_supported``: the transport's share of a transcription request.
        """
        seconds, response = self._post(clip, {"language": "fr", "temperature": "0"})
        _expect(
            response.status_code == 422, f"{self.name}: expected 422, got {response.status_code}"
        )
        return seconds

    def health(self) -> float:
        """One ``GET /health`` round trip (no auth, tiny body): the transport's floor."""
        start = time.perf_counter()
        self._client.get("/health").json()
        return time.perf_counter() - start


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


def _peak_rss_mb(server: Server) -> float | None:
    """The highest ``VmHWM`` (peak resident memory) among the leaves of the server's tree, MB.

    The leaf with the most memory is the worker that holds the model (see ``Server.memory``).
    """
    peaks: list[int] = []
    for proc in server.processes():
        with suppress(psutil.Error, OSError, ValueError):
            if proc.children():
                continue
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]))  # kB
    return max(peaks) / 1024 if peaks else None


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class Contender:
    """One surface in the run: its timings, what it heard, and how it ended."""

    surface: Surface
    server: Server | None = None
    #: (phase, round, clip id) -> what was heard
    heard: dict[tuple[str, int, str], Heard] = field(default_factory=dict)
    first_call_seconds: float | None = None
    rss_after_warmup: tuple[float, float] | None = None
    rss_after_run: tuple[float, float] | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        """The surface's name."""
        return self.surface.name

    def run(self, clip: Clip) -> Heard | None:
        """Transcribe ``clip``, or ``None`` when the surface has failed (now or before)."""
        if self.error is not None:
            return None
        try:
            return self.surface.transcribe(clip)
        except (RuntimeError, httpx.HTTPError, OSError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            progress(f"{self.name}: FAILED: {self.error}")
            return None


def _rotated(contenders: Sequence[Contender], turn: int) -> list[Contender]:
    active = [c for c in contenders if c.error is None]
    if not active:
        return []
    shift = turn % len(active)
    return active[shift:] + active[:shift]


@dataclass(frozen=True)
class Workload:
    """What one run transcribes."""

    clips: list[Clip]
    corpus: Clip
    corpus_seconds: float
    rounds: int
    block: int


def measure(
    contenders: Sequence[Contender],
    work: Workload,
    own: Callable[[], Sequence[psutil.Process]],
) -> dict[str, float | None]:
    """Warm-up, the long file, then the clips, on every surface in turn; the foreign load of each."""
    load: dict[str, float | None] = {}

    progress("warm-up: the first call loads the model (each server, and this process)")
    with ForeignLoad(own) as foreign:
        for contender in contenders:
            heard = contender.run(work.clips[0])
            contender.first_call_seconds = None if heard is None else heard.seconds
            contender.run(work.clips[-1])
            if contender.server is not None and contender.error is None:
                contender.rss_after_warmup = contender.server.memory()
    load["warm-up"] = foreign.cores

    progress(f"long form: {work.corpus_seconds:.0f} s of audio x {work.rounds} per surface")
    with ForeignLoad(own) as foreign:
        for round_ in range(work.rounds):
            for contender in _rotated(contenders, round_):
                heard = contender.run(work.corpus)
                if heard is not None:
                    contender.heard["long", round_, work.corpus.id] = heard
    load["long form"] = foreign.cores

    progress(f"per clip: {len(work.clips)} clips x {work.rounds} per surface")
    blocks = [work.clips[i : i + work.block] for i in range(0, len(work.clips), work.block)]
    with ForeignLoad(own) as foreign:
        turn = 0
        for round_ in range(work.rounds):
            for block in blocks:
                for contender in _rotated(contenders, turn):
                    for clip in block:
                        heard = contender.run(clip)
                        if heard is None:
                            break
                        contender.heard["clip", round_, clip.id] = heard
                turn += 1
    load["per clip"] = foreign.cores

    for contender in contenders:
        if contender.server is not None and contender.error is None:
            contender.rss_after_run = contender.server.memory()
    return load


def _ratio(busy: float, audio: float) -> float | None:
    return busy / audio if audio > 0 else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def summarise(contender: Contender, work: Workload) -> dict[str, Any]:
    """The figures of one surface from what it heard."""
    result: dict[str, Any] = {"surface": contender.name, "error": contender.error}
    longs = [h for (phase, _, _), h in contender.heard.items() if phase == "long"]
    clips = [h for (phase, _, _), h in contender.heard.items() if phase == "clip"]
    first = {cid: h for (phase, r, cid), h in contender.heard.items() if phase == "clip" and r == 0}
    pairs = [(clip.reference, first[clip.id].text) for clip in work.clips if clip.id in first]
    errors = [
        {"id": clip.id, "errors": n, "heard": first[clip.id].text}
        for clip in work.clips
        if clip.id in first
        and (n := edit_distance(normalise(clip.reference), normalise(first[clip.id].text)))
    ]
    long_text = longs[0].text if longs else None
    result.update(
        {
            "sentences": len(pairs),
            "wer": _round(word_error_rate(pairs), 4) if pairs else None,
            "rtf": _round(
                _ratio(sum(h.seconds for h in longs), work.corpus_seconds * len(longs)), 4
            )
            if longs
            else None,
            "long_form": {
                "audio_seconds": round(work.corpus_seconds, 1),
                "calls": len(longs),
                "seconds": [round(h.seconds, 3) for h in longs],
                "wer": None
                if long_text is None
                else round(word_error_rate([(work.corpus.reference, long_text)]), 4),
            },
            "per_clip_rtf": _round(
                _ratio(sum(h.seconds for h in clips), sum(h.duration for h in clips)), 4
            )
            if clips
            else None,
            "clip_p50_ms": percentiles_ms([h.seconds for h in clips])[0],
            "first_call_seconds": _round(contender.first_call_seconds, 2),
            "errors": errors,
        }
    )
    if contender.server is None:  # the core: this (benchmark) process
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    else:
        result["rss_after_warmup_mb"] = _mb_pair(contender.rss_after_warmup)
        result["rss_after_run_mb"] = _mb_pair(contender.rss_after_run)
        result["peak_rss_mb"] = (
            None if contender.error else _round(_peak_rss_mb(contender.server), 1)
        )
    return result


def _mb_pair(pair: tuple[float, float] | None) -> dict[str, float] | None:
    return None if pair is None else {"worker": round(pair[0], 1), "tree": round(pair[1], 1)}


def compare_with_core(contenders: Sequence[Contender]) -> dict[str, dict[str, Any]]:
    """Per HTTP surface: transcripts equal to the core's, and per-request HTTP - core (ms).

    Differences are paired by clip and round (the same audio, measured within a few seconds of
    each other), so most of the outside load cancels out; their median is the overhead of one
    request.
    """
    by_name = {c.name: c for c in contenders}
    core = by_name.get("core")
    out: dict[str, dict[str, Any]] = {}
    if core is None:
        return out
    for contender in contenders:
        if contender is core:
            continue
        same = differ = 0
        deltas: dict[str, list[float]] = {"long": [], "clip": []}
        for key, heard in contender.heard.items():
            reference = core.heard.get(key)
            if reference is None:
                continue
            if heard.text == reference.text:
                same += 1
            else:
                differ += 1
            deltas[key[0]].append(heard.seconds - reference.seconds)
        out[contender.name] = {
            "transcripts_identical_to_core": same,
            "transcripts_different_from_core": differ,
            "long_minus_core_median_ms": _median_ms(deltas["long"]),
            "clip_minus_core_median_ms": _median_ms(deltas["clip"]),
            "clip_minus_core_p95_ms": percentiles_ms(deltas["clip"])[1],
        }
    return out


def _median_ms(seconds: Sequence[float]) -> float | None:
    return None if not seconds else round(float(np.median(seconds)) * 1000, 2)


def transport_costs(
    contenders: Sequence[Contender], work: Workload, repeats: int
) -> dict[str, dict[str, float | None]]:
    """Per HTTP surface: p50 (ms) of ``GET /health`` and of refused uploads of a clip and the corpus."""
    out: dict[str, dict[str, float | None]] = {}
    for contender in contenders:
        surface = contender.surface
        if not isinstance(surface, HttpSurface) or contender.error is not None:
            continue
        try:
            out[contender.name] = {
                "health_p50_ms": percentiles_ms([surface.health() for _ in range(repeats * 4)])[0],
                "refused_clip_upload_p50_ms": percentiles_ms(
                    [surface.refused_upload(work.clips[0]) for _ in range(repeats)]
                )[0],
                "refused_corpus_upload_p50_ms": percentiles_ms(
                    [surface.refused_upload(work.corpus) for _ in range(repeats)]
                )[0],
                "clip_bytes": float(len(work.clips[0].data)),
                "corpus_bytes": float(len(work.corpus.data)),
            }
        except (RuntimeError, httpx.HTTPError) as exc:
            progress(f"{contender.name}: transport diagnostics failed: {exc}")
    return out


# -- targets and report --------------------------------------------------------------------------


def evaluate(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets, judged on the measured figures (``passed`` is None when not measured)."""

    def check(name: str, value: float | None, limit: str, ok: Callable[[float], bool]) -> None:
        checks.append(
            {
                "name": name,
                "value": value,
                "limit": limit,
                "passed": None if value is None else ok(value),
            }
        )

    checks: list[dict[str, Any]] = []
    core = results.get("core", {})
    for name, result in results.items():
        check(f"{name} WER", result.get("wer"), f"<= {WER_TARGET:.2f}", lambda v: v <= WER_TARGET)
    for name, result in results.items():
        check(
            f"{name} RTF (long form)",
            result.get("rtf"),
            f"<= {RTF_TARGET}",
            lambda v: v <= RTF_TARGET,
        )
    for name, result in results.items():
        if name == "core":
            continue
        overhead = None
        if result.get("rtf") is not None and core.get("rtf"):
            overhead = result["rtf"] / core["rtf"] - 1
            result["overhead_percent"] = round(overhead * 100, 1)
            result["http_core_ratio"] = round(result["rtf"] / core["rtf"], 3)
        check(
            f"{name} HTTP overhead over core (long form)",
            overhead,
            f"<= {OVERHEAD_TARGET:.0%}",
            lambda v: v <= OVERHEAD_TARGET,
        )
        if result.get("per_clip_rtf") is not None and core.get("per_clip_rtf"):
            result["per_clip_overhead_percent"] = round(
                (result["per_clip_rtf"] / core["per_clip_rtf"] - 1) * 100, 1
            )
        same_wer = None
        if result.get("wer") is not None and core.get("wer") is not None:
            same_wer = abs(result["wer"] - core["wer"])
        check(f"{name} WER equals the core's", same_wer, "== 0", lambda v: v == 0)
    return checks


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(results: dict[str, dict[str, Any]], checks: Sequence[dict[str, Any]]) -> str:
    """The figures as a Markdown table and the targets as a list."""
    lines = [
        "| surface | WER (clips) | WER long form | RTF long form | HTTP/core | overhead "
        "| RTF per clip | per-clip overhead | first call (s) | RSS peak (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        if r.get("error"):
            lines.append(f"| {name} | not measured: {r['error'].splitlines()[0]} |||||||||")
            continue
        lines.append(
            f"| {name} | {_fmt(r['wer'], '.2%')} | {_fmt(r['long_form']['wer'], '.2%')} "
            f"| {_fmt(r['rtf'], '.4f')} | {_fmt(r.get('http_core_ratio'), '.3f')} "
            f"| {_fmt(r.get('overhead_percent'), '+.1f')}% | {_fmt(r['per_clip_rtf'], '.4f')} "
            f"| {_fmt(r.get('per_clip_overhead_percent'), '+.1f')}% "
            f"| {_fmt(r['first_call_seconds'], '.2f')} | {_fmt(r['peak_rss_mb'], '.0f')} |"
        )
    lines.append("")
    for c in checks:
        status = "N/A" if c["passed"] is None else ("PASS" if c["passed"] else "FAIL")
        lines.append(f"- **{status}** {c['name']}: {_fmt(c['value'], '.4f')} (target {c['limit']})")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------------


def _terminate(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke run: 6 clips, one round")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument("--rounds", type=int, default=None, help="passes over the audio (3)")
    parser.add_argument("--block", type=int, default=8, help="clips per surface per turn (8)")
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: settings)")
    parser.add_argument("--threads", type=int, default=None, help="CTranslate2 threads")
    parser.add_argument("--vad-min-seconds", type=float, default=None, help="VAD from this length")
    args = parse_with_surfaces(parser, argv, SURFACES)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    return args


def offline_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` without any remote provider (OpenAI, Anthropic): the local model serves."""
    return {k: v for k, v in env.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}


def whisper_environment(settings: Settings) -> dict[str, str]:
    """The core's Whisper settings as the servers' environment, so every surface runs alike."""
    return {
        "SYNTHSTACK_TRANSCRIPTION_MODEL": settings.transcription_model,
        "SYNTHSTACK_WHISPER_BEAM_SIZE": str(settings.whisper_beam_size),
        "SYNTHSTACK_WHISPER_THREADS": str(settings.whisper_threads),
        "SYNTHSTACK_WHISPER_VAD_MIN_SECONDS": str(settings.whisper_vad_min_seconds),
    }


def start_contenders(
    stack: ExitStack, args: argparse.Namespace, settings: Settings
) -> tuple[list[Contender], dict[str, dict[str, Any]]]:
    """Start every chosen surface (servers first); those that cannot start are reported."""
    contenders: list[Contender] = []
    failed: dict[str, dict[str, Any]] = {}
    servers = [name for name in args.surfaces if name != "core"]
    env: dict[str, str] = {}
    if servers:
        database_url = start_database(stack)
        env = offline_environment(server_env(database_url, None, cache_max_entries=0))
        env.update(whisper_environment(settings))
    for name in args.surfaces:
        try:
            if name == "core":
                contenders.append(Contender(stack.enter_context(CoreSurface(settings))))
                continue
            log_path = RESULTS_DIR / f"server-transcription-{name}.log"
            progress(f"{name}: starting the server (log: {log_path.relative_to(ROOT)})")
            started = time.monotonic()
            server = stack.enter_context(
                serve(name, env, startup_timeout=args.startup_timeout, log_path=log_path)
            )
            progress(f"{name}: healthy after {time.monotonic() - started:.1f}s")
            surface = HttpSurface(name, server.base_url)
            stack.callback(surface.close)
            contenders.append(Contender(surface, server))
        except (ServerFailed, RuntimeError, OSError) as exc:
            progress(f"{name}: FAILED to start: {exc}")
            failed[name] = {"surface": name, "error": f"{type(exc).__name__}: {exc}"}
    order = {name: i for i, name in enumerate(SURFACES)}
    contenders.sort(key=lambda c: order[c.name])
    return contenders, failed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every chosen surface was measured."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C stops the run cleanly even when started in the background (where SIGINT is ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for key in [k for k in os.environ if k.startswith(("OPENAI_", "ANTHROPIC_"))]:
        del os.environ[key]  # offline: the core too
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    overrides: dict[str, Any] = {"_env_file": None}
    if args.beam is not None:
        overrides["whisper_beam_size"] = args.beam
    if args.threads is not None:
        overrides["whisper_threads"] = args.threads
    if args.vad_min_seconds is not None:
        overrides["whisper_vad_min_seconds"] = args.vad_min_seconds
    settings = Settings(**overrides)
    info = machine()
    progress(
        f"whisper-tiny.en, beam {settings.whisper_beam_size}, "
        f"threads {settings.whisper_threads or 'one per core'}, temperature {TEMPERATURE}"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    clips = load_clips(6 if args.quick else None)

    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        corpus, corpus_seconds = concatenated_corpus(clips, Path(folder))
        work = Workload(clips, corpus, corpus_seconds, args.rounds, max(1, args.block))
        contenders, results = start_contenders(stack, args, settings)

        def own() -> list[psutil.Process]:
            processes = [psutil.Process(), *database_processes()]
            for contender in contenders:
                if contender.server is not None:
                    with suppress(psutil.Error):
                        processes.extend(contender.server.processes())
            return processes

        if args.settle > 0:
            info["cpu_percent_before"] = wait_for_quiet(args.settle)
        load = measure(contenders, work, own)
        transport = transport_costs(contenders, work, repeats=3 if args.quick else 10)
        results.update({c.name: summarise(c, work) for c in contenders})
        paired = compare_with_core(contenders)
        samples = {
            c.name: {
                f"{phase}/{round_}/{clip_id}": round(heard.seconds * 1000, 1)
                for (phase, round_, clip_id), heard in c.heard.items()
            }
            for c in contenders
        }
        progress("stopping the servers and the embedded PostgreSQL")

    info["load_average_end"] = list(os.getloadavg())
    results = {name: results[name] for name in SURFACES if name in results}
    checks = evaluate(results)
    print()
    print(f"machine: {info['nproc']} cores, {info['cpu_model']}, {info['memory_gb']} GB")
    print(
        f"whisper-tiny.en int8, beam {settings.whisper_beam_size}, temperature {TEMPERATURE}; "
        f"{len(clips)} clips + {corpus_seconds:.1f} s long form, {args.rounds} round(s)\n"
    )
    print(render(results, checks))
    print()
    print(
        "CPU used by other processes while measuring (cores, of "
        f"{info['nproc']}): " + ", ".join(f"{k} {_fmt(v, '.2f')}" for k, v in load.items())
    )
    print(f"load average at start / end: {info['load_average_start']} / {info['load_average_end']}")
    for name, figures in paired.items():
        print(
            f"{name} vs core, paired per request: long form "
            f"{_fmt(figures['long_minus_core_median_ms'], '.1f')} ms, "
            f"clip {_fmt(figures['clip_minus_core_median_ms'], '.1f')} ms (median); transcripts "
            f"identical {figures['transcripts_identical_to_core']}, different "
            f"{figures['transcripts_different_from_core']}"
        )
    for name, figures in transport.items():
        print(
            f"{name} transport p50: GET /health {_fmt(figures['health_p50_ms'], '.2f')} ms, "
            f"refused upload of a clip ({_fmt(figures['clip_bytes'], '.0f')} bytes) "
            f"{_fmt(figures['refused_clip_upload_p50_ms'], '.2f')} ms, of the corpus "
            f"({_fmt(figures['corpus_bytes'], '.0f')} bytes) "
            f"{_fmt(figures['refused_corpus_upload_p50_ms'], '.2f')} ms"
        )
    for name, r in results.items():
        if r.get("rss_after_warmup_mb") and r.get("rss_after_run_mb"):
            print(
                f"{name} worker RSS after warm-up {r['rss_after_warmup_mb']['worker']:.0f} MB, "
                f"after the run {r['rss_after_run_mb']['worker']:.0f} MB, "
                f"peak {_fmt(r['peak_rss_mb'], '.0f')} MB "
                f"(tree {r['rss_after_run_mb']['tree']:.0f} MB)"
            )

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": info,
            "settings": {
                "model": settings.transcription_model,
                "beam_size": settings.whisper_beam_size,
                "threads": settings.whisper_threads,
                "vad_min_seconds": settings.whisper_vad_min_seconds,
                "temperature": TEMPERATURE,
                "response_format": "json",
                "rounds": args.rounds,
                "block": work.block,
                "clips": len(clips),
            },
            "results": results,
            "checks": checks,
            "foreign_load_cores": load,
            "paired_with_core": paired,
            "transport": transport,
            "samples_ms": samples,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        progress(f"results written to {args.json}")
    return 1 if any(r.get("error") for r in results.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: servers and the embedded PostgreSQL stopped", file=sys.stderr)
        sys.exit(130)
