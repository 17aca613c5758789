"""Tenants' rate-limit overrides: the core's Alembic revision ``0006`` creates the table
``rate_limit_overrides``; Django records its unmanaged model (which creates nothing)."""

import uuid

import django.utils.timezone
from django.db import migrations, models

import synthstack_django.models
from synthstack_django.database import upgrade_core_schema


class Migration(migrations.Migration):
    # Alembic runs on its own connection: Django must not hold a transaction open meanwhile.
    atomic = False

    dependencies = [("synthstack_django", "0003_core_schema")]

    operations = [
        migrations.RunPython(
            upgrade_core_schema("0006"), migrations.RunPython.noop, elidable=False
        ),
        migrations.CreateModel(
            name="RateLimitOverride",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "policy",
                    models.CharField(
                        help_text="A group of operations (the operation's tag: embeddings, rag, "
                        "generation, analysis, complexity, transcription, a plugin's), "
                        "`default` (every group without its own entry) or `tokens` (the "
                        "chat-model token budget of the tenant).",
                        max_length=64,
                        validators=[synthstack_django.models._valid_policy],
                    ),
                ),
                (
                    "rate",
                    models.CharField(
                        help_text="Requests per API key (tokens per tenant for `tokens`), e.g. "
                        "`600/minute`, `60 per minute`, `10/2 seconds`; or `unlimited`.",
                        max_length=64,
                        validators=[synthstack_django.models._valid_rate],
                    ),
                ),
                (
                    "updated_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
            ],
            options={
                "verbose_name": "rate-limit override",
                "verbose_name_plural": "rate-limit overrides",
                "db_table": "rate_limit_overrides",
                "ordering": ("tenant__name", "policy"),
                "managed": False,
            },
        ),
    ]
