"""Django's view of the core's tables, for the admin.

The core owns these tables (SQLAlchemy models and Alembic migrations in ``synthstack_core.stores``);
the models here are ``managed = False``, so Django's migrations never create, alter or drop them.
API keys are created and revoked through the core (see :mod:`synthstack_django.admin`), never by
writing rows here.
"""

from __future__ import annotations

import uuid

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from synthstack_core.settings import TENANT_NAME_PATTERN

__all__ = ["ApiKey", "Tenant"]


class Tenant(models.Model):
    """A customer of the deployment (table ``tenants``)."""

    # The database's own defaults are not applied by Django's inserts, so Django supplies them.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(
                f"^{TENANT_NAME_PATTERN}$",
                "1-64 letters, digits, `.`, `_` or `-`, starting with a letter or digit.",
            )
        ],
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        managed = False
        db_table = "tenants"
        ordering = ("name",)
        verbose_name = "tenant"
        verbose_name_plural = "tenants"

    def __str__(self) -> str:
        return str(self.name)


class ApiKey(models.Model):
    """An API key (table ``api_keys``): only its prefix and the SHA-256 of its secret are stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, db_column="tenant_id", related_name="api_keys"
    )
    name = models.CharField(max_length=128, blank=True, default="")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        managed = False
        db_table = "api_keys"
        ordering = ("-created_at",)
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def __str__(self) -> str:
        label = self.name or "unnamed key"
        return f"{label} (ssk_{self.prefix}_…)" if self.prefix else label

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None
