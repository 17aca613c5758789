"""Jobs run to their end alike on both backends: a real ``synthstack worker`` process on the parity
database runs the jobs each backend submits, and their event streams follow them.

The rest of the parity suite runs no worker (its jobs stay queued, see ``test_jobs_parity.py``);
this module starts one for its own tests and stops it afterwards. A transcription job ends with
the synchronous call's body, on either backend.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.parity.conftest import AUTH, KEY_B
from tests.parity.test_generation import events_of

ROOT = Path(__file__).parents[2]
ASYNC = {**AUTH, "Prefer": "respond-async"}
URL = "/api/v1/transcription/transcribe"
SPEECH = (ROOT / "packages/synthstack-core/tests/fixtures/audio/speech.ogg").read_bytes()
BACKENDS = ("fastapi", "django")


@pytest.fixture(scope="module")
def worker(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A ``synthstack worker`` process on the parity database, in the parity environment; its
    output's file."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "synthstack_core.cli", "worker", "--concurrency", "1"],
            env={**os.environ, **service_env, "SYNTHSTACK_WORKER": "none"},
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    yield log
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _transcribe(client: httpx.Client, headers: dict[str, str], **fields: str) -> httpx.Response:
    return client.post(
        URL,
        headers=headers,
        files={"file": ("speech.ogg", SPEECH, "audio/ogg")},
        data={"temperature": "0", **fields},
    )


def _ended(client: httpx.Client, job_id: str, log: Path, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}", headers=AUTH).json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return job
        assert time.monotonic() < deadline, (job, log.read_text())
        time.sleep(0.2)


@pytest.mark.parametrize("response_format", ["verbose_json", "srt"])
def test_a_transcription_job_ends_with_the_synchronous_body(
    clients: dict[str, httpx.Client], worker: Path, upload_dir: Path, response_format: str
) -> None:
    results = []
    for backend in BACKENDS:
        client = clients[backend]
        accepted = _transcribe(client, ASYNC, response_format=response_format)
        assert accepted.status_code == 202, (backend, accepted.text)
        job = accepted.json()
        assert accepted.headers["location"] == f"/api/v1/jobs/{job['id']}"
        assert accepted.headers["preference-applied"] == "respond-async"
        assert job["kind"] == "transcription-transcribe" and job["status"] == "queued"
        # The clip's length is known before it runs (speech.ogg: 3.45 s).
        assert job["progress"] == {"done": 0, "total": 4, "unit": "seconds"}
        ended = _ended(client, job["id"], worker)
        assert ended["status"] == "succeeded", (ended, worker.read_text())
        assert ended["progress"] == {"done": 4, "total": 4, "unit": "seconds"}
        synchronous = _transcribe(client, AUTH, response_format=response_format)
        assert synchronous.status_code == 200, synchronous.text
        if response_format == "srt":  # a text answer: the job's result is that text
            assert ended["result"] == synchronous.text and "-->" in ended["result"]
        else:
            assert ended["result"] == synchronous.json() and ended["result"]["segments"]
        results.append(ended["result"])
    assert results[0] == results[1]


def test_refusals_come_before_the_job(clients: dict[str, httpx.Client], upload_dir: Path) -> None:
    """What the synchronous call refuses without the model is refused, alike, with no job."""
    answers = []
    for backend in BACKENDS:
        client = clients[backend]
        before = client.get("/api/v1/jobs?kind=transcription-transcribe&limit=100", headers=AUTH)
        refused = [
            client.post(
                URL,
                headers=ASYNC,
                files={"file": ("notes.txt", b"not audio at all", "text/plain")},
            ),
            _transcribe(client, ASYNC, language="fr"),
            _transcribe(client, ASYNC, model="no-such-model"),
            _transcribe(client, {"Prefer": "respond-async"}),
        ]
        after = client.get("/api/v1/jobs?kind=transcription-transcribe&limit=100", headers=AUTH)
        assert before.json()["jobs"] == after.json()["jobs"]
        answers.append(
            [
                (r.status_code, {k: v for k, v in r.json().items() if k != "request_id"})
                for r in refused
            ]
        )
    assert answers[0] == answers[1]
    assert [status for status, _ in answers[0]] == [415, 422, 422, 401]
    assert [body["code"] for _, body in answers[0]] == [
        "not_audio",
        "language_not_supported",
        "model_not_available",
        "missing_api_key",
    ]


def test_a_job_s_events_end_with_the_terminal_job(
    clients: dict[str, httpx.Client], worker: Path, upload_dir: Path
) -> None:
    """Followed from the moment it is accepted: ``job`` events, progress never going back, the
    last one the ended job exactly as ``GET /jobs/{id}`` answers it; once it has ended, one event.
    A job of another tenant, or none, is a 404 before any event, alike on both backends."""
    ended_streams = []
    refusals = []
    for backend in BACKENDS:
        client = clients[backend]
        job_id = _transcribe(client, ASYNC, response_format="json").json()["id"]
        followed = client.get(f"/api/v1/jobs/{job_id}/events", headers=AUTH)
        assert followed.status_code == 200, followed.text
        assert followed.headers["cache-control"] == "no-store"
        events = events_of(followed)
        assert {name for name, _ in events} == {"job"}
        jobs = [data for _, data in events]
        assert all(job["id"] == job_id for job in jobs)
        done = [job["progress"]["done"] for job in jobs]
        assert done == sorted(done), jobs
        assert all(job["status"] in RUNNING for job in jobs[:-1]), jobs
        last = client.get(f"/api/v1/jobs/{job_id}", headers=AUTH).json()
        assert jobs[-1] == last and last["status"] == "succeeded", (jobs, worker.read_text())
        # Consecutive events differ (a new event only when something changed).
        changes = [(j["status"], j["progress"]["done"], j["progress"]["total"]) for j in jobs]
        assert all(a != b for a, b in itertools.pairwise(changes))
        again = client.get(f"/api/v1/jobs/{job_id}/events", headers=AUTH)
        assert events_of(again) == [("job", last)]
        ended_streams.append(_masked(again.text, job_id))
        refusals.append(
            [
                (answer.status_code, answer.headers["content-type"], _masked(answer.text, job_id))
                for answer in (
                    client.get(f"/api/v1/jobs/{job_id}/events", headers={"X-API-Key": KEY_B}),
                    client.get(f"/api/v1/jobs/{uuid.UUID(int=9)}/events", headers=AUTH),
                    client.get(f"/api/v1/jobs/{job_id}/events"),
                )
            ]
        )
    assert ended_streams[0] == ended_streams[1]
    assert refusals[0] == refusals[1]
    assert [(status, kind) for status, kind, _ in refusals[0]] == [
        (404, "application/problem+json"),
        (404, "application/problem+json"),
        (401, "application/problem+json"),
    ]


RUNNING = {"queued", "running"}


def _masked(text: str, job_id: str) -> Any:
    """A body with the job's id, times and request ids masked."""
    text = text.replace(job_id, "<job>")
    text = re.sub(r'"(created_at|started_at|finished_at)":"[^"]+"', r'"\1":"<time>"', text)
    return re.sub(r'"request_id":"[^"]+"', '"request_id":"<id>"', text)
