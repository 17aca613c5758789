"""Jobs on Procrastinate: enqueued with their records in one transaction, run by workers, read,
listed and cancelled by their tenant.

A feature makes an operation answer asynchronously by registering a *kind* (:meth:`JobService.
register`): the function that does the work, given the tenant, the request as JSON, an upload's
bytes and a progress callback, returning the body the synchronous call would answer. Its handler
checks everything it can without doing the work, then calls :meth:`JobService.submit`, which
writes the job's row (``jobs``), its payload (``job_payloads``) and Procrastinate's job in one
PostgreSQL transaction: all three exist, or none.

A worker (embedded in a server process, or ``synthstack worker``) runs Procrastinate's task
``synthstack.run_job``: it marks the job running, runs the kind's function, and stores the result
or the problem, deleting the payload. A failure a later run may not meet (a provider's 429 or 5xx,
the database down) is run again with growing waits, up to ``SYNTHSTACK_JOB_MAX_ATTEMPTS`` runs; a
caller's mistake fails at once. Workers beat; a periodic task queues again the jobs of a worker
that stopped beating (killed), and another purges finished jobs after the retention.

A Procrastinate worker stops when it loses the database; :meth:`JobService.run_worker` starts a
new one a few seconds later, until the database answers, so a worker process (``synthstack
worker``, or a server's embedded worker) lives through a PostgreSQL restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import functools
import logging
import math
import signal
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from pydantic import BaseModel
from sqlalchemy import and_, delete, func, insert, literal, select, text, tuple_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from synthstack_core import tracing
from synthstack_core.cursors import decode_cursor, encode_cursor
from synthstack_core.errors import (
    Conflict,
    DependencyUnavailable,
    NotFound,
    SynthStackError,
    problem_for,
    translate,
)
from synthstack_core.features.jobs.engine import conninfo, driver_connection, quiet_procrastinate
from synthstack_core.preferences import RESPOND_ASYNC
from synthstack_core.registry import operation
from synthstack_core.replies import EventStream, Reply
from synthstack_core.request_scope import current_request_id
from synthstack_core.schemas.jobs import (
    TERMINAL_STATUSES,
    Job,
    JobList,
    JobListParams,
    JobParams,
)
from synthstack_core.settings import Settings
from synthstack_core.stores.api_keys import ApiKeyRepository
from synthstack_core.stores.database import Database
from synthstack_core.stores.jobs import (
    JOB_COLUMNS,
    TENANTS,
    UNFINISHED,
    job_from_row,
    job_payloads,
    jobs,
    owned_by,
)
from synthstack_core.stores.write_claims import claimed_by
from synthstack_core.usage import UsageRecorder

__all__ = [
    "QUEUE",
    "RUN_TASK",
    "JobCancelled",
    "JobRunner",
    "JobService",
    "Progress",
]

if TYPE_CHECKING:  # Procrastinate (and psycopg under it) loads when a stack builds its jobs
    import procrastinate
    from procrastinate.job_context import JobContext
    from procrastinate.jobs import Job as QueuedJob

logger = logging.getLogger("synthstack.jobs")

#: The Procrastinate queue SynthStack's workers listen to, and the task that runs a job.
QUEUE = "synthstack"
RUN_TASK = "synthstack.run_job"
#: How long a stopping worker lets its running jobs finish before it queues them again.
SHUTDOWN_GRACE_SECONDS = 10.0
#: How long after the grace a stopping embedded worker may take to unregister before it is cut.
STOP_MARGIN_SECONDS = 5.0
#: How long a worker (embedded or ``synthstack worker``) waits before it starts its Procrastinate
#: worker again, after that one stopped on an error (the database went away).
WORKER_RESTART_SECONDS = 5.0
#: Seconds before the 2nd, 3rd... run of a job that failed on a provider: 2, 4, 8... (unless the
#: provider said how long to wait: its ``Retry-After``).
RETRY_BASE_SECONDS = 2
#: Seconds before the next run of a job whose run the database failed (or a stopping worker cut):
#: such a run is not one of the ``SYNTHSTACK_JOB_MAX_ATTEMPTS``, which count the provider's failures.
RUN_AGAIN_SECONDS = 5
#: Runs of a job the database may fail (or stopping workers cut) besides its attempts: an outage
#: costs the job running then one run, and none while PostgreSQL is down (nothing is claimed).
DATABASE_RETRIES = 20
#: The longest wait a provider's ``Retry-After`` may set before a job's next run: a provider
#: asking for more (hours, a date far off) gets this; the job's attempts still run out.
RETRY_AFTER_MAX_SECONDS = 300.0
#: How often a job's event stream reads the job again (polling: one indexed primary-key read).
EVENTS_POLL_SECONDS = 0.5
#: How long a job's event stream stays silent at most: then it sends a comment line, so proxies
#: keep an idle stream open and a server that notices a client gone only when it writes does.
EVENTS_KEEPALIVE_SECONDS = 15.0

#: Reports ``done`` of ``total`` units; raises :class:`JobCancelled` when the job was cancelled.
Progress = Callable[[int, int | None], Awaitable[None]]


class JobRunner(Protocol):
    """The work of one kind of job: the body the synchronous call would have answered (a model
    answered as JSON, or the text of an answer that is not JSON)."""

    def __call__(
        self, tenant: str, request: dict[str, Any], data: bytes | None, progress: Progress
    ) -> Awaitable[BaseModel | str]: ...


class JobCancelled(Exception):
    """The job was cancelled while it ran (raised by :data:`Progress`)."""


class _RunAgain(Exception):
    """This run failed in a way a later one may not: Procrastinate's retry strategy runs it again,
    ``wait`` seconds later."""

    def __init__(self, reason: str, *, wait: float = RUN_AGAIN_SECONDS) -> None:
        super().__init__(reason)
        self.wait = wait


class _DatabaseLost(_RunAgain):
    """The database failed this run (claiming the job, reporting its progress, storing its end):
    the run is retried, and the worker that ran it starts afresh (see
    :func:`_restart_on_database_loss`), so that Procrastinate's record of the run, which it may
    have failed to write, is recovered as a stalled job's."""


@dataclass(frozen=True)
class _Kind:
    run: JobRunner
    unit: str


def _change(job: Job) -> tuple[str, int, int | None]:
    """What a job's event stream tells about: a new event when it differs."""
    return job.status, job.progress.done, job.progress.total


class JobService:
    """Jobs: submitted by the features, run by workers, read and cancelled through the API."""

    def __init__(self, database: Database, tenants: ApiKeyRepository, settings: Settings) -> None:
        self._database = database
        self._tenants = tenants
        self._settings = settings
        self._kinds: dict[str, _Kind] = {}
        self._embedded: asyncio.Task[None] | None = None
        #: Where what a job uses (texts embedded, audio) is counted, for the job's tenant; set by
        #: the stack when it serves usage. The bytes of a submitted document are counted by the
        #: request that submitted it.
        self.usage: UsageRecorder | None = None
        import procrastinate

        quiet_procrastinate()
        self.app: procrastinate.App = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=conninfo(database),
                min_size=1,
                max_size=settings.worker_concurrency + 4,
            )
        )
        self._define_tasks()

    # -- kinds and submission ------------------------------------------------------------------

    def register(self, kind: str, run: JobRunner, *, unit: str) -> None:
        """Let operations submit jobs of ``kind``, done by ``run``, whose progress counts
        ``unit``s."""
        if kind in self._kinds:
            raise ValueError(f"job kind {kind!r} is registered twice")
        self._kinds[kind] = _Kind(run, unit)

    @staticmethod
    def wanted(prefer: Mapping[str, str]) -> bool:
        """Whether the request's ``Prefer`` header asks for an asynchronous answer."""
        return RESPOND_ASYNC in prefer

    async def submit(
        self,
        tenant: str,
        kind: str,
        request: Mapping[str, Any],
        *,
        data: bytes | None = None,
        request_id: str = "",
        path: str = "",
        total: int | None = None,
    ) -> Reply:
        """Enqueue a job of ``kind`` for ``tenant``: its row, its payload (``request``, JSON, and
        ``data``) and Procrastinate's job, in one transaction. ``total``: the units of work when
        they are known before it runs. ``request_id`` (by default the id of the request being
        served) is kept with the job: its problems carry it. The answer: 202, ``Location`` of the
        job, ``Preference-Applied: respond-async`` and the job."""
        spec = self._kinds[kind]
        tenant_id = await self._tenants.ensure_tenant(tenant)
        job_id = uuid.uuid4()
        # The submitting request's span (W3C traceparent), which the job's runs link to.
        payload = {"request": dict(request), "path": path, "trace": tracing.propagation_headers()}
        async with self._database.session() as session, session.begin():
            connection = await session.connection()
            await connection.execute(
                insert(jobs).values(
                    id=job_id,
                    tenant_id=tenant_id,
                    kind=kind,
                    status="queued",
                    progress_done=0,
                    progress_total=total,
                    progress_unit=spec.unit,
                    attempts=0,
                    created_at=func.now(),
                    request_id=request_id or current_request_id(),
                )
            )
            await connection.execute(
                insert(job_payloads).values(job_id=job_id, request=payload, data=data)
            )
            queued = await self._run_task.configure(
                connection=await driver_connection(connection)
            ).defer_async(job_id=str(job_id))
            row = (
                (
                    await connection.execute(
                        update(jobs)
                        .where(jobs.c.id == job_id)
                        .values(procrastinate_job_id=queued)
                        .returning(*JOB_COLUMNS)
                    )
                )
                .mappings()
                .one()
            )
        return Reply(
            job_from_row(row),
            202,
            headers=(
                ("Location", f"/api/v1/jobs/{job_id}"),
                ("Preference-Applied", RESPOND_ASYNC),
            ),
        )

    # -- operations ----------------------------------------------------------------------------

    @operation("jobs-get", params=JobParams)
    async def get(self, tenant: str, job_id: uuid.UUID) -> Job:
        """``GET /api/v1/jobs/{job_id}`` (another tenant's job is a 404, like a missing one)."""
        async with self._database.engine.connect() as connection:
            row = (
                (
                    await connection.execute(
                        owned_by(select(*JOB_COLUMNS), tenant).where(jobs.c.id == job_id)
                    )
                )
                .mappings()
                .one_or_none()
            )
        if row is None:
            raise NotFound(f"No job {str(job_id)!r}.")
        return job_from_row(row)

    @operation("jobs-events", params=JobParams, response=Job)
    async def events(self, tenant: str, job_id: uuid.UUID) -> EventStream:
        """``GET /api/v1/jobs/{job_id}/events``: the job as server-sent events, one each time its
        status or progress changes, until a terminal status has been sent. A missing job (or
        another tenant's) is a 404 before the stream starts."""
        job = await self.get(tenant, job_id)
        return EventStream(self._follow(tenant, job))

    async def _follow(
        self, tenant: str, job: Job
    ) -> AsyncGenerator[tuple[str, BaseModel] | None, None]:
        """``job``, then the job read again every :data:`EVENTS_POLL_SECONDS` when its status or
        progress changed, until it has ended; ``None`` (a comment line) after
        :data:`EVENTS_KEEPALIVE_SECONDS` without an event."""
        loop = asyncio.get_running_loop()
        yield "job", job
        seen, sent = _change(job), loop.time()
        while job.status not in TERMINAL_STATUSES:
            await asyncio.sleep(EVENTS_POLL_SECONDS)
            job = await self.get(tenant, job.id)
            if _change(job) != seen:
                seen, sent = _change(job), loop.time()
                yield "job", job
            elif loop.time() - sent >= EVENTS_KEEPALIVE_SECONDS:
                sent = loop.time()
                yield None

    @operation("jobs-list")
    async def list_jobs(self, tenant: str, params: JobListParams) -> JobList:
        """``GET /api/v1/jobs``: the caller's jobs, newest first, with an opaque cursor."""
        query = owned_by(select(*JOB_COLUMNS), tenant)
        if params.status is not None:
            query = query.where(jobs.c.status == params.status)
        if params.kind is not None:
            query = query.where(jobs.c.kind == params.kind)
        if params.cursor is not None:
            created_at, after = decode_cursor(params.cursor)
            query = query.where(
                tuple_(jobs.c.created_at, jobs.c.id) < tuple_(literal(created_at), literal(after))
            )
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(params.limit + 1)
        async with self._database.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        page = [job_from_row(row) for row in rows[: params.limit]]
        more = len(rows) > params.limit
        return JobList(
            jobs=page, next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None
        )

    @operation("jobs-cancel", params=JobParams)
    async def cancel(self, tenant: str, job_id: uuid.UUID) -> Job:
        """``DELETE /api/v1/jobs/{job_id}``: a queued job will not run; a running one stops at its
        next progress report, or rolls back the write of its work, which is not stored. 409 when
        the job has ended already, or its work is written (then it ends ``succeeded``): a write
        under way holds the job's row until it commits, so this waits for it."""
        async with self._database.session() as session, session.begin():
            connection = await session.connection()
            row = (
                await connection.execute(
                    owned_by(
                        select(jobs.c.status, jobs.c.procrastinate_job_id, jobs.c.stored_at),
                        tenant,
                    )
                    .where(jobs.c.id == job_id)
                    .with_for_update(of=jobs)
                )
            ).one_or_none()
            if row is None:
                raise NotFound(f"No job {str(job_id)!r}.")
            status, queued, stored = row
            if status in TERMINAL_STATUSES:
                raise Conflict(
                    f"Job {str(job_id)!r} has ended already ({status}).", code="job_ended"
                )
            if stored is not None:
                raise Conflict(
                    f"Job {str(job_id)!r} has stored its work; it ends succeeded.",
                    code="job_ended",
                )
            cancelled = (
                (
                    await connection.execute(
                        update(jobs)
                        .where(jobs.c.id == job_id)
                        .values(status="cancelled", finished_at=func.now())
                        .returning(*JOB_COLUMNS)
                    )
                )
                .mappings()
                .one()
            )
            await connection.execute(delete(job_payloads).where(job_payloads.c.job_id == job_id))
            if queued is not None:
                # A queued job is cancelled in the queue; a running one is asked to abort.
                await self.app.job_manager.cancel_job_by_id_async(
                    queued, abort=True, connection=await driver_connection(connection)
                )
        return job_from_row(cancelled)

    # -- running -------------------------------------------------------------------------------

    def _define_tasks(self) -> None:
        from procrastinate.job_context import AbortReason

        settings = self._settings
        app = self.app

        async def run_job(context: JobContext, job_id: str) -> None:
            try:
                await self.run(uuid.UUID(job_id), attempt=(context.job.attempts or 0) + 1)
            except asyncio.CancelledError:
                if context.abort_reason() != AbortReason.SHUTDOWN:
                    raise
                # The worker is stopping: another run will do it.
                await self._set_queued(uuid.UUID(job_id))
                raise _RunAgain("the worker stopped while the job ran") from None
            except SQLAlchemyError as error:
                # Around the kind's work (claiming the job, storing its end): run it again.
                logger.warning(
                    "job %s: the database failed the run (%s); it will run again",
                    job_id,
                    type(error).__name__,
                )
                raise _DatabaseLost(type(error).__name__) from error

        self._run_task = app.task(
            name=RUN_TASK,
            queue=QUEUE,
            pass_context=True,
            retry=_retry_strategy(settings.job_max_attempts),
        )(run_job)

        every = max(1, min(30, round(settings.job_stalled_seconds / 3)))

        async def recover_stalled_jobs(timestamp: int) -> None:
            """Queue again the running jobs of workers that stopped beating (killed)."""
            stalled = await app.job_manager.get_stalled_jobs(
                queue=QUEUE,
                task_name=RUN_TASK,
                seconds_since_heartbeat=settings.job_stalled_seconds,
            )
            for job in stalled:
                logger.warning("job %s stalled (its worker stopped beating): queued again", job.id)
                await app.job_manager.retry_job(job)
            await self.fail_lost_jobs()

        app.periodic(cron=f"* * * * * */{every}")(
            app.task(
                name="synthstack.recover_stalled_jobs",
                queue=QUEUE,
                queueing_lock="synthstack.recover_stalled_jobs",
            )(recover_stalled_jobs)
        )

        retention = settings.job_retention_seconds

        async def purge_finished_jobs(timestamp: int) -> None:
            """Delete the jobs that ended longer ago than the retention."""
            async with self._database.engine.begin() as connection:
                await connection.execute(
                    delete(jobs).where(
                        jobs.c.finished_at
                        < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, retention)
                    )
                )

        app.periodic(cron="*/10 * * * *")(
            app.task(
                name="synthstack.purge_finished_jobs",
                queue=QUEUE,
                queueing_lock="synthstack.purge_finished_jobs",
            )(purge_finished_jobs)
        )

    async def run(self, job_id: uuid.UUID, *, attempt: int) -> None:
        """Run job ``job_id`` (its ``attempt``-th run): the kind's work, then its result or
        problem stored and its payload deleted; nothing when it was cancelled or has ended."""
        async with self._database.engine.begin() as connection:
            claimed = (
                await connection.execute(
                    update(jobs)
                    .where(
                        and_(
                            jobs.c.id == job_id,
                            jobs.c.status.in_(("queued", "running")),
                            TENANTS.c.id == jobs.c.tenant_id,
                            job_payloads.c.job_id == jobs.c.id,
                        )
                    )
                    .values(
                        status="running",
                        attempts=attempt,
                        started_at=func.coalesce(jobs.c.started_at, func.now()),
                    )
                    .returning(
                        jobs.c.kind,
                        TENANTS.c.name,
                        jobs.c.request_id,
                        jobs.c.provider_failures,
                        job_payloads.c.request,
                        job_payloads.c.data,
                    )
                )
            ).one_or_none()
        if claimed is None:
            logger.info("job %s: nothing to run (cancelled or ended)", job_id)
            return
        kind, tenant, request_id, failures, payload, data = claimed

        async def progress(done: int, total: int | None) -> None:
            async with self._database.engine.begin() as connection:
                still = await connection.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.status == "running")
                    .values(progress_done=done, progress_total=total)
                    .returning(jobs.c.id)
                )
                if still.one_or_none() is None:
                    raise JobCancelled(str(job_id))

        if self.usage is not None:
            self.usage.bind(tenant)
        attributes = {
            "synthstack.job_id": str(job_id),
            "synthstack.job.kind": kind,
            "synthstack.job.attempt": attempt,
            "synthstack.tenant": tenant,
            "synthstack.request_id": request_id,
        }
        with tracing.job_span(f"job {kind}", payload.get("trace") or {}, attributes) as span:
            try:
                with claimed_by(functools.partial(self._claim_write, job_id)):
                    result = await self._kinds[kind].run(tenant, payload["request"], data, progress)
            except JobCancelled:
                from procrastinate.exceptions import JobAborted

                logger.info("job %s cancelled while it ran", job_id)
                raise JobAborted() from None
            except Exception as raised:
                error = translate(raised)
                problem = problem_for(
                    error, request_id=request_id, instance=payload["path"] or None
                )
                again = isinstance(error, SynthStackError) and (
                    error.status == 429 or error.status >= 500
                )
                if again and _database_failed(raised):
                    # The database failed the work (not the provider): not one of its attempts.
                    logger.warning(
                        "job %s: the database failed run %d (%s); it will run again",
                        job_id,
                        attempt,
                        problem.body["code"],
                    )
                    await self._set_queued(job_id)
                    raise _DatabaseLost(problem.body["code"]) from raised
                if again and failures + 1 < self._settings.job_max_attempts:
                    failures += 1
                    wait = provider_wait(raised)
                    logger.warning(
                        "job %s: run %d failed (%s, attempt %d of %d); it will run again in %.0f s",
                        job_id,
                        attempt,
                        problem.body["code"],
                        failures,
                        self._settings.job_max_attempts,
                        RETRY_BASE_SECONDS**failures if wait is None else wait,
                    )
                    await self._set_queued(job_id, failures=failures)
                    raise _RunAgain(
                        problem.body["code"],
                        wait=RETRY_BASE_SECONDS**failures if wait is None else wait,
                    ) from raised
                logger.warning(
                    "job %s failed on run %d (%s) request_id=%s",
                    job_id,
                    attempt,
                    problem.body["code"],
                    request_id,
                    extra={"request_id": request_id, "job_id": str(job_id)},
                )
                tracing.failed(span, problem.body["code"])
                await self._finish(job_id, "failed", error=problem.body)
                return
            body = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
            await self._finish(job_id, "succeeded", result=body)

    @staticmethod
    async def _claim_write(job_id: uuid.UUID, session: AsyncSession) -> None:
        """In the transaction writing the job's work (a document), holding what it writes: the
        job, still running, is marked as having stored it (its row locked until the commit, so a
        cancel waits and then answers 409); a job cancelled meanwhile raises
        :class:`JobCancelled`, which rolls the write back (:mod:`synthstack_core.stores.
        write_claims`)."""
        still = await session.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == "running")
            .values(stored_at=func.now())
            .returning(jobs.c.id)
        )
        if still.one_or_none() is None:
            raise JobCancelled(str(job_id))

    async def fail_lost_jobs(self) -> list[uuid.UUID]:
        """Fail, with the database's 503 problem, the queued or running jobs that Procrastinate
        no longer holds: its record of their last run ended (failed and deleted) while the
        database failed to store theirs. Run with the stalled-job check; returns their ids."""
        # A job's row and Procrastinate's are written together, and its end is stored before
        # Procrastinate's record is deleted: a row left without one is lost.
        not_held = text(
            "NOT EXISTS (SELECT 1 FROM procrastinate_jobs queued"
            " WHERE queued.id = jobs.procrastinate_job_id AND queued.status IN ('todo', 'doing'))"
        )
        async with self._database.engine.begin() as connection:
            lost = (
                await connection.execute(
                    select(jobs.c.id, jobs.c.request_id, job_payloads.c.request)
                    .select_from(jobs.outerjoin(job_payloads, job_payloads.c.job_id == jobs.c.id))
                    .where(UNFINISHED, jobs.c.procrastinate_job_id.is_not(None), not_held)
                    .with_for_update(of=jobs, skip_locked=True)
                )
            ).all()
            for job_id, request_id, payload in lost:
                logger.warning(
                    "job %s: its run's end was lost with the database; failed request_id=%s",
                    job_id,
                    request_id,
                    extra={"request_id": request_id, "job_id": str(job_id)},
                )
                problem = problem_for(
                    DependencyUnavailable("The database was unavailable when the job last ran."),
                    request_id=request_id,
                    instance=(payload or {}).get("path") or None,
                )
                await connection.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id)
                    .values(status="failed", finished_at=func.now(), error=problem.body)
                )
                await connection.execute(
                    delete(job_payloads).where(job_payloads.c.job_id == job_id)
                )
        return [job_id for job_id, _, _ in lost]

    async def _set_queued(self, job_id: uuid.UUID, *, failures: int | None = None) -> None:
        """The job shows ``queued`` again (it will run again), with ``failures`` of the
        provider's counted when given; when the database cannot say so now, it shows ``running``
        until its next run claims it (and that failure is not counted)."""
        values: dict[str, Any] = {"status": "queued"}
        if failures is not None:
            values["provider_failures"] = failures
        try:
            async with self._database.engine.begin() as connection:
                await connection.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.status == "running")
                    .values(**values)
                )
        except SQLAlchemyError as error:
            logger.warning("job %s: not shown queued again (%s)", job_id, type(error).__name__)

    async def _finish(
        self,
        job_id: uuid.UUID,
        status: str,
        *,
        result: dict[str, Any] | str | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """The job's end, unless it was cancelled meanwhile; its payload is deleted either way."""
        async with self._database.engine.begin() as connection:
            await connection.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "running")
                .values(
                    status=status,
                    finished_at=func.now(),
                    result=result,
                    error=error,
                    progress_done=func.coalesce(jobs.c.progress_total, jobs.c.progress_done),
                )
            )
            await connection.execute(delete(job_payloads).where(job_payloads.c.job_id == job_id))

    # -- workers -------------------------------------------------------------------------------

    async def run_worker(
        self, *, concurrency: int | None = None, install_signal_handlers: bool = True
    ) -> None:
        """Run jobs until stopped: SIGTERM or SIGINT (with ``install_signal_handlers``; its
        running jobs get :data:`SHUTDOWN_GRACE_SECONDS` to end, a second signal stops at once), or
        this coroutine cancelled.

        A Procrastinate worker stops when it loses the database (its listener, its heartbeat or a
        query fails), and a job that met a database failure stops it too: it is then started
        again :data:`WORKER_RESTART_SECONDS` later, as a new worker, until the database answers
        (its runs cut short are queued again as a stalled worker's). The process lives on."""
        if not install_signal_handlers:
            await self._supervise(concurrency)
            return
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        signalled = 0

        def stop() -> None:
            nonlocal signalled
            logger.info("stopping the worker (a second signal stops it at once)")
            signalled += 1
            task.cancel()

        signals = (signal.SIGTERM, signal.SIGINT)
        for number in signals:
            loop.add_signal_handler(number, stop)
        try:
            await self._supervise(concurrency)
        except asyncio.CancelledError:
            if not signalled:
                raise
        finally:
            for number in signals:
                loop.remove_signal_handler(number)
        for _ in range(signalled):  # the cancellations were ours: the stop they asked is done
            task.uncancel()

    async def _supervise(self, concurrency: int | None) -> None:
        """Procrastinate workers, one after the other, until this coroutine is cancelled."""
        while True:
            try:
                await self._run_procrastinate_worker(concurrency)
                reason = "it lost the database"
            except Exception as error:
                # A worker stopping with the database down fails to unregister itself: that error
                # replaces the cancellation, which must still end this task.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    logger.warning("the worker stopped with %s: %s", type(error).__name__, error)
                    return
                reason = f"{type(error).__name__}: {error}".strip()
            logger.warning(
                "the worker stopped (%s); starting it again in %.0f s",
                reason,
                WORKER_RESTART_SECONDS,
            )
            await asyncio.sleep(WORKER_RESTART_SECONDS)

    async def _run_procrastinate_worker(self, concurrency: int | None) -> None:
        """One Procrastinate worker on SynthStack's queue, beating every third of
        ``SYNTHSTACK_JOB_STALLED_SECONDS``, on a pool of its own (closed however it ends, so the
        next one connects afresh)."""
        stalled = self._settings.job_stalled_seconds
        try:
            await self.app.open_async()
            await self.app.run_worker_async(
                queues=[QUEUE],
                concurrency=concurrency or self._settings.worker_concurrency,
                delete_jobs="always",
                update_heartbeat_interval=stalled / 3,
                stalled_worker_timeout=stalled,
                shutdown_graceful_timeout=SHUTDOWN_GRACE_SECONDS,
                install_signal_handlers=False,
                worker_middleware=[_restart_on_database_loss],
            )
        finally:
            with contextlib.suppress(Exception):
                await self.app.close_async()

    async def astart(self) -> None:
        """Start the embedded worker when ``SYNTHSTACK_WORKER`` is ``embedded``."""
        if self._settings.worker_mode == "embedded" and self._embedded is None:
            self._embedded = asyncio.create_task(
                self.run_worker(install_signal_handlers=False), name="synthstack embedded worker"
            )

    async def astop(self) -> None:
        """Stop the embedded worker: its running jobs get :data:`SHUTDOWN_GRACE_SECONDS` to end,
        then are queued again; a worker still stopping :data:`STOP_MARGIN_SECONDS` later (the
        database is down: it waits for a connection to unregister itself) is cancelled again, and
        other workers will see it stalled."""
        task, self._embedded = self._embedded, None
        if task is None or task.done():
            return
        task.cancel()
        _, pending = await asyncio.wait(
            {task}, timeout=SHUTDOWN_GRACE_SECONDS + STOP_MARGIN_SECONDS
        )
        if pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it was raised from or while handling, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _database_failed(error: BaseException) -> bool:
    """Whether the database's failure is behind ``error`` (rather than a provider's)."""
    return any(isinstance(link, SQLAlchemyError) for link in _chain(error))


def provider_wait(error: BaseException) -> float | None:
    """How long the provider whose answer ``error`` was raised for (or raised from) asked to be
    left alone: its ``Retry-After`` (seconds, or an HTTP date; OpenAI's ``retry-after-ms`` first),
    at most :data:`RETRY_AFTER_MAX_SECONDS`; ``None`` when it did not say.

    The SDKs' errors (``openai``, ``anthropic``) carry the provider's HTTP response, and the
    providers raise SynthStack's error *from* them, so the header is read where it arrived rather
    than from the 429's own ``Retry-After`` (which says 1 s when the provider said nothing)."""
    for link in _chain(error):
        response = getattr(link, "response", None)
        if isinstance(response, httpx.Response):
            seconds = _retry_after(response.headers)
            if seconds is not None:
                return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)
    return None


def _retry_after(headers: httpx.Headers) -> float | None:
    """``retry-after-ms``, else ``Retry-After`` (RFC 9110: seconds, or an HTTP date), in seconds."""
    with contextlib.suppress(ValueError):
        milliseconds = headers.get("retry-after-ms")
        if milliseconds:
            return float(milliseconds) / 1000
    value = headers.get("retry-after")
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return (when - datetime.datetime.now(datetime.UTC)).total_seconds()


def _retry_strategy(max_attempts: int) -> procrastinate.BaseRetryStrategy:
    """Procrastinate's retry strategy for a job's run: a :class:`_RunAgain` runs again after its
    ``wait`` (a provider's ``Retry-After`` or the backoff; :data:`RUN_AGAIN_SECONDS` after the
    database failed the run), up to ``max_attempts`` + :data:`DATABASE_RETRIES` runs in all: the
    provider's failures are counted by the job itself (``jobs.provider_failures``), which fails
    once they reach ``max_attempts``. Anything else is not retried (the job has stored its end)."""
    from procrastinate import BaseRetryStrategy, RetryDecision

    most = max_attempts + DATABASE_RETRIES

    class JobRetries(BaseRetryStrategy):
        def get_retry_decision(
            self, *, exception: BaseException, job: QueuedJob
        ) -> RetryDecision | None:
            # job.attempts: the runs before this one.
            if not isinstance(exception, _RunAgain) or job.attempts + 1 >= most:
                return None
            return RetryDecision(retry_in={"seconds": math.ceil(exception.wait)})

    return JobRetries()


async def _restart_on_database_loss(
    call_next: Callable[[], Awaitable[Any]], context: JobContext, worker: Any
) -> Any:
    """Procrastinate worker middleware: a job whose run the database failed stops its worker
    (gracefully: the other running jobs get :data:`SHUTDOWN_GRACE_SECONDS`), which
    :meth:`JobService.run_worker` starts again. Procrastinate may not have been able to record
    the run's end; a new worker sees the job stalled and queues it again, where the same worker
    would have left it ``doing`` for ever."""
    try:
        return await call_next()
    except _DatabaseLost:
        worker.stop()
        raise
