"""Every Alembic migration downgrades and upgrades again on real PostgreSQL (with pgvector)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, text

from synthstack_core.stores.database import _MIGRATIONS, migrate, sqlalchemy_url


def _tables(url: str) -> set[str]:
    engine = create_engine(sqlalchemy_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _procrastinate_leftovers(connection: Connection) -> list[int]:
    """How many of Procrastinate's functions, then types, the database holds."""
    counts = connection.execute(
        text(
            "SELECT count(*) FROM pg_proc WHERE proname LIKE 'procrastinate%' "
            "UNION ALL SELECT count(*) FROM pg_type WHERE typname LIKE 'procrastinate%'"
        )
    ).scalars()
    return list(counts)


def _indexes(connection: Connection, table: str) -> set[str]:
    return {index["name"] or "" for index in inspect(connection).get_indexes(table)}


def _columns(connection: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns(table)}


def test_each_migration_goes_down_and_up_again(empty_database_url: str) -> None:
    url = empty_database_url
    at_head = _tables(url)
    assert {
        "tenants",
        "api_keys",
        "rag_documents",
        "rag_vector_deletions",
        "rate_limit_overrides",
        "usage_requests",
        "usage_quantities",
        "rag_collection_stats",
        "rag_term_stats",
    } <= at_head
    assert {"jobs", "job_payloads", "procrastinate_jobs", "procrastinate_workers"} <= at_head
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    revisions = [r.revision for r in ScriptDirectory.from_config(config).walk_revisions()]
    assert revisions[:8] == ["0013", "0012", "0011", "0010", "0009", "0008", "0007", "0006"]
    assert revisions[-1] == "0001"
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            assert "stored_at" in _columns(connection, "jobs")
            command.downgrade(config, "-1")  # 0013 -> 0012: the jobs' stored marks go
            connection.commit()
            assert "stored_at" not in _columns(connection, "jobs")
            assert "provider_failures" in _columns(connection, "jobs")
            command.downgrade(config, "-1")  # 0012 -> 0011: the providers' failures go
            connection.commit()
            assert "provider_failures" not in _columns(connection, "jobs")
            assert "request_id" in _columns(connection, "jobs")
            command.downgrade(config, "-1")  # 0011 -> 0010: the jobs' request ids go
            connection.commit()
            assert "request_id" not in _columns(connection, "jobs")
            assert "jobs_unfinished" in _indexes(connection, "jobs")
            command.downgrade(config, "-1")  # 0010 -> 0009: the index of unfinished jobs goes
            connection.commit()
            assert "jobs_unfinished" not in _indexes(connection, "jobs")
            assert "rag_collection_stats" in inspect(connection).get_table_names()
            command.downgrade(config, "-1")  # 0009 -> 0008: the statistics go, the usage stays
            connection.commit()
            tables = set(inspect(connection).get_table_names())
            assert not {"rag_collection_stats", "rag_term_stats"} & tables
            assert {"usage_requests", "usage_quantities"} <= tables
            command.downgrade(config, "-1")  # 0008 -> 0007: the usage tables go, the jobs stay
            connection.commit()
            tables = set(inspect(connection).get_table_names())
            assert not {"usage_requests", "usage_quantities"} & tables
            assert {"jobs", "job_payloads", "procrastinate_jobs"} <= tables
            command.downgrade(config, "-1")  # 0007 -> 0006: the jobs go, the rate limits stay
            connection.commit()
            tables = set(inspect(connection).get_table_names())
            assert "rate_limit_overrides" in tables
            assert not {"jobs", "job_payloads", "procrastinate_jobs"} & tables
            # Procrastinate's functions and types went with its tables.
            assert _procrastinate_leftovers(connection) == [0, 0]
            for _ in revisions[7:]:  # one step at a time, down to nothing
                command.downgrade(config, "-1")
                connection.commit()
            assert not {
                "tenants",
                "rag_documents",
                "rate_limit_overrides",
                "usage_requests",
            } & set(inspect(connection).get_table_names())
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
