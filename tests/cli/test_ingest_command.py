"""``synthstack ingest``: real processes on a real PostgreSQL, in-process (the stack and its
embedded worker inside the command) and against a running ``synthstack serve`` (``--url``).

A folder of the five types (the PDF and DOCX built by ``tests/documents.py``), a file of another
type (skipped) and a ``.pdf`` that is not one (failed, with the server's reason): ingested, then
unchanged on a second run; interrupted with SIGINT mid-run, no document is half-stored and a run
again completes the rest.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from synthstack_core.ingest import document_id_for
from tests.documents import make_docx, make_pdf, w_p

ROOT = Path(__file__).parents[2]
KEY = "ingest-test-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}
#: Variables of the outer environment that would change what the processes here do.
_UNSET = {
    "REDIS_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "EMBEDDING_MODEL",
    "SYNTHSTACK_API_KEY",
}
#: What every run over the fixture folder finds: five documents, a CSV skipped, a broken PDF.
DOCUMENTS = ["guide.md", "notes/cats.txt", "notes/deep/report.pdf", "page.html", "memo.docx"]
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


def _environment(database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _UNSET}
    env.update(
        {
            "DATABASE_URL": database_url,
            "SYNTHSTACK_ENV": "development",
            "SYNTHSTACK_API_KEYS": f"ingest-tenant:{KEY}",
            "SYNTHSTACK_KEY_CACHE_SECONDS": "0",
            "SYNTHSTACK_ANALYSIS_LLM": "off",
            "HF_HUB_OFFLINE": "1",
        }
    )
    return env


def _ingest(
    database_url: str, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthstack_core.cli", "ingest", *args, "--api-key", KEY],
        env=_environment(database_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _ingest_on_a_terminal(database_url: str, *args: str) -> str:
    """Run the command with its stdout on a pseudo-terminal of 120 columns; what it wrote there."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "synthstack_core.cli", "ingest", *args, "--api-key", KEY],
        env=_environment(database_url),
        stdout=terminal,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    os.close(terminal)
    output = bytearray()
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process has ended
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=300) == 1
    return output.decode("utf-8", errors="replace")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "notes" / "deep").mkdir(parents=True)
    (root / "guide.md").write_text(
        "# Feeding guide\n\nKittens eat four small meals a day.\n\n## Water\n\nAlways fresh.\n"
    )
    (root / "notes" / "cats.txt").write_text(
        "Cats purr when they are content.\n\nThey sleep sixteen hours a day.\n"
    )
    (root / "notes" / "deep" / "report.pdf").write_bytes(
        make_pdf([["Quarterly report on shelter adoptions."], ["Dogs were adopted fastest."]])
    )
    (root / "page.html").write_text(
        "<html><head><title>Shelter hours</title></head>"
        "<body><p>Open every day from nine to five.</p></body></html>"
    )
    (root / "memo.docx").write_bytes(make_docx(w_p("Volunteers meet on Saturdays at ten.")))
    (root / "animals.csv").write_text("name,kind\nTom,cat\n")
    (root / "broken.pdf").write_text("this is not a PDF at all\n")
    return root


def _stored(database_url: str, collection: str) -> dict[str, tuple[str, int, int, str]]:
    """Each stored document of ``collection``: source, chunk count recorded, chunk rows, hash."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            """
            SELECT d.external_id, d.source, d.chunk_count,
                   (SELECT count(*) FROM rag_chunks c WHERE c.document_id = d.id),
                   d.metadata->>'file_sha256'
            FROM rag_documents d JOIN rag_collections k ON k.id = d.collection_id
            WHERE k.name = %s
            """,
            (collection,),
        ).fetchall()
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


def _check_first_run(
    result: subprocess.CompletedProcess[str], database_url: str, name: str
) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-2] == "ingested 5, unchanged 0, skipped 1, failed 1", result.stdout
    assert lines[-1].startswith("failed broken.pdf: Invalid Request (corrupt_document): ")
    assert "not a valid PDF" in lines[-1]
    # No bar (stdout is no terminal): a line per file.
    for relative in DOCUMENTS:
        assert any(line.startswith(f"ingested {relative} (") for line in lines), relative
    stored = _stored(database_url, name)
    assert set(stored) == {document_id_for(relative) for relative in DOCUMENTS}
    for relative in DOCUMENTS:
        source, chunk_count, rows, digest = stored[document_id_for(relative)]
        assert source == relative
        assert chunk_count == rows >= 1
        assert digest is not None and len(digest) == 64


def _check_second_run(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-2] == "ingested 0, unchanged 5, skipped 1, failed 1", result.stdout
    for relative in DOCUMENTS:
        assert any(line.startswith(f"unchanged {relative} (") for line in lines), relative


def test_document_ids_are_stable_valid_and_distinct() -> None:
    paths = ["a b.txt", "a_b.txt", "notes/a.txt", "notes.a.txt", ".hidden/x.md", "é/ü.txt"]
    ids = [document_id_for(path) for path in paths]
    assert len(set(ids)) == len(paths)
    assert all(ID_PATTERN.fullmatch(value) and len(value) <= 256 for value in ids), ids
    assert ids == [document_id_for(path) for path in paths]
    assert document_id_for("notes/a.txt").startswith("notes.a.txt-")
    long = document_id_for("x" * 1000 + ".txt")
    assert ID_PATTERN.fullmatch(long) and len(long) <= 256


def test_ingest_in_process(module_database_url: str, folder: Path) -> None:
    first = _ingest(module_database_url, str(folder), "--collection", "local")
    _check_first_run(first, module_database_url, "local")
    second = _ingest(module_database_url, str(folder), "--collection", "local")
    _check_second_run(second)
    # On a terminal: a progress bar (documents/s), the failure above it, the summary after.
    on_terminal = _ingest_on_a_terminal(module_database_url, str(folder), "--collection", "local")
    assert "6/6 [" in on_terminal and "doc/s]" in on_terminal, on_terminal
    assert "failed broken.pdf: Invalid Request (corrupt_document)" in on_terminal
    assert "ingested 0, unchanged 5, skipped 1, failed 1" in on_terminal
    assert "unchanged guide.md" not in on_terminal  # no line per file
    # Without the broken file, nothing fails: exit code 0.
    (folder / "broken.pdf").unlink()
    third = _ingest(module_database_url, str(folder), "--collection", "local")
    assert third.returncode == 0, third.stdout + third.stderr
    assert third.stdout.splitlines()[-1] == "ingested 0, unchanged 5, skipped 1, failed 0"


def test_a_changed_file_is_ingested_again(module_database_url: str, folder: Path) -> None:
    (folder / "broken.pdf").unlink()
    first = _ingest(module_database_url, str(folder), "--collection", "changes")
    assert first.returncode == 0, first.stdout + first.stderr
    before = _stored(module_database_url, "changes")
    (folder / "notes" / "cats.txt").write_text("Cats purr.\n\nDogs bark.\n\nBirds sing.\n")
    second = _ingest(module_database_url, str(folder), "--collection", "changes")
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.splitlines()[-1] == "ingested 1, unchanged 4, skipped 1, failed 0"
    assert "ingested notes/cats.txt (" in second.stdout
    after = _stored(module_database_url, "changes")
    cats = document_id_for("notes/cats.txt")
    assert after[cats][3] != before[cats][3]
    assert {k: v for k, v in after.items() if k != cats} == {
        k: v for k, v in before.items() if k != cats
    }


def test_bad_arguments(module_database_url: str, folder: Path) -> None:
    missing = _ingest(module_database_url, str(folder / "nowhere"), "--collection", "x")
    assert missing.returncode == 2
    assert "error: no such file or folder" in missing.stderr
    refused = _ingest(module_database_url, str(folder), "--collection", "bad name!")
    assert refused.returncode == 2
    assert "error: " in refused.stderr and "collection" in refused.stderr
    assert _stored(module_database_url, "bad name!") == {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``synthstack serve`` (FastAPI, its embedded worker running jobs) on the module database."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "synthstack_core.cli", "serve", "--port", str(port)],
            env=_environment(module_database_url),
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.25)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_ingest_against_a_server(module_database_url: str, server: str, folder: Path) -> None:
    first = _ingest(module_database_url, str(folder), "--collection", "remote", "--url", server)
    _check_first_run(first, module_database_url, "remote")
    document = httpx.get(
        f"{server}/api/v1/rag/documents/{document_id_for('notes/deep/report.pdf')}",
        params={"collection": "remote"},
        headers=AUTH,
    ).json()
    assert document["source"] == "notes/deep/report.pdf"
    assert document["source_type"] == "pdf"
    assert set(document["metadata"]) == {"file_sha256"}
    second = _ingest(module_database_url, str(folder), "--collection", "remote", "--url", server)
    _check_second_run(second)
    # A wrong key is refused before any file is read.
    env = _environment(module_database_url)
    refused = subprocess.run(
        [sys.executable, "-m", "synthstack_core.cli", "ingest", str(folder),
         "--collection", "remote", "--url", server],
        env={**env, "SYNTHSTACK_API_KEY": "not-the-key-at-all"},
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: Unauthenticated (invalid_api_key)"), refused.stderr


def _long_text(n: int) -> str:
    return "\n\n".join(
        f"Section {n}.{i}: the shelter's cat number {i} purrs near window {i * 7}, while dog "
        f"{n} barks at visitor {i * 3} and the volunteers count {i * 11} bowls of food."
        for i in range(120)
    )


def test_sigint_cancels_mid_run_and_a_run_again_completes(
    module_database_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "many"
    root.mkdir()
    count = 8
    for n in range(count):
        (root / f"part-{n:02d}.txt").write_text(_long_text(n))
    env = _environment(module_database_url)
    command = [sys.executable, "-m", "synthstack_core.cli", "ingest", str(root),
               "--collection", "interrupted", "--concurrency", "2", "--api-key", KEY]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("ingested part-"):
            break  # one document is in, others are in flight
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    lines += out.splitlines()
    assert process.returncode == 130, "\n".join(lines) + err
    summary = next(line for line in lines if line.startswith("ingested ") and "," in line)
    matched = re.fullmatch(
        r"ingested (\d+), unchanged 0, skipped 0, failed 0; "
        r"interrupted: (\d+) cancelled, (\d+) not started",
        summary,
    )
    assert matched is not None, summary
    ingested, cancelled, not_started = map(int, matched.groups())
    assert ingested >= 1 and cancelled + not_started >= 1
    assert ingested + cancelled + not_started == count
    # Every document is whole (its chunks all there) or absent; none beyond those ingested but
    # a job that ended storing as it was cancelled (see docs/architecture.md, "Jobs").
    stored = _stored(module_database_url, "interrupted")
    assert ingested <= len(stored) < count
    for source, chunk_count, rows, _ in stored.values():
        assert chunk_count == rows > 1, source
    # No job is left to run: none queued or running.
    with psycopg.connect(module_database_url) as connection:
        open_jobs = connection.execute(
            "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')"
        ).fetchone()
    assert open_jobs == (0,)
    # A run again skips what is stored and completes the rest.
    again = _ingest(module_database_url, str(root), "--collection", "interrupted")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == (
        f"ingested {count - len(stored)}, unchanged {len(stored)}, skipped 0, failed 0"
    )
    final = _stored(module_database_url, "interrupted")
    assert set(final) == {document_id_for(f"part-{n:02d}.txt") for n in range(count)}
    assert all(chunk_count == rows > 1 for _, chunk_count, rows, _ in final.values())


def test_a_file_given_directly_and_the_same_path_under_another_root(
    module_database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "x.txt").write_text("Owls hunt at night.\n")
    (tmp_path / "two" / "x.txt").write_text("Larks sing at dawn.\n")
    result = _ingest(
        module_database_url, str(tmp_path / "one" / "x.txt"), str(tmp_path / "two"),
        "--collection", "twice",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-2] == "ingested 1, unchanged 0, skipped 0, failed 1"
    assert (
        lines[-1]
        == f"failed x.txt: same relative path as {tmp_path / 'one' / 'x.txt'}, one document"
    )
    assert set(_stored(module_database_url, "twice")) == {document_id_for("x.txt")}
