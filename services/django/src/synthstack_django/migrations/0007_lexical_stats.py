"""Stored BM25 statistics: the core's Alembic revision ``0009`` creates ``rag_collection_stats``
and ``rag_term_stats`` and adds ``chunk_length`` and ``impact`` to ``rag_postings`` (none of which
the admin shows: no model).
"""

from django.db import migrations

from synthstack_django.database import upgrade_core_schema


class Migration(migrations.Migration):
    # Alembic runs on its own connection: Django must not hold a transaction open meanwhile.
    atomic = False

    dependencies = [("synthstack_django", "0006_usage")]

    operations = [
        migrations.RunPython(
            upgrade_core_schema("0009"), migrations.RunPython.noop, elidable=False
        ),
    ]
