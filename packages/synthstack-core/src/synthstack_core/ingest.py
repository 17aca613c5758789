"""``synthstack ingest``: index a folder of documents as upload jobs, resumably.

Each file (``.txt``, ``.md``, ``.markdown``, ``.html``, ``.htm``, ``.pdf``, ``.docx``; others are
counted as skipped) is one document of the collection: its ``document_id`` is derived from its path
relative to the root it was found under (so a run again addresses the same document), its
``source`` is that relative path, and its metadata holds the SHA-256 of the file's bytes
(``file_sha256``). Before uploading a file, ``GET /api/v1/rag/documents/{id}`` tells whether that
document is stored with the same bytes already: then it is reported unchanged, and not sent.
Otherwise it is sent as ``POST /api/v1/rag/documents`` with ``Prefer: respond-async`` and its job is
followed (``GET /api/v1/jobs/{id}``) until it ends.

The calls go to a server (``--url``) over HTTP, or to a stack started in this process, through the
same entry point the adapters use (:meth:`SynthStack.handle`, by an ``httpx`` transport), with its
embedded worker running the jobs: the requests, the answers and the code are the same either way.

Ctrl-C (SIGINT) stops submitting, cancels the jobs that have not ended (``DELETE
/api/v1/jobs/{id}``: a cancelled indexing stores nothing), prints the summary and exits 130; a
second Ctrl-C exits at once. Run again, it resumes: the documents stored already are unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO
from urllib.parse import quote, unquote

import anyio
import httpx

from synthstack_core.http import HttpRequest
from synthstack_core.operations import match

if TYPE_CHECKING:
    from synthstack_core.service import SynthStack
    from synthstack_core.settings import Settings

__all__ = [
    "EXTENSIONS",
    "FILE_HASH_KEY",
    "Outcome",
    "SourceFile",
    "StackTransport",
    "collect",
    "document_id_for",
    "ingest",
]

#: The extensions ingested (lower-cased); the server reads each file's type from its content.
EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"})
#: The metadata key holding the SHA-256 of the file's bytes, what tells an unchanged file.
FILE_HASH_KEY = "file_sha256"
#: Job statuses after which nothing changes.
ENDED = frozenset({"succeeded", "failed", "cancelled"})
#: How often a job is read while it runs: from the first wait up to the longest.
POLL_FIRST_SECONDS = 0.1
POLL_MAX_SECONDS = 1.0
#: How long the jobs cancelled on Ctrl-C are awaited before the summary.
CANCEL_WAIT_SECONDS = 30.0
#: Answers of 429 (the caller's rate limit) are retried after their ``Retry-After``, this often.
MAX_RATE_LIMITED_RETRIES = 8
#: A document id's readable part, before the digest that makes it unique.
_ID_PREFIX_CHARS = 200
_NOT_ID = re.compile(r"[^A-Za-z0-9._-]+")

Kind = Literal["ingested", "unchanged", "failed", "cancelled"]


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest."""

    path: Path
    #: Its path relative to the root given on the command line (POSIX separators).
    relative: str

    @property
    def document_id(self) -> str:
        return document_id_for(self.relative)


@dataclass(frozen=True)
class Outcome:
    """What became of one file."""

    file: SourceFile
    kind: Kind
    reason: str = ""
    chunks: int | None = None


@dataclass
class Summary:
    """The counts a run ends with."""

    ingested: int = 0
    unchanged: int = 0
    skipped: int = 0
    cancelled: int = 0
    not_started: int = 0
    failures: list[Outcome] = field(default_factory=list)
    interrupted: bool = False

    def add(self, outcome: Outcome) -> None:
        if outcome.kind == "failed":
            self.failures.append(outcome)
        else:
            setattr(self, outcome.kind, getattr(self, outcome.kind) + 1)

    def lines(self) -> list[str]:
        head = (
            f"ingested {self.ingested}, unchanged {self.unchanged}, skipped {self.skipped}, "
            f"failed {len(self.failures)}"
        )
        if self.interrupted:
            head += f"; interrupted: {self.cancelled} cancelled, {self.not_started} not started"
        lines = [head]
        lines += [f"failed {item.file.relative}: {item.reason}" for item in self.failures]
        return lines


def document_id_for(relative: str) -> str:
    """The document id of a file at ``relative`` (POSIX path under its root): its path made of
    the characters an id may hold, then 12 hex digits of the path's SHA-256, so two paths that read
    alike (``a b.txt``, ``a_b.txt``) are two documents and a run again finds the same one."""
    readable = _NOT_ID.sub("_", relative.replace("/", "."))
    readable = readable.lstrip("._-")[:_ID_PREFIX_CHARS] or "document"
    return f"{readable}-{hashlib.sha256(relative.encode()).hexdigest()[:12]}"


def collect(paths: Sequence[Path]) -> tuple[list[SourceFile], int]:
    """The files to ingest under ``paths`` (folders walked recursively, in name order; a file
    given directly is relative to its own folder), and how many files were skipped by extension.
    Raises :class:`FileNotFoundError` for a path that does not exist."""
    found: list[SourceFile] = []
    skipped = 0
    for given in paths:
        if given.is_dir():
            candidates = sorted(
                Path(folder) / name for folder, _, names in os.walk(given) for name in names
            )
            root = given
        elif given.exists():
            candidates, root = [given], given.parent
        else:
            raise FileNotFoundError(f"no such file or folder: {given}")
        for path in candidates:
            if path.suffix.lower() in EXTENSIONS and path.is_file():
                found.append(SourceFile(path, path.relative_to(root).as_posix()))
            else:
                skipped += 1
    return found, skipped


# -- the stack in this process ---------------------------------------------------------------


class StackTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport that serves each request with :meth:`SynthStack.handle`, the entry
    point of both adapters: routed to its operation by the contract's paths, as a router would."""

    def __init__(self, stack: SynthStack) -> None:
        self._stack = stack

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        found = match(path, self._stack.operations)
        if found is None:
            return httpx.Response(404)
        methods, path_params = found
        operation = methods.get(request.method)
        if operation is None:
            return httpx.Response(405, headers={"Allow": ", ".join(sorted(methods))})
        reply = await self._stack.handle(
            operation,
            HttpRequest(
                method=request.method,
                path=path,
                headers={
                    name.decode("latin-1").lower(): value.decode("latin-1")
                    for name, value in request.headers.raw
                },
                body=await request.aread(),
                path_params={k: unquote(v) for k, v in path_params.items()},
                query=dict(request.url.params.items()),
                client="127.0.0.1",
            ),
        )
        if reply.stream is not None:  # no operation called here streams
            await reply.stream.aclose()
            raise RuntimeError(f"{operation.operation_id} answered a stream")
        return httpx.Response(reply.status, headers=reply.headers, content=reply.body)


def local_settings(settings: Settings, concurrency: int) -> Settings:
    """The settings of the stack ``ingest`` runs in its own process: its embedded worker runs the
    jobs, ``concurrency`` at once."""
    return settings.model_copy(update={"worker": "embedded", "worker_concurrency": concurrency})


@contextlib.asynccontextmanager
async def local_client(settings: Settings, concurrency: int) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a stack started in this process (the configured database, else the embedded
    one), with its embedded worker."""
    from synthstack_core.service import SynthStack

    async with (
        SynthStack(local_settings(settings, concurrency), backend="ingest") as stack,
        httpx.AsyncClient(
            transport=StackTransport(stack), base_url="http://synthstack.local", timeout=600.0
        ) as client,
    ):
        yield client


# -- a run -----------------------------------------------------------------------------------


def _problem(response: httpx.Response) -> str:
    """A failed answer, as its problem's title and detail."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return _problem_of(body, response.status_code)


def _problem_of(body: Any, status: int | None = None) -> str:
    if not isinstance(body, dict):
        return f"HTTP {status}"
    title = body.get("title") or f"HTTP {status or body.get('status')}"
    code = f" ({body['code']})" if body.get("code") else ""
    detail = body.get("detail")
    text = f"{title}{code}: {detail}" if detail else f"{title}{code}"
    fields = [
        f"{'.'.join(map(str, error.get('loc') or ()))}: {error.get('msg')}"
        for error in body.get("errors") or ()
        if isinstance(error, dict)
    ]
    return f"{text} ({'; '.join(fields)})" if fields else text


class _Interrupted(Exception):
    """Ctrl-C arrived before this file was submitted."""


class Ingestion:
    """One run over ``files``, ``concurrency`` of them in flight at once."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        collection: str,
        *,
        concurrency: int,
        report: Callable[[Outcome], None],
        interrupted: asyncio.Event,
    ) -> None:
        self.client = client
        self.collection = collection
        self.concurrency = concurrency
        self.report = report
        self.interrupted = interrupted

    async def run(self, files: Sequence[SourceFile], summary: Summary) -> None:
        queue: asyncio.Queue[SourceFile] = asyncio.Queue()
        for item in files:
            queue.put_nowait(item)

        async def slot() -> None:
            while not self.interrupted.is_set():
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    outcome = await self.one(item)
                except _Interrupted:
                    summary.not_started += 1
                    continue
                summary.add(outcome)
                self.report(outcome)

        if self.interrupted.is_set():  # during the start
            summary.not_started = len(files)
            return
        await asyncio.gather(*(slot() for _ in range(self.concurrency)))
        summary.not_started += queue.qsize()

    async def check(self) -> str | None:
        """Why no file could be ingested (a refused key, an invalid collection name, no such
        service), before any is read; ``None`` when the collection can be listed or is new."""
        try:
            response = await self._send(
                "GET", "/api/v1/rag/documents", params={"collection": self.collection, "limit": 1}
            )
        except httpx.TransportError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.status_code == 200:
            return None
        if response.status_code == 404 and response.headers.get("content-type", "").startswith(
            "application/problem+json"
        ):
            return None  # the collection does not exist yet: the first upload creates it
        return _problem(response)

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A request, again after its ``Retry-After`` while it is rate-limited (429)."""
        for _ in range(MAX_RATE_LIMITED_RETRIES):
            response = await self.client.request(method, url, **kwargs)
            if response.status_code != 429:
                return response
            try:
                wait = float(response.headers.get("retry-after", "1"))
            except ValueError:
                wait = 1.0
            await asyncio.sleep(min(max(wait, 0.1), 60.0))
        return response

    async def one(self, item: SourceFile) -> Outcome:
        """Ingest one file: unchanged, or uploaded and its job followed to its end."""
        try:
            data = await anyio.to_thread.run_sync(item.path.read_bytes)
        except OSError as exc:
            return Outcome(item, "failed", f"unreadable: {exc.strerror or exc}")
        digest = hashlib.sha256(data).hexdigest()
        document_url = f"/api/v1/rag/documents/{quote(item.document_id, safe='')}"
        try:
            stored = await self._send("GET", document_url, params={"collection": self.collection})
            if stored.status_code == 200:
                metadata = stored.json().get("metadata") or {}
                if metadata.get(FILE_HASH_KEY) == digest:
                    return Outcome(item, "unchanged", chunks=stored.json().get("chunks"))
            elif stored.status_code != 404:
                return Outcome(item, "failed", _problem(stored))
            if self.interrupted.is_set():
                raise _Interrupted
            accepted = await self._send(
                "POST",
                "/api/v1/rag/documents",
                headers={"Prefer": "respond-async"},
                data={
                    "collection": self.collection,
                    "document_id": item.document_id,
                    "source": item.relative,
                    "metadata": json.dumps({FILE_HASH_KEY: digest}),
                },
                files={"file": (item.path.name, data)},
            )
            if accepted.status_code == 201:  # a server that ran it at once
                return Outcome(item, "ingested", chunks=accepted.json().get("chunks"))
            if accepted.status_code != 202:
                return Outcome(item, "failed", _problem(accepted))
            return await self._follow(item, accepted.json()["id"])
        except httpx.TransportError as exc:
            return Outcome(item, "failed", f"{type(exc).__name__}: {exc}")

    async def _follow(self, item: SourceFile, job_id: str) -> Outcome:
        """Read the job until it ends; on Ctrl-C, cancel it and read it until it ends."""
        job_url = f"/api/v1/jobs/{quote(job_id, safe='')}"
        wait = POLL_FIRST_SECONDS
        cancelled_at: float | None = None
        while True:
            if self.interrupted.is_set() and cancelled_at is None:
                cancelled_at = time.monotonic()
                # 409 when it ended meanwhile: what it ended as is read below.
                await self._send("DELETE", job_url)
            response = await self._send("GET", job_url)
            if response.status_code != 200:
                return Outcome(item, "failed", f"job {job_id}: {_problem(response)}")
            job = response.json()
            if job["status"] in ENDED:
                break
            if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_WAIT_SECONDS:
                return Outcome(item, "cancelled", f"job {job_id} still {job['status']}")
            if cancelled_at is not None:
                await asyncio.sleep(wait)
            else:  # woken by Ctrl-C, to cancel at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.interrupted.wait(), wait)
            wait = min(wait * 1.5, POLL_MAX_SECONDS)
        if job["status"] == "succeeded":
            result = job.get("result") or {}
            return Outcome(item, "ingested", chunks=result.get("chunks"))
        if job["status"] == "cancelled":
            if cancelled_at is None:  # not by this run
                return Outcome(item, "failed", f"job {job_id} was cancelled")
            return Outcome(item, "cancelled", f"job {job_id} cancelled")
        return Outcome(item, "failed", _problem_of(job.get("error")))


class _Progress:
    """A progress bar (tqdm: documents/s and ETA) on a terminal, else a plain line per file."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.out = out
        self.total = total
        self.bar: Any = None

    def start(self) -> None:
        """Show the bar (once the stack has started: its rate is the documents')."""
        if self.out.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="doc", file=self.out, dynamic_ncols=True)

    def report(self, outcome: Outcome) -> None:
        if self.bar is not None:
            if outcome.kind == "failed":
                self.bar.write(f"failed {outcome.file.relative}: {outcome.reason}", file=self.out)
            self.bar.update(1)
            return
        line = f"{outcome.kind} {outcome.file.relative}"
        if outcome.reason:
            line += f": {outcome.reason}"
        elif outcome.chunks is not None:
            line += f" ({outcome.chunks} chunk{'' if outcome.chunks == 1 else 's'})"
        print(line, file=self.out, flush=True)

    def say(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=self.out)
        else:
            print(message, file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


async def ingest(
    paths: Sequence[Path],
    collection: str,
    client_factory: Callable[[], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
    *,
    concurrency: int,
    out: TextIO = sys.stdout,
) -> int:
    """Run ``synthstack ingest``: the exit code (0; 1 when a file failed; 130 on Ctrl-C)."""
    files, skipped = collect(paths)
    summary = Summary(skipped=skipped)
    by_id: dict[str, SourceFile] = {}
    unique: list[SourceFile] = []
    for item in files:
        other = by_id.setdefault(item.document_id, item)
        if other is item:
            unique.append(item)
        else:  # the same relative path under two roots
            summary.failures.append(
                Outcome(item, "failed", f"same relative path as {other.path}, one document")
            )
    progress = _Progress(len(unique), out)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    interrupted = asyncio.Event()

    def on_interrupt() -> None:
        if interrupted.is_set():  # the second Ctrl-C: now
            if main is not None:
                main.cancel()
            return
        interrupted.set()
        summary.interrupted = True
        progress.say("interrupted: cancelling the jobs in flight (Ctrl-C again to quit now)")

    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        async with client_factory() as client:
            run = Ingestion(
                client,
                collection,
                concurrency=concurrency,
                report=progress.report,
                interrupted=interrupted,
            )
            refused = await run.check()
            if refused is not None:
                progress.close()
                print(f"error: {refused}", file=sys.stderr)
                return 2
            progress.start()
            await run.run(unique, summary)
    except asyncio.CancelledError:
        progress.close()
        print("interrupted again: quit without waiting", file=sys.stderr)
        return 130
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    progress.close()
    for line in summary.lines():
        print(line, file=out, flush=True)
    if summary.interrupted:
        return 130
    return 1 if summary.failures else 0
