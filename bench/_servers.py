"""What the benchmarks share: servers, the embedded PostgreSQL, and watching the machine's load.

``bench/embeddings.py`` and ``bench/retrieval.py`` import this module (run as scripts, their own
directory is on ``sys.path``). A server is ``synthstack serve`` in its own session (process group) on
a free loopback port; every server and the benchmark itself use one embedded PostgreSQL in
``bench/.data``; :class:`ForeignLoad` and :func:`wait_for_quiet` tell how much CPU other processes
took, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import numpy as np
import psutil  # type: ignore[import-untyped]  # no stubs installed

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
#: The embedded PostgreSQL's data directory: ``bench/.data``, or ``SYNTHSTACK_BENCH_DATA`` (a path
#: relative to the repository root, or absolute) for a database of one's own, e.g. to keep an
#: indexed corpus apart from the other benchmarks'.
DATA_DIR = ROOT / os.environ.get("SYNTHSTACK_BENCH_DATA", "bench/.data")

API_KEY = "bench-key-123456"
API_KEYS_SETTING = f"bench:{API_KEY}"


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentiles_ms(seconds: Sequence[float]) -> tuple[float | None, float | None]:
    """(p50, p95) of ``seconds``, in milliseconds; ``(None, None)`` for no samples."""
    if not seconds:
        return None, None
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


# -- interference --------------------------------------------------------------------------------


def _busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (neither idle nor waiting for I/O)."""
    times = psutil.cpu_times()
    idle = float(times.idle) + float(getattr(times, "iowait", 0.0))
    return float(sum(times)) - idle


def _process_cpu_seconds(processes: Sequence[psutil.Process]) -> dict[int, float]:
    """CPU seconds of each process still running, by pid: its own and its reaped children's.

    Counting the reaped children (``children_user``/``children_system``, Linux) charges a
    short-lived helper to its parent: PostgreSQL's parallel query and autovacuum workers, which
    start and end between two samples, would otherwise look like another program's load.
    """
    seconds: dict[int, float] = {}
    for proc in processes:
        with suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            reaped = getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0)
            seconds[proc.pid] = times.user + times.system + reaped
    return seconds


#: The benchmark's own processes: a fixed list, or a function that lists them when called (for
#: process trees that change while measuring, such as PostgreSQL's backends).
OwnProcesses = Sequence[psutil.Process] | Callable[[], Sequence[psutil.Process]]


class ForeignLoad:
    """How many cores *other* processes kept busy while a measurement ran (on average).

    The machine may be shared (tests of other work, other services): anything well above zero
    means the figures measured under interference and should be read with care. When
    ``processes`` is a function it is called at both ends, so a process of ours that starts
    meanwhile counts as ours; one that ends meanwhile moves into its parent's reaped-children
    time, which counts too when the parent is one of ours.
    """

    def __init__(self, processes: OwnProcesses) -> None:
        self._processes = processes if callable(processes) else list(processes)
        self.cores: float | None = None

    def _own(self) -> dict[int, float]:
        processes = self._processes() if callable(self._processes) else self._processes
        return _process_cpu_seconds(processes)

    def __enter__(self) -> ForeignLoad:
        self._wall = time.monotonic()
        self._busy = _busy_cpu_seconds()
        self._own_before = self._own()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        wall = time.monotonic() - self._wall
        busy = _busy_cpu_seconds() - self._busy
        own = sum(self._own().values()) - sum(self._own_before.values())
        self.cores = max(0.0, busy - own) / wall if wall > 0 else None


def wait_for_quiet(max_seconds: float, *, busy_percent: float = 15.0) -> float:
    """Wait (up to ``max_seconds``) until the machine is nearly idle for one second.

    Returns the CPU use of the last sample, in percent of all cores.
    """
    deadline = time.monotonic() + max_seconds
    usage = float(psutil.cpu_percent(interval=1.0))
    while usage > busy_percent and time.monotonic() < deadline:
        progress(f"machine busy ({usage:.0f}% CPU), waiting for it to settle")
        usage = float(psutil.cpu_percent(interval=2.0))
    return usage


# -- servers -------------------------------------------------------------------------------------


class KeepAliveClient:
    """A running server, called by one sequential client over a keep-alive connection (the HTTP
    surfaces of the side-by-side benchmarks derive from it)."""

    #: Seconds a request may take.
    timeout: float = 120.0

    def __init__(self, name: str, base_url: str) -> None:
        self.name = name
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=httpx.Timeout(self.timeout),
        )

    def close(self) -> None:
        """Close the connection."""
        self._client.close()


class ServerFailed(RuntimeError):
    """A server did not come up."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A ``synthstack serve`` process group."""

    backend: str
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log_tail(self, lines: int = 25) -> str:
        """The end of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def processes(self) -> list[psutil.Process]:
        """``synthstack serve`` and every process under it."""
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def memory(self) -> tuple[float, float]:
        """(RSS of the worker that serves and holds the model, RSS of the whole tree), in MB.

        The worker is the leaf of the tree (``synthstack serve`` -> uvicorn, or ``synthstack
        serve`` -> gunicorn master -> worker) with the most resident memory.
        """
        tree = self.processes()
        rss: dict[int, int] = {}
        leaves: list[int] = []
        for proc in tree:
            try:
                rss[proc.pid] = proc.memory_info().rss
                if not proc.children():
                    leaves.append(proc.pid)
            except psutil.NoSuchProcess:
                continue
        worker = max((rss[pid] for pid in leaves), default=0)
        return worker / 2**20, sum(rss.values()) / 2**20


def server_env(
    database_url: str, redis_url: str | None, *, cache_max_entries: int
) -> dict[str, str]:
    """The environment of a ``synthstack serve`` process: this one's, plus the benchmark's settings.

    ``REDIS_URL`` is set only when ``redis_url`` is given (otherwise the in-process cache serves);
    ``cache_max_entries`` bounds that cache (0: no caching at all).
    """
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SYNTHSTACK_API_KEYS": API_KEYS_SETTING,
        "SYNTHSTACK_CACHE_MAX_ENTRIES": str(cache_max_entries),
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def stop_group(process: subprocess.Popen[bytes], grace_seconds: float = 20.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after the grace period."""
    if process.poll() is not None:
        _kill_group(process.pid, signal.SIGKILL)  # a worker may outlive its parent
        return
    _kill_group(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(grace_seconds)
    _kill_group(process.pid, signal.SIGKILL)
    process.wait()


def _kill_group(pgid: int, signum: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signum)


@contextmanager
def serve(
    backend: str, env: dict[str, str], *, startup_timeout: float, log_path: Path
) -> Iterator[Server]:
    """``synthstack serve --backend BACKEND --workers 1`` on a free loopback port, until exit.

    The server runs in its own session (process group), so stopping it reaches the workers too,
    on a normal exit, an exception or Ctrl-C alike.
    """
    port = free_port()
    command = [
        sys.executable, "-m", "synthstack_core.cli", "serve", "--backend", backend,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(backend, process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_healthy(server, startup_timeout)
        yield server
    finally:
        stop_group(process)


def wait_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise ServerFailed(
                    f"{server.backend} exited with {server.process.returncode}:\n"
                    f"{server.log_tail()}"
                )
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
    raise ServerFailed(f"{server.backend} not healthy after {timeout:.0f}s:\n{server.log_tail()}")


# -- database ------------------------------------------------------------------------------------


def start_database(stack: ExitStack) -> str:
    """Start (and migrate) the embedded PostgreSQL in ``bench/.data``; stopped when ``stack`` closes.

    Returns its URL. The data directory persists between runs.
    """
    from synthstack_core.stores.database import migrate
    from synthstack_core.stores.embedded import EmbeddedPostgres

    postgres = EmbeddedPostgres(DATA_DIR)
    progress(f"starting the embedded PostgreSQL in {DATA_DIR}")
    stack.callback(postgres.stop)
    database_url: str = postgres.start()
    migrate(database_url)
    return database_url


def database_processes() -> list[psutil.Process]:
    """The embedded PostgreSQL's processes (the postmaster and its children), if it runs."""
    try:
        pid = int((DATA_DIR / "postgres" / "postmaster.pid").read_text().split()[0])
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except (OSError, ValueError, IndexError, psutil.Error):
        return []


# -- machine -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "platform": platform.platform(),
        "load_average_start": list(os.getloadavg()),
    }


def add_server_options(parser: argparse.ArgumentParser, *, settle_before: str) -> None:
    """``--startup-timeout`` (for a server's /health) and ``--settle`` (wait for quiet before
    ``settle_before``): the options of every benchmark that starts servers."""
    parser.add_argument(
        "--startup-timeout", type=float, default=90.0, help="seconds to wait for /health"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help=f"wait up to this long for other CPU use to stop before {settle_before} (default: 60)",
    )


def parse_with_surfaces(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, surfaces: Sequence[str]
) -> argparse.Namespace:
    """Add the options every side-by-side benchmark has (``--surfaces``, ``--startup-timeout``,
    ``--settle``), parse ``argv``, and turn ``--surfaces`` into a checked list."""
    parser.add_argument(
        "--surfaces",
        default=",".join(surfaces),
        help=f"comma-separated subset of {','.join(surfaces)} (default: all)",
    )
    add_server_options(parser, settle_before="measuring")
    args = parser.parse_args(argv)
    args.surfaces = [s.strip() for s in args.surfaces.split(",") if s.strip()]
    unknown = set(args.surfaces) - set(surfaces)
    if unknown:
        parser.error(f"unknown surfaces: {', '.join(sorted(unknown))}")
    return args
