"""Alembic environment: runs on the connection ``synthstack_core.stores.database.migrate`` hands in."""

from __future__ import annotations

from alembic import context

from synthstack_core.stores.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table="synthstack_alembic_version",
)
with context.begin_transaction():
    context.run_migrations()
