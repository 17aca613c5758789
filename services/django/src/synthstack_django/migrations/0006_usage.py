"""Usage per tenant and hour: the core's Alembic revision ``0008`` creates the tables
``usage_requests`` and ``usage_quantities``; Django records their unmanaged models (which create
nothing), for the admin's read-only pages.
"""

import django.db.models.deletion
from django.db import migrations, models

from synthstack_django.database import upgrade_core_schema


class Migration(migrations.Migration):
    # Alembic runs on its own connection: Django must not hold a transaction open meanwhile.
    atomic = False

    dependencies = [("synthstack_django", "0005_jobs")]

    operations = [
        migrations.RunPython(
            upgrade_core_schema("0008"), migrations.RunPython.noop, elidable=False
        ),
        migrations.CreateModel(
            name="UsageRequests",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("hour", models.DateTimeField(help_text="The hour (UTC) the requests ended in.")),
                ("operation_id", models.CharField("operation", max_length=128)),
                ("status", models.IntegerField()),
                ("requests", models.BigIntegerField()),
                (
                    "tenant",
                    models.ForeignKey(
                        db_column="tenant_id",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="usage_requests",
                        to="synthstack_django.tenant",
                    ),
                ),
            ],
            options={
                "verbose_name": "usage: requests",
                "verbose_name_plural": "usage: requests",
                "db_table": "usage_requests",
                "ordering": ("-hour", "tenant__name", "operation_id", "status"),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="UsageQuantities",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "hour",
                    models.DateTimeField(
                        help_text="The hour (UTC) the quantities were counted in."
                    ),
                ),
                ("texts_embedded", models.BigIntegerField()),
                ("prompt_tokens", models.BigIntegerField("LLM prompt tokens")),
                ("completion_tokens", models.BigIntegerField("LLM completion tokens")),
                ("audio_seconds", models.FloatField("seconds of audio")),
                ("bytes_ingested", models.BigIntegerField()),
                (
                    "tenant",
                    models.ForeignKey(
                        db_column="tenant_id",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="usage_quantities",
                        to="synthstack_django.tenant",
                    ),
                ),
            ],
            options={
                "verbose_name": "usage: quantities",
                "verbose_name_plural": "usage: quantities",
                "db_table": "usage_quantities",
                "ordering": ("-hour", "tenant__name"),
                "managed": False,
            },
        ),
    ]
