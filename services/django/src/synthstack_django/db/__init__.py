"""A Django database backend: PostgreSQL, the embedded server when no database is configured.

``ENGINE: "synthstack_django.db"`` is Django's PostgreSQL backend, except that a connection with no
``NAME`` starts (or joins) the embedded PostgreSQL at its first connection and uses it. The
standalone project's settings use it so that importing them starts nothing.
"""
