"""Models of ``GET /api/v1/usage``: the caller's tenant's usage, hour by hour, and its totals."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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


class UsageParams(BaseModel):
    """Query parameters of ``GET /api/v1/usage`` (``from`` and ``to``, ISO 8601 date-times with
    an offset)."""

    model_config = ConfigDict(extra="ignore")

    start: AwareDatetime | None = Field(None, alias="from")
    end: AwareDatetime | None = Field(None, alias="to")


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
