"""Plugins: modules found through ``synthstack.modules`` entry points of installed distributions.

Each test installs small distributions of its own the way an installer leaves them (a package and
its ``.dist-info`` with ``entry_points.txt``, on ``sys.path``), so discovery runs through
``importlib.metadata`` as for a pip-installed plugin.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from synthstack_core import PluginError, Settings, SynthStack
from synthstack_core.modules import BUILTIN_MODULES, installed_modules, migrate, modules_for
from synthstack_core.operations import contract_for, operations_for
from synthstack_core.plugins import load_plugins
from synthstack_core.stores.database import _MIGRATIONS, sqlalchemy_url

#: The core's latest revision (the core's schema alone is at it).
CORE_HEAD = ScriptDirectory(str(_MIGRATIONS)).get_current_head()

#: A module serving one operation described by its own fragment; ``{name}`` is the package's.
PLUGIN = """
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from synthstack_core import Module, operation


class Echo(BaseModel):
    text: str


class EchoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="{prefix}")
    greeting: str = "hello"


class EchoService:
    def __init__(self, settings: EchoSettings) -> None:
        self.settings = settings

    @operation("{name}-echo")
    def echo(self, body: Echo) -> Echo:
        return Echo(text=f"{{self.settings.greeting}} {{body.text}}")


FRAGMENT = {{
    "paths": {{
        "{path}": {{
            "post": {{
                "operationId": "{name}-echo",
                "tags": ["{name}"],
                "summary": "Echo",
                "responses": {{"200": {{"description": "The text"}}}},
            }}
        }}
    }},
    "components": {{"schemas": {{"{schema}": {{"type": "object"}}}}}},
}}

MODULE = Module(
    "{name}",
    EchoService,
    lambda stack: EchoService(stack.module_settings(EchoSettings)),
    contract=FRAGMENT,
    settings=EchoSettings,
)
"""

Install = Callable[..., str]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """``install(source, attribute="MODULE", **fields)``: a distribution whose package holds
    ``source`` (formatted with ``fields``) and declares ``<package>:<attribute>`` as an entry
    point of the same name as the package; returns that name."""
    installed: list[str] = []

    def install_(source: str = PLUGIN, attribute: str = "MODULE", **fields: str) -> str:
        name = f"plugin_{uuid.uuid4().hex[:8]}"
        values = {
            "name": name,
            "path": f"/api/v1/{name}",
            "schema": f"{name}Echo",
            "prefix": f"{name.upper()}_",
            **fields,
        }
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text(textwrap.dedent(source).format(**values))
        info = tmp_path / f"{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(
            f"[synthstack.modules]\n{name} = {name}:{attribute}\n"
        )
        installed.append(name)
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    yield install_
    for name in installed:
        sys.modules.pop(name, None)


def test_a_plugin_is_served_after_the_builtin_modules(install: Install) -> None:
    first, second = sorted([install(), install()])
    modules = installed_modules(Settings(SYNTHSTACK_PLUGINS=f"{second},{first}"))
    # Ordered by entry-point name, whatever the order of the setting or of installation.
    assert [m.name for m in modules] == [*(m.name for m in BUILTIN_MODULES), first, second]
    ops = [op for op in operations_for(modules) if op.module in {first, second}]
    assert [(op.operation_id, op.path, op.tags) for op in ops] == [
        (f"{first}-echo", f"/api/v1/{first}", (first,)),
        (f"{second}-echo", f"/api/v1/{second}", (second,)),
    ]
    assert f"{first}Echo" in contract_for(modules)["components"]["schemas"]
    (plugin,) = load_plugins([first])
    assert (plugin.value, plugin.distribution) == (f"{first}:MODULE", f"{first} 0.1")


def test_every_installed_plugin_unless_told_otherwise(install: Install) -> None:
    name = install()
    # (``installed_modules(Settings())`` loads them once per process: another test may have.)
    assert name in {plugin.name for plugin in load_plugins(Settings().plugins)}
    assert name not in {m.name for m in installed_modules(Settings(SYNTHSTACK_PLUGINS=""))}
    assert installed_modules(Settings(SYNTHSTACK_PLUGINS="")) == BUILTIN_MODULES


def test_an_entry_point_may_be_a_callable_giving_modules(install: Install) -> None:
    name = install(PLUGIN + "\ndef modules():\n    return [MODULE]\n", attribute="modules")
    assert modules_for((name,))[-1].name == name


async def test_a_plugins_settings_reach_its_build(
    install: Install, monkeypatch: pytest.MonkeyPatch, empty_database_url: str
) -> None:
    name = install()
    monkeypatch.setenv(f"{name.upper()}_GREETING", "bonjour")
    settings = Settings(
        SYNTHSTACK_PLUGINS=name, DATABASE_URL=empty_database_url, SYNTHSTACK_LOCAL_LLM="false"
    )
    async with SynthStack(settings) as stack:
        (op,) = [op for op in stack.operations if op.module == name]
        service = stack.service(next(m.service for m in stack.modules if m.name == name))
        assert op.request_model is not None
        assert service.echo(op.request_model(text="monde")).text == "bonjour monde"


@pytest.mark.parametrize(
    ("source", "fields", "message"),
    [
        ("import not_a_module_anywhere\n", {}, "cannot be loaded: ModuleNotFoundError"),
        ("MODULE = 42\n", {}, "gives int, not a synthstack_core Module"),
        (PLUGIN, {"path": "/health"}, "redefines the path /health"),
        (PLUGIN, {"schema": "Problem"}, r"redefines components\.schemas\.Problem"),
        (PLUGIN.replace('"operationId": "{name}-echo"', '"operationId": "other"'), {},
         r"'.*-echo' \(.*\) is not in the contract"),
        (PLUGIN.replace('@operation("{name}-echo")', ""), {},
         "describes operations no handler serves"),
        (PLUGIN.replace('MODULE = Module(\n    "{name}"', 'MODULE = Module(\n    "rag"'), {},
         "a module named 'rag' exists"),
    ],
)  # fmt: skip
def test_a_broken_plugin_is_an_error_naming_it(
    install: Install, source: str, fields: dict[str, str], message: str
) -> None:
    name = install(source, **fields)
    with pytest.raises(PluginError, match=message) as raised:
        installed_modules(Settings(SYNTHSTACK_PLUGINS=name))
    assert f"plugin {name!r} = '{name}:MODULE' (distribution {name} 0.1)" in str(raised.value)
    # Creating a stack (what an adapter's app creation does) fails the same way.
    with pytest.raises(PluginError, match=message):
        SynthStack(Settings(SYNTHSTACK_PLUGINS=name))


def test_an_unknown_plugin_name_is_an_error(install: Install) -> None:
    install()
    with pytest.raises(PluginError, match=r"names 'nowhere', which no installed package"):
        installed_modules(Settings(SYNTHSTACK_PLUGINS="nowhere"))


# -- a module's own tables -------------------------------------------------------------------

REVISION = '''
"""The test plugin's one table."""

import sqlalchemy as sa
from alembic import op

revision = "tiny_0001"
down_revision = None
branch_labels = ("tiny",)
depends_on = "0001"


def upgrade() -> None:
    op.create_table(
        "tiny_notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("note", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tiny_notes")
'''

TABLE_PLUGIN = """
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
    contract={{"paths": {{"/api/v1/tiny": {{"post": {{
        "operationId": "tiny-note", "responses": {{"200": {{"description": "The note"}}}}
    }}}}}}}},
    migrations=Path(__file__).with_name("migrations"),
)
"""


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


def test_a_modules_tables_are_migrated_with_the_core(
    install: Install, tmp_path: Path, empty_database_url: str
) -> None:
    name = install(TABLE_PLUGIN)
    (tmp_path / name / "migrations").mkdir()
    (tmp_path / name / "migrations" / "tiny_0001_notes.py").write_text(REVISION)
    url = empty_database_url  # the core's schema only
    tables, versions = _state(url)
    assert "tiny_notes" not in tables and versions == {CORE_HEAD}
    modules = installed_modules(Settings(SYNTHSTACK_PLUGINS=name))
    migrate(url, CORE_HEAD, modules)  # a revision of the core's: no plugin's
    assert "tiny_notes" not in _state(url)[0]
    migrate(url, modules=modules)
    tables, versions = _state(url)
    assert "tiny_notes" in tables and versions == {CORE_HEAD, "tiny_0001"}
    migrate(url, modules=modules)  # at every head already: nothing to do
    assert _state(url)[1] == {CORE_HEAD, "tiny_0001"}
