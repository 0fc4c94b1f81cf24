"""Responses of ``routes/reviews.py``: the quarterly review pack (spec §5).

The pack grows with the product (completeness learns about offline minutes,
months about new KPIs): its models accept keys they do not name.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.api.schemas.actions import ActionOut, OverdueActionOut
from services.api.schemas.base import (
    DecimalText,
    JsonObject,
    Number,
    OpenOut,
    Out,
    PeriodText,
    Timestamp,
)
from services.api.schemas.disputes import DisputeOut
from services.api.schemas.proposals import ProposalOut
from services.api.schemas.value import ValuePeriod


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
    value: ValuePeriod | None = None
    warnings: list[str] | None = None


class ReviewProposal(ProposalOut):
    """An open proposal with the parties that have yet to decide it."""

    awaiting: list[str]


class PendingAnnotation(Out):
    """An annotation waiting for the other party's approval."""

    id: int
    device_id: str
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    cause: str
    note: str
    author: str
    party: str | None
    awaiting: str
    created_at: Timestamp


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
    proposals: list[ReviewProposal]
    promise: JsonObject | None
    actions: list[ActionOut]
    overdue_actions: list[OverdueActionOut]
    disputes: list[DisputeOut]
    pending_annotations: list[PendingAnnotation]
    decisions: dict[str, list[JsonObject]]
    decided_proposals: list[JsonObject]
