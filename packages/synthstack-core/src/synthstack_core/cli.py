"""The ``synthstack`` command: ``serve``, ``worker``, ``migrate``, ``keys``, ``limits`` and ``ingest``.

``serve`` resolves the database once (starting the embedded PostgreSQL when ``DATABASE_URL`` is unset),
migrates it, then runs the chosen backend's server (uvicorn for FastAPI, gunicorn for Django) with
``DATABASE_URL`` pointing every worker at that one database, and a fresh metrics folder
(``PROMETHEUS_MULTIPROC_DIR``) that every worker writes to, removed when the server stops. Stopping
``serve`` stops the server and then the embedded PostgreSQL. Each server process also runs jobs
when ``SYNTHSTACK_WORKER`` is ``embedded`` (the default in development). ``worker`` runs jobs only,
as many at once as ``--concurrency`` says; any number of them, on any machines, share the
database's queue.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import FrameType

from synthstack_core.logs import configure_logging, server_logging_config
from synthstack_core.metrics import MULTIPROCESS_DIR_VARIABLE
from synthstack_core.settings import Settings
from synthstack_core.stores.embedded import quiet_server_chatter

__all__ = [
    "MAX_HEADER_FIELDS",
    "MAX_HEADER_FIELD_BYTES",
    "MAX_REQUEST_HEAD_BYTES",
    "MAX_REQUEST_LINE_BYTES",
    "main",
]

logger = logging.getLogger("synthstack.cli")

#: What the servers accept of a request's head, before the application sees anything (the
#: servers answer beyond it, not the core). Gunicorn (Django): the request line (method, target,
#: version) up to 8,190 bytes, its largest setting, else 414; each header line up to 8,190 bytes
#: and at most 100 headers, else 431. Uvicorn (FastAPI) runs h11, whose bound is on the head
#: as a whole, 64 KiB, checked whenever more of the head is awaited (else 400): a head that
#: arrives in one read (asyncio reads up to 256 KiB at once) passes up to that size.
MAX_REQUEST_LINE_BYTES = 8190
MAX_HEADER_FIELD_BYTES = 8190
MAX_HEADER_FIELDS = 100
MAX_REQUEST_HEAD_BYTES = 65_536


def _say(message: str, settings: Settings) -> None:
    """A line for the operator on stderr: a log line with ``SYNTHSTACK_LOG_FORMAT=json``, so that
    every line is JSON; else the plain message."""
    if settings.log_format == "json":
        logger.info("%s", message)
    else:
        print(message, file=sys.stderr)


@contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """The database URL (with the connection timeouts of the settings), with the embedded
    PostgreSQL running while the block runs."""
    from synthstack_core.stores.database import with_timeouts

    if settings.database_url:
        yield with_timeouts(settings.database_url, settings.database_connect_timeout)
        return
    from synthstack_core.stores.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.data_dir)
    url = embedded.start()
    _say(f"embedded PostgreSQL in {embedded.data_dir / 'postgres'}", settings)
    try:
        yield with_timeouts(url, settings.database_connect_timeout)
    finally:
        embedded.stop()


def _migrate_django(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "synthstack_django", "migrate", "--noinput", "-v", "0"],
        env=env,
        check=True,
    )


@contextmanager
def _server_state(log_format: str) -> Iterator[tuple[Path, Path | None]]:
    """A fresh folder for one server start, removed when it stops: the metrics folder every worker
    writes to (``PROMETHEUS_MULTIPROC_DIR``, so that a scrape sums all of them), and with JSON logs
    the logging configuration the server reads."""
    with tempfile.TemporaryDirectory(prefix="synthstack-serve-") as folder:
        metrics_dir = Path(folder) / "metrics"
        metrics_dir.mkdir()
        log_config = None
        if log_format == "json":
            log_config = Path(folder) / "logging.json"
            log_config.write_text(json.dumps(server_logging_config()), encoding="utf-8")
        yield metrics_dir, log_config


def django_threads(settings: Settings) -> int:
    """Gunicorn threads per Django worker when ``--threads`` is not given: the requests the core
    runs at once, plus the queue it keeps and one more (so that a request the core would refuse
    reaches it instead of waiting unseen in gunicorn); 8 with the default settings."""
    queued = settings.max_queued_requests
    return settings.max_active_requests + (queued + 1 if queued else 0)


def _server_command(
    args: argparse.Namespace, log_config: Path | None = None, *, threads: int = 8
) -> list[str]:
    if args.backend == "fastapi":
        return [
            sys.executable, "-m", "uvicorn", "synthstack_fastapi.asgi:app",
            "--host", args.host, "--port", str(args.port), "--workers", str(args.workers),
            "--no-access-log", "--timeout-graceful-shutdown", "10",
            # httptools, uvicorn's default parser, takes a head of any size (a 20 MB header was
            # read whole); h11 bounds it.
            "--http", "h11", "--h11-max-incomplete-event-size", str(MAX_REQUEST_HEAD_BYTES),
            # JSON logs: uvicorn's own lines too (gunicorn's: synthstack_django.gunicorn_conf).
            *(["--log-config", str(log_config)] if log_config is not None else []),
        ]  # fmt: skip
    return [
        sys.executable, "-m", "gunicorn", "synthstack_django.wsgi:application",
        "--bind", f"{args.host}:{args.port}", "--workers", str(args.workers),
        "--worker-class", "gthread", "--threads", str(args.threads or threads),
        "--graceful-timeout", "10", "--timeout", "120",
        # 0 would lift the request-line cap: a 100 MB query string then held a worker at 75 %
        # CPU for a minute.
        "--limit-request-line", str(MAX_REQUEST_LINE_BYTES),
        "--limit-request-field_size", str(MAX_HEADER_FIELD_BYTES),
        "--limit-request-fields", str(MAX_HEADER_FIELDS),
        "--config", "python:synthstack_django.gunicorn_conf",
    ]  # fmt: skip


def _serve(args: argparse.Namespace) -> int:
    module = {"fastapi": "synthstack_fastapi", "django": "synthstack_django"}[args.backend]
    if importlib.util.find_spec(module) is None:
        print(
            f"error: install synthstack-{args.backend} to serve with {args.backend}",
            file=sys.stderr,
        )
        return 2
    settings = Settings(SYNTHSTACK_HOST=args.host)
    configure_logging(settings.log_format)
    from synthstack_core.modules import migrate

    with _database(settings) as url, _server_state(settings.log_format) as (metrics_dir, logs):
        migrate(url)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "SYNTHSTACK_HOST": args.host,
            "SYNTHSTACK_MIGRATE_ON_START": "false",
            "SYNTHSTACK_LOG_FORMAT": settings.log_format,
            MULTIPROCESS_DIR_VARIABLE: str(metrics_dir),
            "HF_HUB_OFFLINE": "1",
        }
        if args.backend == "django":
            _migrate_django(env)
        _say(f"serving {args.backend} on http://{args.host}:{args.port}", settings)
        command = _server_command(args, logs, threads=django_threads(settings))
        child = subprocess.Popen(command, env=env)

        def forward(signum: int, _: FrameType | None) -> None:
            child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        return child.wait()


def _worker(args: argparse.Namespace) -> int:
    from synthstack_core.modules import migrate

    settings = Settings()
    configure_logging(settings.log_format)
    with _database(settings) as url:
        migrate(url)
        # This process runs the worker itself, in the foreground (no embedded one besides).
        settings = settings.model_copy(
            update={"database_url": url, "migrate_on_start": False, "worker": "none"}
        )
        print("running jobs (stop with Ctrl-C or SIGTERM)", file=sys.stderr)
        asyncio.run(_run_worker(settings, args.concurrency))
    return 0


async def _run_worker(settings: Settings, concurrency: int | None) -> None:
    from synthstack_core.service import SynthStack

    async with SynthStack(settings, backend="worker") as stack:
        await stack.jobs.run_worker(concurrency=concurrency)


def _migrate(_: argparse.Namespace) -> int:
    from synthstack_core.modules import migrate

    settings = Settings()
    with _database(settings) as url:
        migrate(url)
        if importlib.util.find_spec("synthstack_django") is not None:
            _migrate_django({**os.environ, "DATABASE_URL": url})
    print("database is at the latest schema", file=sys.stderr)
    return 0


async def _keys(args: argparse.Namespace, url: str) -> int:
    from synthstack_core.stores.api_keys import ApiKeyRepository
    from synthstack_core.stores.database import Database

    database = Database(url, pool_size=1)
    repository = ApiKeyRepository(database)
    try:
        if args.keys_command == "create":
            created = await repository.create(args.tenant, args.name)
            print(f"id:     {created.record.id}\ntenant: {created.record.tenant}")
            print(f"key:    {created.secret}\n(shown once: store it now)")
        elif args.keys_command == "list":
            for record in await repository.list(args.tenant):
                state = "active" if record.active else f"revoked {record.revoked_at:%Y-%m-%d}"
                print(
                    f"{record.id}  {record.tenant:<20} ssk_{record.prefix}_…  {state}  {record.name}"
                )
        else:
            record = await repository.revoke(args.key_id)
            print(f"revoked {record.id} (tenant {record.tenant})")
    finally:
        await database.aclose()
    return 0


def _keys_command(args: argparse.Namespace) -> int:
    """A bad argument (a tenant or key name) is a one-line error and exit status 2, like
    argparse's; another refusal (no such key) exits 1. A database error is a line too: its
    traceback would show the row's values, the key's hash among them."""
    from sqlalchemy.exc import SQLAlchemyError

    from synthstack_core.errors import InvalidRequest, SynthStackError, translate
    from synthstack_core.modules import migrate

    with _database(Settings()) as url:
        migrate(url)
        try:
            return asyncio.run(_keys(args, url))
        except SQLAlchemyError as exc:
            refused = translate(exc)
            detail = refused.detail if isinstance(refused, SynthStackError) else "database error"
            print(f"error: {detail} ({type(exc).__name__})", file=sys.stderr)
            return 2 if isinstance(refused, InvalidRequest) else 1
        except InvalidRequest as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 2
        except SynthStackError as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 1


async def _limits(args: argparse.Namespace, url: str, settings: Settings) -> int:
    from synthstack_core.stores.database import Database
    from synthstack_core.stores.rate_limits import RateLimitRepository

    database = Database(url, pool_size=1)
    repository = RateLimitRepository(database)
    try:
        if args.limits_command == "set":
            record = await repository.set(args.tenant, args.policy, args.rate)
            print(f"tenant {record.tenant}: {record.policy} = {record.rate}")
        elif args.limits_command == "list":
            if args.tenant is None:
                rules = settings.parsed_rate_limits()
                for name, item in rules.items():
                    print(f"{'(SYNTHSTACK_RATE_LIMITS)':<24} {name:<16} {item}")
                if not rules:
                    print("(SYNTHSTACK_RATE_LIMITS is empty: no limits but the overrides)")
            for override in await repository.list(args.tenant):
                print(
                    f"{override.tenant:<24} {override.policy:<16} {override.rate}  "
                    f"(since {override.updated_at:%Y-%m-%d %H:%M})"
                )
        else:
            removed = await repository.clear(args.tenant, args.policy)
            print(f"tenant {args.tenant}: {removed} override{'s' if removed != 1 else ''} cleared")
    finally:
        await database.aclose()
    return 0


def _limits_command(args: argparse.Namespace) -> int:
    from synthstack_core.errors import SynthStackError
    from synthstack_core.modules import migrate

    settings = Settings()
    with _database(settings) as url:
        migrate(url)
        try:
            return asyncio.run(_limits(args, url, settings))
        except SynthStackError as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 1


def _ingest(args: argparse.Namespace) -> int:
    import httpx

    from synthstack_core.ingest import ingest, local_client

    api_key = args.api_key or os.environ.get("SYNTHSTACK_API_KEY") or None
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    # The stack's own lines (INFO: each job run) would break the progress bar; warnings stay.
    logging.getLogger().setLevel(logging.WARNING)

    @asynccontextmanager
    async def client() -> AsyncIterator[httpx.AsyncClient]:
        if args.url:
            async with httpx.AsyncClient(
                base_url=args.url, headers=headers, timeout=httpx.Timeout(120.0)
            ) as remote:
                yield remote
            return
        settings = Settings()
        configure_logging(settings.log_format)
        logging.getLogger().setLevel(logging.WARNING)
        async with local_client(settings, args.concurrency) as local:
            local.headers.update(headers)
            yield local

    try:
        return asyncio.run(
            ingest(args.paths, args.collection, client, concurrency=args.concurrency)
        )
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="synthstack", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--backend", choices=["fastapi", "django"], default="fastapi")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per Django worker (default: SYNTHSTACK_MAX_ACTIVE_REQUESTS, plus "
        "SYNTHSTACK_MAX_QUEUED_REQUESTS + 1 when the queue is bounded)",
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run jobs (indexing asked for asynchronously)")
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="jobs run at once (default: SYNTHSTACK_WORKER_CONCURRENCY)",
    )
    worker.set_defaults(run=_worker)

    commands.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        run=_migrate
    )

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key (printed once)")
    create.add_argument("--tenant", default="default")
    create.add_argument("--name", default="")
    listing = key_commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--tenant", default=None)
    revoke = key_commands.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key_id")
    keys.set_defaults(run=_keys_command)

    limits = commands.add_parser(
        "limits",
        help="manage tenants' rate-limit overrides (of SYNTHSTACK_RATE_LIMITS)",
        description="A tenant's override replaces SYNTHSTACK_RATE_LIMITS's entry of the same "
        "policy for that tenant; every process applies an edit within "
        "SYNTHSTACK_RATE_LIMIT_CACHE_SECONDS.",
    )
    limit_commands = limits.add_subparsers(dest="limits_command", required=True)
    set_limit = limit_commands.add_parser("set", help="give a tenant its own rate for a policy")
    set_limit.add_argument("--tenant", required=True)
    set_limit.add_argument(
        "policy", help="a group of operations (e.g. generation), default, or tokens (the budget)"
    )
    set_limit.add_argument("rate", help="e.g. 600/minute, '60 per minute', or unlimited")
    list_limits = limit_commands.add_parser("list", help="the setting's rules and the overrides")
    list_limits.add_argument("--tenant", default=None)
    clear = limit_commands.add_parser("clear", help="remove a tenant's override(s)")
    clear.add_argument("--tenant", required=True)
    clear.add_argument("policy", nargs="?", default=None, help="one policy (default: all)")
    limits.set_defaults(run=_limits_command)

    ingest = commands.add_parser(
        "ingest",
        help="index files and folders (txt, md, html, pdf, docx) as upload jobs",
        description="Each file is one document, its id derived from its path under the PATH it "
        "was found in; files stored unchanged already are not sent again, so a run again resumes. "
        "Without --url, a stack runs in this process on the configured database (DATABASE_URL, "
        "else the embedded one), with its worker. Exit code: 0, 1 when a file failed, 130 when "
        "interrupted (Ctrl-C cancels the jobs in flight).",
    )
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ingest.add_argument("--collection", required=True)
    ingest.add_argument("--url", default=None, help="a SynthStack server (default: in-process)")
    ingest.add_argument(
        "--api-key", default=None, help="the key to send (default: SYNTHSTACK_API_KEY)"
    )
    ingest.add_argument(
        "--concurrency", type=_positive, default=4, help="jobs in flight at once (default 4)"
    )
    ingest.set_defaults(run=_ingest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``synthstack``."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_server_chatter()
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
