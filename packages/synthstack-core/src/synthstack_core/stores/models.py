"""SQLAlchemy models of the core's tables. Alembic migrations (``migrations/``) own the schema."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["ApiKey", "Base", "RateLimitOverride", "Tenant", "UsageQuantities", "UsageRequests"]


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


class UsageRequests(Base):
    """Requests of one tenant in one hour (UTC, truncated) of one operation answered with one
    status (Alembic ``0008``)."""

    __tablename__ = "usage_requests"
    __table_args__ = (UniqueConstraint("tenant_id", "hour", "operation_id", "status"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    operation_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[int] = mapped_column(Integer)
    requests: Mapped[int] = mapped_column(BigInteger)


class UsageQuantities(Base):
    """What one tenant's requests used in one hour (UTC, truncated), as the features count it
    (Alembic ``0008``)."""

    __tablename__ = "usage_quantities"
    __table_args__ = (UniqueConstraint("tenant_id", "hour"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    texts_embedded: Mapped[int] = mapped_column(BigInteger, server_default="0")
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    audio_seconds: Mapped[float] = mapped_column(Double, server_default="0")
    bytes_ingested: Mapped[int] = mapped_column(BigInteger, server_default="0")
