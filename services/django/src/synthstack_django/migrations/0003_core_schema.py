"""The core's schema, brought up to date by ``manage.py migrate``.

The core owns its tables (SQLAlchemy models and Alembic migrations); Django's models of them are
unmanaged (``0001``, ``0002``). This migration runs the core's Alembic migrations, up to the revision
it names, on the database Django migrates, under the core's advisory lock (Alembic keeps its own
``synthstack_alembic_version`` table, so a database the core migrated already is left as it is).
When the core gains an Alembic revision, a new migration here runs
``synthstack_django.database.upgrade_core_schema("<revision>")``; a test
(``tests/django_adapter/test_schema.py``) fails until it does.

Unapplying it (``migrate synthstack_django zero``) leaves the core's tables and data in place.
"""

from django.db import migrations

from synthstack_django.database import upgrade_core_schema


class Migration(migrations.Migration):
    # Alembic runs on its own connection: Django must not hold a transaction open meanwhile.
    atomic = False

    dependencies = [("synthstack_django", "0002_rag")]

    operations = [
        migrations.RunPython(
            upgrade_core_schema("0005"), migrations.RunPython.noop, elidable=False
        ),
    ]
