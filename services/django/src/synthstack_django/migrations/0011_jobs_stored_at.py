"""When a job's work was written: the core's Alembic revision ``0013`` adds ``jobs.stored_at``;
Django's unmanaged ``Job`` records the field (nothing is altered by Django).
"""

from django.db import migrations, models

from synthstack_django.database import upgrade_core_schema


class Migration(migrations.Migration):
    # Alembic runs on its own connection: Django must not hold a transaction open meanwhile.
    atomic = False

    dependencies = [("synthstack_django", "0010_jobs_provider_failures")]

    operations = [
        migrations.RunPython(
            upgrade_core_schema("0013"), migrations.RunPython.noop, elidable=False
        ),
        migrations.AddField(
            model_name="job",
            name="stored_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
