"""SQLAlchemy models of the core's tables. Alembic migrations (``migrations/``) own the schema."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["ApiKey", "Base", "RateLimitOverride", "Tenant"]


class Base(DeclarativeBase):
    """Declarative base of the core's tables."""


class Tenant(Base):
    """A customer of the deployment; every resource and key belongs to one."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="tenant")


class ApiKey(Base):
    """An API key, stored as the SHA-256 of its secret; ``prefix`` finds it without the secret."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128), default="")
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    tenant: Mapped[Tenant] = relationship(back_populates="api_keys")


class RateLimitOverride(Base):
    """A tenant's own rate for one policy (a group of operations, or ``default``), replacing
    ``SYNTHSTACK_RATE_LIMITS``'s entry of that name for the tenant (Alembic ``0006``)."""

    __tablename__ = "rate_limit_overrides"
    __table_args__ = (UniqueConstraint("tenant_id", "policy"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    policy: Mapped[str] = mapped_column(String(64))
    #: In the ``limits`` notation (``600/minute``), or ``unlimited``.
    rate: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
