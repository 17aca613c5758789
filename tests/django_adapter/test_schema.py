"""The Django models of ``synthstack_django`` are the core's tables, as Alembic creates them.

An empty database is migrated by Django's ``migrate`` alone (whose ``0003_core_schema`` runs the
core's Alembic migrations); then every model's table and columns (names, types, nullability) are
compared with what SQLAlchemy's inspector finds in PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.dialects import postgresql

from tests.django_support import configure_django


@pytest.fixture(scope="module")
def migrated_by_django(postgres_server_url: str) -> Iterator[str]:
    """A new, empty database, migrated by Django's ``migrate`` only."""
    name = f"synthstack_schema_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = postgres_server_url.partition("?")
    url = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("DATABASE_URL", "SYNTHSTACK_API_KEYS", "REDIS_URL"):
            patch.delenv(variable, raising=False)
        configure_django(url, {"SYNTHSTACK_ENV": "development"})
        yield url
    from django.db import connections

    connections.close_all()
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def test_django_migrate_brings_the_core_schema_to_alembic_head(migrated_by_django: str) -> None:
    from alembic.script import ScriptDirectory

    import synthstack_core.stores

    folder = Path(next(iter(synthstack_core.stores.__path__))) / "migrations"
    head = ScriptDirectory(str(folder)).get_current_head()
    engine = create_engine(_sqlalchemy_url(migrated_by_django))
    try:
        with engine.connect() as connection:
            version = connection.execute(
                text("SELECT version_num FROM synthstack_alembic_version")
            ).scalar_one()
    finally:
        engine.dispose()
    # A new Alembic revision needs a new migration of synthstack_django running it.
    assert version == head


# rag_chunks.embedding (pgvector), which the Django models leave out.
@pytest.mark.filterwarnings("ignore:Did not recognize type 'vector':sqlalchemy.exc.SAWarning")
def test_models_match_the_alembic_tables(migrated_by_django: str) -> None:
    from django.apps import apps
    from django.db import connection

    engine = create_engine(_sqlalchemy_url(migrated_by_django))
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    try:
        inspector = inspect(engine)
        tables = set(inspector.get_table_names())
        models = list(apps.get_app_config("synthstack_django").get_models())
        assert models
        for model in models:
            table = model._meta.db_table
            assert table in tables, table
            columns = {column["name"]: column for column in inspector.get_columns(table)}
            primary_key = inspector.get_pk_constraint(table)["constrained_columns"]
            for field in model._meta.concrete_fields:
                where = f"{table}.{field.column}"
                assert field.column in columns, where
                column = columns[field.column]
                django_type = field.db_type(connection)
                assert django_type is not None, where
                database_type = column["type"].compile(dialect=dialect)
                assert django_type.lower() == database_type.lower(), where
                assert field.null == column["nullable"], where
                if field.primary_key:
                    assert primary_key == [field.column], where
    finally:
        engine.dispose()
