"""Every Alembic migration downgrades and upgrades again on real PostgreSQL (with pgvector)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from synthstack_core.stores.database import _MIGRATIONS, migrate, sqlalchemy_url


def _tables(url: str) -> set[str]:
    engine = create_engine(sqlalchemy_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_each_migration_goes_down_and_up_again(empty_database_url: str) -> None:
    url = empty_database_url
    at_head = _tables(url)
    assert {
        "tenants",
        "api_keys",
        "rag_documents",
        "rag_vector_deletions",
        "rate_limit_overrides",
    } <= at_head
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    revisions = [r.revision for r in ScriptDirectory.from_config(config).walk_revisions()]
    assert revisions[0] == "0009" and revisions[-1] == "0001"  # newest first
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            for _ in revisions:  # one step at a time, down to nothing
                command.downgrade(config, "-1")
                connection.commit()
            assert not {"tenants", "rag_documents", "rate_limit_overrides"} & set(
                inspect(connection).get_table_names()
            )
            for _ in revisions:  # and back up, one step at a time
                command.upgrade(config, "+1")
                connection.commit()
            version = connection.execute(text("SELECT version_num FROM synthstack_alembic_version"))
            assert version.scalar_one() == revisions[0]
    finally:
        engine.dispose()
    assert _tables(url) == at_head
    migrate(url)  # at head already: nothing to do, no error
    assert _tables(url) == at_head
