"""Responses of ``routes/reviews.py``: the quarterly review pack (spec §5).

The pack grows with the product (completeness learns about offline minutes,
months about new KPIs): its models accept keys they do not name.
"""

from __future__ import annotations

from typing import Literal

from services.api.schemas.base import (
    DecimalText,
    JsonObject,
    Number,
    OpenOut,
    PeriodText,
    Timestamp,
)


class DeviceCompleteness(OpenOut):
    device_id: str
    share: Number


class Completeness(OpenOut):
    """The share of period minutes each device (and the fleet) reported."""

    share: Number | None
    reported_min: Number
    period_min: Number
    devices: list[DeviceCompleteness]


class ReviewMonth(OpenOut):
    """One month of the quarter; a month not settled yet has ``status`` ``not_settled`` only."""

    period: PeriodText
    status: str
    adjusted: bool | None = None
    contract_version: int | None = None
    kpis: dict[str, Number | None] | None = None
    targets: list[JsonObject] | None = None
    money: dict[str, DecimalText] | None = None
    downtime_min: dict[str, Number] | None = None
    completeness: Completeness | None = None
    value: JsonObject | None = None
    warnings: list[str] | None = None


class ReviewTotals(OpenOut):
    money: JsonObject
    value: JsonObject | None


class ReviewOut(OpenOut):
    contract_id: str
    quarter: str
    view: Literal["provider", "customer"]
    provider: str
    customer: str
    currency: str
    unit: str
    generated_at: Timestamp
    months: list[ReviewMonth]
    totals: ReviewTotals
    proposals: list[JsonObject]
    promise: JsonObject | None
    actions: list[JsonObject]
    overdue_actions: list[JsonObject]
    disputes: list[JsonObject]
    pending_annotations: list[JsonObject]
    decisions: dict[str, list[JsonObject]]
    decided_proposals: list[JsonObject]
