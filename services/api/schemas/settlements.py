"""Responses of ``routes/settlements.py``: runs and statements (spec §3.3, §3.4, §6)."""

from __future__ import annotations

from typing import Literal

from services.api.schemas.base import (
    DateText,
    DecimalText,
    JsonObject,
    Number,
    OpenOut,
    Out,
    PeriodText,
    Timestamp,
)


class RunResultOut(Out):
    contract_id: str
    period: PeriodText
    outcome: str
    net: DecimalText | None
    error: str | None


class RunOut(Out):
    period: PeriodText
    results: list[RunResultOut]


class LineOut(Out):
    kind: str
    kpi: str | None = None
    amount: DecimalText
    explanation: str


class EvaluationOut(Out):
    kpi: str
    value: Number | None
    target: Number
    deadband: Number
    point: Number
    bonus_above: Number | None
    status: str
    penalty: DecimalText
    bonus: DecimalText
    explanation: str


class DeviceSummaryOut(OpenOut):
    """A device's quantities for the period (spec §3.1); connection-state minutes may follow."""

    device_id: str
    period_min: Number
    reported_min: Number
    missing_min: Number
    uptime_min: Number
    quality_min: Number
    throughput: Number
    down_min: dict[str, Number]
    excused_min: Number
    base_min: Number


class StatementBodyOut(Out):
    """What a settlement computes for a period (also the outlook's projection)."""

    period: PeriodText
    currency: str
    kpis: dict[str, Number | None]
    lines: list[LineOut]
    charges_base: DecimalText
    net: DecimalText
    warnings: list[str]
    notes: list[str]
    evaluations: list[EvaluationOut]
    devices: list[DeviceSummaryOut]


class AdjustsOut(OpenOut):
    """The statement an adjustment adjusts."""

    seq: int
    number: str


class AdjustmentRef(Out):
    seq: int
    id: int
    number: str
    status: str
    net: DecimalText
    reason: str | None


class StatementOut(StatementBodyOut):
    """A statement as finance files it (spec §3.4): what settlement computed, with what an
    invoice needs besides; ``adjustments`` on single reads only."""

    number: str
    id: int
    contract_id: str
    provider: str
    customer: str
    period_start: DateText
    period_end: DateText
    timezone: str
    seq: int
    kind: Literal["statement", "adjustment"]
    status: str
    contract_version: int
    adjusts: AdjustsOut | None
    reason: str | None
    changes: JsonObject | None
    watermark: Timestamp | None
    inputs_digest: str | None
    computed_at: Timestamp
    issued_at: Timestamp | None
    issued_by: str | None
    adjustments: list[AdjustmentRef] | None = None


class StatementList(Out):
    period: PeriodText
    items: list[StatementOut]
