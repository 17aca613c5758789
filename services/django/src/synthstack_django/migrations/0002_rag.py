"""Django's record of the core's RAG tables: ``rag_collections``, ``rag_documents``, ``rag_chunks``.

All three models are ``managed = False``: this migration creates nothing. The core's Alembic
migration (``synthstack_core/stores/migrations/versions/0002_rag.py``) owns the tables, and also
``rag_postings`` and the chunks' ``embedding`` column, which Django does not map. (Django leaves an
unmanaged model's relations out of its migrations, hence no foreign keys here.)
"""

import uuid

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("synthstack_django", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Chunk",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("position", models.IntegerField()),
                ("content", models.TextField()),
                ("char_start", models.IntegerField()),
                ("char_end", models.IntegerField()),
                ("page", models.IntegerField(blank=True, null=True)),
                ("token_count", models.IntegerField(verbose_name="tokens")),
                ("lexeme_count", models.IntegerField(verbose_name="lexemes")),
                ("dimensions", models.IntegerField()),
            ],
            options={
                "verbose_name": "chunk",
                "verbose_name_plural": "chunks",
                "db_table": "rag_chunks",
                "ordering": ("document_id", "position"),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Collection",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=64)),
                ("description", models.TextField(blank=True, default="")),
                ("embedding_model", models.CharField(max_length=128)),
                ("dimensions", models.IntegerField()),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
            ],
            options={
                "verbose_name": "collection",
                "verbose_name_plural": "collections",
                "db_table": "rag_collections",
                "ordering": ("tenant__name", "name"),
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Document",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("external_id", models.CharField(max_length=256, verbose_name="document id")),
                ("source", models.CharField(max_length=512)),
                ("source_type", models.CharField(max_length=16)),
                ("metadata", models.JSONField(default=dict)),
                ("content_sha256", models.CharField(max_length=64, verbose_name="content SHA-256")),
                ("characters", models.IntegerField()),
                ("chunk_count", models.IntegerField(verbose_name="chunks")),
                ("chunk_size", models.IntegerField()),
                ("chunk_overlap", models.IntegerField()),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                (
                    "updated_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
            ],
            options={
                "verbose_name": "document",
                "verbose_name_plural": "documents",
                "db_table": "rag_documents",
                "ordering": ("-updated_at",),
                "managed": False,
            },
        ),
    ]
