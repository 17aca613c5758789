"""Tenants' rate-limit overrides (table ``rate_limit_overrides``): set, list, clear, read.

An override replaces the entry of ``SYNTHSTACK_RATE_LIMITS`` with the same policy name (a group of
operations, or ``default``) for one tenant; its rate is in the ``limits`` notation or
``unlimited``. The ``synthstack limits`` command and the Django admin write them; the request
pipeline reads them through :class:`synthstack_core.ratelimits.RateLimiter`'s short cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from synthstack_core.errors import FieldError, InvalidRequest, NotFound
from synthstack_core.ratelimits import check_policy_name, parse_rate
from synthstack_core.stores.api_keys import ApiKeyRepository, check_tenant_name
from synthstack_core.stores.database import Database
from synthstack_core.stores.models import RateLimitOverride, Tenant

__all__ = ["RateLimitOverrideRecord", "RateLimitRepository", "check_override"]


@dataclass(frozen=True)
class RateLimitOverrideRecord:
    """One tenant's rate for one policy."""

    tenant: str
    policy: str
    rate: str
    updated_at: datetime


def check_override(policy: str, rate: str) -> tuple[str, str]:
    """``(policy, rate)`` normalised (rate stripped, ``unlimited`` lower-cased), or a 422 naming
    the field that is wrong."""
    try:
        check_policy_name(policy)
    except ValueError as exc:
        raise InvalidRequest(
            f"Invalid policy: {exc}.", errors=[FieldError(("policy",), str(exc), "value_error")]
        ) from None
    try:
        item = parse_rate(rate, allow_unlimited=True)
    except ValueError as exc:
        raise InvalidRequest(
            f"Invalid rate: {exc}.", errors=[FieldError(("rate",), str(exc), "value_error")]
        ) from None
    return policy, rate.strip() if item is not None else "unlimited"


class RateLimitRepository:
    """The overrides, in PostgreSQL."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def set(self, tenant: str, policy: str, rate: str) -> RateLimitOverrideRecord:
        """Give ``tenant`` (created if missing) ``rate`` for ``policy``, replacing any before."""
        policy, rate = check_override(policy, rate)
        tenant_id = await ApiKeyRepository(self._db).ensure_tenant(tenant)
        statement = (
            insert(RateLimitOverride)
            .values(tenant_id=tenant_id, policy=policy, rate=rate)
            .on_conflict_do_update(
                index_elements=["tenant_id", "policy"],
                set_={"rate": rate, "updated_at": func.now()},
            )
            .returning(RateLimitOverride.updated_at)
        )
        async with self._db.session() as session:
            updated_at = (await session.execute(statement)).scalar_one()
            await session.commit()
        return RateLimitOverrideRecord(tenant, policy, rate, updated_at)

    async def list(self, tenant: str | None = None) -> list[RateLimitOverrideRecord]:
        """Every override (of one tenant), by tenant and policy."""
        query = select(RateLimitOverride, Tenant.name).join(
            Tenant, Tenant.id == RateLimitOverride.tenant_id
        )
        if tenant is not None:
            query = query.where(Tenant.name == tenant)
        async with self._db.session() as session:
            rows = (
                await session.execute(query.order_by(Tenant.name, RateLimitOverride.policy))
            ).all()
        return [
            RateLimitOverrideRecord(name, row.policy, row.rate, row.updated_at)
            for row, name in rows
        ]

    async def for_tenant(self, tenant: str) -> dict[str, str]:
        """``{policy: rate}`` of one tenant (what the limiter reads)."""
        query = (
            select(RateLimitOverride.policy, RateLimitOverride.rate)
            .join(Tenant, Tenant.id == RateLimitOverride.tenant_id)
            .where(Tenant.name == tenant)
        )
        async with self._db.session() as session:
            rows = (await session.execute(query)).all()
        return {policy: rate for policy, rate in rows}

    async def clear(self, tenant: str, policy: str | None = None) -> int:
        """Remove the tenant's override of ``policy`` (every one of them without ``policy``);
        how many were removed. 404 when there was none."""
        check_tenant_name(tenant)
        tenant_id = select(Tenant.id).where(Tenant.name == tenant).scalar_subquery()
        statement = delete(RateLimitOverride).where(RateLimitOverride.tenant_id == tenant_id)
        if policy is not None:
            statement = statement.where(RateLimitOverride.policy == policy)
        async with self._db.session() as session:
            result = await session.execute(statement)
            await session.commit()
        removed = int(getattr(result, "rowcount", 0) or 0)
        if removed == 0:
            which = f"for {policy!r} " if policy is not None else ""
            raise NotFound(f"Tenant {tenant!r} has no rate-limit override {which}to clear.")
        return removed
