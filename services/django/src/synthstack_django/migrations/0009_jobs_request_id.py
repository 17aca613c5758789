"""The id of the request that submitted a job: the core's Alembic revision ``0011`` adds
``jobs.request_id``; Django's unmanaged ``Job`` records the field (nothing is altered by Django).
"""

from django.db import migrations, models

from synthstack_django.database import upgrade_core_schema


class Migration(migrations.Migration):
    # Alembic runs on its own connection: Django must not hold a transaction open meanwhile.
    atomic = False

    dependencies = [("synthstack_django", "0008_jobs_unfinished")]

    operations = [
        migrations.RunPython(
            upgrade_core_schema("0011"), migrations.RunPython.noop, elidable=False
        ),
        migrations.AddField(
            model_name="job",
            name="request_id",
            field=models.TextField(blank=True, default=""),
        ),
    ]
