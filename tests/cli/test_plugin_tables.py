"""A plugin's own tables: created by ``synthstack migrate`` and by Django's ``manage.py migrate``.

A test-only plugin with one table (an Alembic branch of its own) is installed the way an installer
leaves a distribution (its package and ``.dist-info`` with a ``synthstack.modules`` entry point) in
a folder on ``PYTHONPATH``; each command runs in a process of its own on an empty database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from synthstack_core.stores.database import _MIGRATIONS, sqlalchemy_url

#: The core's latest revision (the core's schema alone is at it).
CORE_HEAD = ScriptDirectory(str(_MIGRATIONS)).get_current_head()

PLUGIN = """
from pathlib import Path

from pydantic import BaseModel

from synthstack_core import Module, operation


class Note(BaseModel):
    note: str


class NoteService:
    @operation("tiny-note")
    def note(self, body: Note) -> Note:
        return body


MODULE = Module(
    "tiny",
    NoteService,
    lambda stack: NoteService(),
    contract={"paths": {"/api/v1/tiny": {"post": {
        "operationId": "tiny-note", "responses": {"200": {"description": "The note"}}
    }}}},
    migrations=Path(__file__).with_name("migrations"),
)
"""

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "tiny_0001"
down_revision = None
branch_labels = ("tiny",)
depends_on = "0001"


def upgrade() -> None:
    op.create_table("tiny_notes", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("tiny_notes")
"""


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    """A folder holding the installed test plugin ``synthstack_tiny``."""
    package = tmp_path / "synthstack_tiny"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN)
    (package / "migrations" / "tiny_0001_notes.py").write_text(REVISION)
    info = tmp_path / "synthstack_tiny-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: synthstack-tiny\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[synthstack.modules]\ntiny = synthstack_tiny:MODULE\n")
    return tmp_path


@pytest.fixture
def empty_database(postgres_server_url: str) -> Iterator[str]:
    """A new database with no table at all."""
    name = f"synthstack_plugin_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = postgres_server_url.partition("?")
    yield base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(command: list[str], url: str, plugin_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(plugin_path), os.environ.get("PYTHONPATH")])
        ),
        "DATABASE_URL": url,
        "DJANGO_SECRET_KEY": "plugin-tables-test-secret-key-not-for-production",
        "SYNTHSTACK_PLUGINS": "tiny",
    }
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def _state(url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as connection:
            versions = connection.execute(
                text("SELECT version_num FROM synthstack_alembic_version")
            )
            return set(inspect(connection).get_table_names()), set(versions.scalars())
    finally:
        engine.dispose()


def test_synthstack_migrate_creates_them(empty_database: str, plugin_path: Path) -> None:
    _run([sys.executable, "-m", "synthstack_core.cli", "migrate"], empty_database, plugin_path)
    tables, versions = _state(empty_database)
    assert {"tenants", "rag_documents", "tiny_notes", "django_migrations"} <= tables
    assert versions == {CORE_HEAD, "tiny_0001"}


def test_djangos_migrate_creates_them(empty_database: str, plugin_path: Path) -> None:
    command = [sys.executable, "-m", "synthstack_django", "migrate", "--noinput", "-v", "0"]
    _run(command, empty_database, plugin_path)
    tables, versions = _state(empty_database)
    assert {"tenants", "rag_documents", "tiny_notes", "django_migrations"} <= tables
    assert versions == {CORE_HEAD, "tiny_0001"}
