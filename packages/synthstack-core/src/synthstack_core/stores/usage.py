"""Usage per tenant and hour in PostgreSQL (tables ``usage_requests`` and ``usage_quantities``):
written by :class:`synthstack_core.usage.UsageRecorder`, read by ``GET /api/v1/usage`` and the
Django admin."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from synthstack_core.stores.database import Database
from synthstack_core.stores.models import Tenant, UsageQuantities, UsageRequests
from synthstack_core.usage import Quantities, UsageBatch

__all__ = ["UsageHourRecord", "UsageRepository"]

#: Rows per INSERT statement (PostgreSQL takes at most 65,535 parameters in one).
_ROWS_PER_STATEMENT = 1000


@dataclass
class UsageHourRecord:
    """One hour of one tenant: its requests by ``(operation_id, status)``, and its quantities."""

    hour: datetime
    requests: dict[tuple[str, int], int] = field(default_factory=dict)
    quantities: Quantities = field(default_factory=Quantities)


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        yield rows[start : start + _ROWS_PER_STATEMENT]


def _moment(hour: int) -> datetime:
    return datetime.fromtimestamp(hour, tz=UTC)


class UsageRepository:
    """Usage rows, in PostgreSQL."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def write(self, batch: UsageBatch) -> None:
        """Add ``batch``'s counts to the stored ones, in one transaction (tenants missing from
        ``tenants``, such as a settings key's tenant after a restore, are created).

        Rows are written in key order, so two processes writing the same rows lock them in the
        same order (no deadlock)."""
        names = sorted({key[0] for key in (*batch.requests, *batch.quantities)})
        if not names:
            return
        async with self._db.session() as session:
            await session.execute(
                insert(Tenant)
                .values([{"id": uuid.uuid4(), "name": name} for name in names])
                .on_conflict_do_nothing(index_elements=["name"])
            )
            ids: dict[str, uuid.UUID] = {
                name: tenant_id
                for name, tenant_id in (
                    await session.execute(
                        select(Tenant.name, Tenant.id).where(Tenant.name.in_(names))
                    )
                ).all()
            }
            requests = [
                {
                    "tenant_id": ids[tenant],
                    "hour": _moment(hour),
                    "operation_id": operation_id,
                    "status": status,
                    "requests": value,
                }
                for (tenant, hour, operation_id, status), value in sorted(batch.requests.items())
            ]
            for rows in _chunks(requests):
                statement = insert(UsageRequests).values(list(rows))
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["tenant_id", "hour", "operation_id", "status"],
                        set_={"requests": UsageRequests.requests + statement.excluded.requests},
                    )
                )
            quantities = [
                {"tenant_id": ids[tenant], "hour": _moment(hour), **vars(value)}
                for (tenant, hour), value in sorted(batch.quantities.items())
            ]
            for rows in _chunks(quantities):
                statement = insert(UsageQuantities).values(list(rows))
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["tenant_id", "hour"],
                        set_={
                            name: getattr(UsageQuantities, name) + getattr(statement.excluded, name)
                            for name in vars(Quantities())
                        },
                    )
                )
            await session.commit()

    async def hourly(self, tenant: str, start: datetime, end: datetime) -> list[UsageHourRecord]:
        """``tenant``'s hours from ``start`` (inclusive) to ``end`` (exclusive), oldest first;
        hours with no usage are left out."""
        tenant_id = select(Tenant.id).where(Tenant.name == tenant).scalar_subquery()
        hours: dict[datetime, UsageHourRecord] = {}
        async with self._db.session() as session:
            requests = await session.execute(
                select(
                    UsageRequests.hour,
                    UsageRequests.operation_id,
                    UsageRequests.status,
                    UsageRequests.requests,
                ).where(
                    UsageRequests.tenant_id == tenant_id,
                    UsageRequests.hour >= start,
                    UsageRequests.hour < end,
                )
            )
            for hour, operation_id, status, value in requests.all():
                record = hours.setdefault(hour, UsageHourRecord(hour))
                record.requests[(operation_id, status)] = value
            quantities = await session.execute(
                select(UsageQuantities).where(
                    UsageQuantities.tenant_id == tenant_id,
                    UsageQuantities.hour >= start,
                    UsageQuantities.hour < end,
                )
            )
            for row in quantities.scalars():
                record = hours.setdefault(row.hour, UsageHourRecord(row.hour))
                record.quantities = Quantities(
                    **{name: getattr(row, name) for name in vars(Quantities())}
                )
        return [hours[hour] for hour in sorted(hours)]
