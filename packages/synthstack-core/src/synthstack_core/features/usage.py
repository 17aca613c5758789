"""``GET /api/v1/usage``: the caller's tenant's usage per hour, and the recorder that counts it.

The module owns the stack's :class:`~synthstack_core.usage.UsageRecorder` (started with the
stack, written every ``SYNTHSTACK_USAGE_FLUSH_SECONDS``, flushed when the stack closes); the
pipeline counts every authenticated request into it and binds it to the request, so the features
count what they used (:func:`synthstack_core.usage.count`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from synthstack_core.errors import FieldError, InvalidRequest
from synthstack_core.registry import Module, Stack, operation
from synthstack_core.schemas.usage import (
    MAX_USAGE_RANGE_DAYS,
    OperationRequests,
    UsageHour,
    UsageParams,
    UsageReport,
    UsageTotals,
)
from synthstack_core.stores.usage import UsageRepository
from synthstack_core.usage import Quantities, UsageRecorder

__all__ = ["DEFAULT_RANGE", "MODULE", "UsageService"]

#: The range reported when ``from`` is not given: the day before ``to``.
DEFAULT_RANGE = timedelta(hours=24)
_MAX_RANGE = timedelta(days=MAX_USAGE_RANGE_DAYS)


def _range_error(detail: str, field: str, kind: str, code: str) -> InvalidRequest:
    return InvalidRequest(detail, errors=[FieldError(("query", field), detail, kind)], code=code)


class UsageService:
    """The usage recorder, and the report of a tenant's usage."""

    def __init__(
        self,
        repository: UsageRepository,
        recorder: UsageRecorder,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repository = repository
        self.recorder = recorder
        self._clock = clock

    def span(self, params: UsageParams) -> tuple[datetime, datetime]:
        """The hours asked for: from the start of the hour holding ``from`` to ``to`` (UTC); 422
        when ``from`` is after ``to`` or the range is over :data:`MAX_USAGE_RANGE_DAYS` days."""
        try:
            end = (
                params.end.astimezone(UTC)
                if params.end is not None
                else datetime.fromtimestamp(self._clock(), tz=UTC)
            )
            start = (
                params.start.astimezone(UTC) if params.start is not None else end - DEFAULT_RANGE
            )
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise _range_error(
                "`from` and `to` must fall within the years 1 to 9999 in UTC.",
                "from" if params.start is not None else "to",
                "datetime_out_of_range",
                "invalid_range",
            ) from None
        if start > end:
            raise _range_error("`from` is after `to`.", "from", "range_reversed", "invalid_range")
        if end - start > _MAX_RANGE:
            raise _range_error(
                f"The range is longer than {MAX_USAGE_RANGE_DAYS} days: ask for less at a time.",
                "to",
                "range_too_long",
                "range_too_long",
            )
        return start.replace(minute=0, second=0, microsecond=0), end

    @operation("usage-get")
    async def report(self, tenant: str, params: UsageParams) -> UsageReport:
        """``GET /api/v1/usage``: the caller's tenant's hours from ``from`` to ``to``. What this
        process counted and had not written yet is written first; other processes' counts
        arrive within ``SYNTHSTACK_USAGE_FLUSH_SECONDS``."""
        start, end = self.span(params)
        await self.recorder.flush()
        records = await self.repository.hourly(tenant, start, end)
        totals = Quantities()
        by_operation: dict[tuple[str, int], int] = {}
        hours = []
        for record in records:
            totals.add(record.quantities)
            for key, value in record.requests.items():
                by_operation[key] = by_operation.get(key, 0) + value
            hours.append(
                UsageHour(
                    hour=record.hour.astimezone(UTC),
                    requests=_listed(record.requests),
                    **_rounded(record.quantities),
                )
            )
        return UsageReport(
            tenant=tenant,
            start=start,
            end=end,
            hours=hours,
            totals=UsageTotals(
                requests=sum(by_operation.values()),
                by_operation=_listed(by_operation),
                **_rounded(totals),
            ),
        )

    async def aclose(self) -> None:
        """Write what is left (the stack closes the database after its services)."""
        await self.recorder.aclose()


def _listed(requests: dict[tuple[str, int], int]) -> list[OperationRequests]:
    """By operation, then status."""
    return [
        OperationRequests(operation_id=operation_id, status=status, requests=value)
        for (operation_id, status), value in sorted(requests.items())
    ]


def _rounded(quantities: Quantities) -> dict[str, int | float]:
    values: dict[str, int | float] = dict(vars(quantities))
    values["audio_seconds"] = round(quantities.audio_seconds, 3)
    return values


def build(stack: Stack) -> UsageService:
    """The recorder, writing every ``SYNTHSTACK_USAGE_FLUSH_SECONDS`` from now on."""
    repository = UsageRepository(stack.database)
    recorder = UsageRecorder(repository.write, flush_seconds=stack.settings.usage_flush_seconds)
    recorder.start()
    return UsageService(repository, recorder)


MODULE = Module("usage", UsageService, build)
