"""Models of ``GET /api/v1/usage``: the caller's tenant's usage, hour by hour, and its totals."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from synthstack_core.schemas.common import ResponseModel

__all__ = [
    "MAX_USAGE_RANGE_DAYS",
    "OperationRequests",
    "UsageHour",
    "UsageParams",
    "UsageReport",
    "UsageTotals",
]

#: The longest range one request may cover.
MAX_USAGE_RANGE_DAYS = 31


#: RFC 3339's ``date-time`` (the contract's ``format: date-time``), upper-cased: an offset is
#: required, and neither a UNIX time nor another ISO 8601 spelling is one.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.ASCII)


def _rfc3339(value: object) -> object:
    """A query's text only if it is an RFC 3339 date-time (pydantic alone also reads ``0.5`` as
    a UNIX time)."""
    if isinstance(value, str):
        text = value.upper()
        if not _RFC3339.fullmatch(text):
            raise ValueError(
                "not an ISO 8601 (RFC 3339) date-time with an offset, e.g. 2026-12-01T00:00:00Z"
            )
        return text
    return value


DateTimeParameter = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


class UsageParams(BaseModel):
    """Query parameters of ``GET /api/v1/usage`` (``from`` and ``to``, ISO 8601 date-times with
    an offset)."""

    model_config = ConfigDict(extra="ignore")

    start: DateTimeParameter | None = Field(None, alias="from")
    end: DateTimeParameter | None = Field(None, alias="to")


class OperationRequests(ResponseModel):
    """Requests of one operation answered with one status."""

    operation_id: str
    status: int = Field(ge=100, le=599)
    requests: int = Field(ge=1)


class UsageHour(ResponseModel):
    """One hour (UTC) of the tenant's usage."""

    hour: datetime
    requests: list[OperationRequests]
    texts_embedded: int = Field(ge=0)
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    audio_seconds: float = Field(ge=0)
    bytes_ingested: int = Field(ge=0)


class UsageTotals(ResponseModel):
    """The whole range's usage."""

    requests: int = Field(ge=0)
    by_operation: list[OperationRequests]
    texts_embedded: int = Field(ge=0)
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    audio_seconds: float = Field(ge=0)
    bytes_ingested: int = Field(ge=0)


class UsageReport(ResponseModel):
    """The caller's tenant's usage from ``start`` (the hour holding ``from``) to ``end`` (``to``,
    exclusive): its hours with any usage, oldest first, and their totals."""

    tenant: str
    start: datetime
    end: datetime
    hours: list[UsageHour]
    totals: UsageTotals
