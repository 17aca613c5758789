"""The runs of a job its provider failed: the core's Alembic revision ``0012`` adds
``jobs.provider_failures``; Django's unmanaged ``Job`` records the field (nothing is altered by
Django).
"""

from django.db import migrations, models

from synthstack_django.database import upgrade_core_schema


class Migration(migrations.Migration):
    # Alembic runs on its own connection: Django must not hold a transaction open meanwhile.
    atomic = False

    dependencies = [("synthstack_django", "0009_jobs_request_id")]

    operations = [
        migrations.RunPython(
            upgrade_core_schema("0012"), migrations.RunPython.noop, elidable=False
        ),
        migrations.AddField(
            model_name="job",
            name="provider_failures",
            field=models.IntegerField(default=0),
        ),
    ]
