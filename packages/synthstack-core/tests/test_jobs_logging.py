"""Procrastinate's routine lines (tasks registered, periodic tasks deferred, the housekeeping
tasks' runs) are DEBUG; the lines of the jobs it runs, and its warnings, stay."""

from __future__ import annotations

import logging

import pytest

from synthstack_core.features.jobs.service import RUN_TASK, quiet_procrastinate


def _log(name: str, level: int, message: str, task_name: str | None = None) -> None:
    extra = {"job": {"task_name": task_name}} if task_name is not None else {}
    logging.getLogger(name).log(level, message, extra=extra)


def test_only_the_routine_lines_go_to_debug(caplog: pytest.LogCaptureFixture) -> None:
    quiet_procrastinate()
    quiet_procrastinate()  # idempotent: one filter per logger
    assert len(logging.getLogger("procrastinate.worker").filters) == 1
    caplog.set_level(logging.INFO)
    _log("procrastinate.blueprints", logging.INFO, "Adding tasks from blueprint")
    _log("procrastinate.periodic", logging.INFO, "Registering task synthstack.recover_stalled_jobs")
    _log(
        "procrastinate.worker.worker",
        logging.INFO,
        "Starting job",
        "synthstack.purge_finished_jobs",
    )
    _log("procrastinate.worker", logging.INFO, "Job ended", "synthstack.purge_finished_jobs")
    _log("procrastinate.worker.worker", logging.INFO, "Starting job run", RUN_TASK)
    _log("procrastinate.worker", logging.INFO, "Starting worker on synthstack")
    _log("procrastinate.periodic", logging.WARNING, "Periodic task late")
    _log("procrastinate.worker", logging.ERROR, "Job failed", "synthstack.recover_stalled_jobs")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "Starting job run"),
        ("INFO", "Starting worker on synthstack"),
        ("WARNING", "Periodic task late"),
        ("ERROR", "Job failed"),
    ]
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    _log("procrastinate.worker", logging.INFO, "Starting job", "synthstack.recover_stalled_jobs")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("DEBUG", "Starting job")]
