"""Responses of ``routes/value.py``: cost to serve and the realised value split (spec §2, §4, §7.3)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.api.schemas.base import (
    DecimalText,
    JsonObject,
    Number,
    OpenOut,
    Out,
    PeriodText,
    Timestamp,
)


class CostOut(Out):
    id: int
    contract_id: str
    period: PeriodText
    amount: DecimalText
    currency: str
    category: str
    note: str | None
    created_by: str | None
    created_at: Timestamp


class CostList(Out):
    contract_id: str
    items: list[CostOut]


class ValuePeriod(OpenOut):
    """One period's split; the provider's view adds cost, margin and shares."""

    period: PeriodText
    currency: str
    throughput: Number
    value_to_customer: DecimalText | None
    net: DecimalText | None
    customer_gain: DecimalText | None
    cost: DecimalText | None = None
    cost_recorded: bool | None = None
    provider_margin: DecimalText | None = None
    value_created: DecimalText | None = None
    provider_share: Number | None = None
    agreed_provider_share: Number | None = None
    tolerance: Number | None = None
    within_agreed: bool | None = None


class ValueOut(OpenOut):
    contract_id: str
    from_: PeriodText = Field(alias="from")
    to: PeriodText
    view: Literal["provider", "customer"]
    value_model: JsonObject | None
    periods: list[ValuePeriod]
    promise: JsonObject | None
    """The value promised against delivered, per period and quarter (``None``: no promise)."""
