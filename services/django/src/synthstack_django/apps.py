"""The Django app of SynthStack: the admin over the core's tenants and API keys.

``manage.py migrate`` runs the core's Alembic migrations (``migrations/0003_core_schema.py``), and,
after every ``migrate`` that applied no backward step, the migrations of the installed plugins'
modules (each module's own Alembic branch, see ``synthstack_core.registry.Module.migrations``):
a plugin installed after this app's migrations were applied gets its tables at the next
``migrate``, as Django teams expect.
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SynthStackConfig(AppConfig):
    """``synthstack_django``."""

    name = "synthstack_django"
    label = "synthstack_django"
    verbose_name = "SynthStack"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the migration of the plugins' tables to ``migrate``."""
        post_migrate.connect(migrate_module_tables, sender=self)


def migrate_module_tables(
    sender: AppConfig, using: str = "default", plan: Any = None, **_: Any
) -> None:
    """After ``migrate``: the core's schema and every installed module's own tables brought to
    their latest revisions (nothing when no module has tables of its own, when the plan unapplied
    a migration, or before the core's schema migration ran)."""
    from synthstack_core import installed_modules

    if any(backwards for _, backwards in plan or ()):
        return
    if not any(module.migrations is not None for module in installed_modules()):
        return  # 0003_core_schema and its successors migrate the core's own tables
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    connection = connections[using]
    applied = MigrationRecorder(connection).migration_qs.filter(
        app="synthstack_django", name="0003_core_schema"
    )
    if not applied.exists():
        return  # a partial `migrate synthstack_django 0002`: the core's schema is not there yet
    from synthstack_core import migrate_database
    from synthstack_django.database import url_of

    migrate_database(url_of(connection.settings_dict), "heads")
