"""Jobs: the core's Alembic revision 0007 (Procrastinate's schema, ``jobs``, ``job_payloads``), and
Django's record of the two tables as unmanaged models (nothing is created by Django).

Like ``0003_core_schema``, it runs the core's Alembic migrations up to the revision it names;
unapplying it leaves the core's tables in place.
"""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from synthstack_django.database import upgrade_core_schema


class Migration(migrations.Migration):
    # Alembic runs on its own connection: Django must not hold a transaction open meanwhile.
    atomic = False

    dependencies = [("synthstack_django", "0004_rate_limit_overrides")]

    operations = [
        migrations.RunPython(
            upgrade_core_schema("0007"), migrations.RunPython.noop, elidable=False
        ),
        migrations.CreateModel(
            name="Job",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("kind", models.TextField()),
                ("status", models.TextField()),
                ("progress_done", models.IntegerField(default=0)),
                ("progress_total", models.IntegerField(blank=True, null=True)),
                ("progress_unit", models.TextField()),
                ("attempts", models.IntegerField(default=0)),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("result", models.JSONField(blank=True, null=True)),
                ("error", models.JSONField(blank=True, null=True)),
                ("procrastinate_job_id", models.BigIntegerField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "job",
                "verbose_name_plural": "jobs",
                "db_table": "jobs",
                "ordering": ("-created_at",),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="JobPayload",
            fields=[
                (
                    "job",
                    models.OneToOneField(
                        db_column="job_id",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="payload",
                        serialize=False,
                        to="synthstack_django.job",
                    ),
                ),
                ("request", models.JSONField()),
                ("data", models.BinaryField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "job payload",
                "verbose_name_plural": "job payloads",
                "db_table": "job_payloads",
                "managed": False,
            },
        ),
    ]
