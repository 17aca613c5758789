"""Persistence: PostgreSQL (system of record), the embedded PostgreSQL, and the cache."""
