"""An index of the unfinished jobs: the core's Alembic revision ``0010`` creates ``jobs_unfinished``
(a partial index on ``jobs.status``; no model changes).
"""

from django.db import migrations

from synthstack_django.database import upgrade_core_schema


class Migration(migrations.Migration):
    # Alembic runs on its own connection: Django must not hold a transaction open meanwhile.
    atomic = False

    dependencies = [("synthstack_django", "0007_lexical_stats")]

    operations = [
        migrations.RunPython(
            upgrade_core_schema("0010"), migrations.RunPython.noop, elidable=False
        ),
    ]
