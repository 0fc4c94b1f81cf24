"""The settlement engine's result: KPIs, explained lines, net, and the working.

Amounts serialise as decimal strings at the currency's minor unit ("8000.00",
JPY "1200"); KPI values as JSON numbers with 6 decimals. Everything is ordered
deterministically so that the same inputs give byte-identical JSON: drafts are
idempotent and statements are compared and digested.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    field_serializer,
    model_serializer,
    model_validator,
)

from schemas.contract import json_number
from schemas.money import round_money
from schemas.vocabulary import KPI_NAMES, DowntimeCause, LineKind

EvaluationStatus = Literal[
    "undefined", "penalty", "within_deadband", "below_target", "on_target", "bonus"
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatementLine(_Model):
    """One priced item with the inputs that produced it, in words."""

    kind: LineKind
    kpi: str | None = None
    amount: Decimal
    explanation: str

    @field_serializer("amount", when_used="json")
    def _amount_text(self, amount: Decimal) -> str:
        return format(amount, "f")

    @model_serializer(mode="wrap")
    def _omit_absent_kpi(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The spec's line is ``{"kind", "kpi"?, "amount", "explanation"}``: no null kpi."""
        data: dict[str, Any] = handler(self)
        if data.get("kpi") is None:
            data.pop("kpi", None)
        return data


class KpiEvaluation(_Model):
    """How one KPI rule was judged, including why it cost nothing."""

    kpi: str
    value: Decimal | None
    target: Decimal
    deadband: Decimal
    point: Decimal
    bonus_above: Decimal | None
    status: EvaluationStatus
    penalty: Decimal
    bonus: Decimal
    explanation: str

    @field_serializer("value", "target", "deadband", "point", "bonus_above", when_used="json")
    def _numbers(self, value: Decimal | None) -> int | float | None:
        return None if value is None else json_number(value)

    @field_serializer("penalty", "bonus", when_used="json")
    def _money_text(self, amount: Decimal) -> str:
        return format(amount, "f")


class DeviceSummary(_Model):
    """A device's §3.1 quantities, rounded to 6 places for display."""

    device_id: str
    period_min: Decimal
    reported_min: Decimal
    missing_min: Decimal
    uptime_min: Decimal
    quality_min: Decimal
    throughput: Decimal
    down_min: dict[DowntimeCause, Decimal]
    excused_min: Decimal
    base_min: Decimal

    @field_serializer(
        "period_min",
        "reported_min",
        "missing_min",
        "uptime_min",
        "quality_min",
        "throughput",
        "excused_min",
        "base_min",
        when_used="json",
    )
    def _numbers(self, value: Decimal) -> int | float:
        return json_number(value)

    @field_serializer("down_min", when_used="json")
    def _down(self, down: dict[DowntimeCause, Decimal]) -> dict[str, int | float]:
        return {cause: json_number(minutes) for cause, minutes in down.items()}


class StatementBody(_Model):
    """Everything settlement computes for one contract version and period."""

    period: str
    currency: str
    kpis: dict[str, Decimal | None]
    lines: list[StatementLine]
    charges_base: Decimal
    net: Decimal
    warnings: list[str]
    notes: list[str]
    evaluations: list[KpiEvaluation]
    devices: list[DeviceSummary]

    @model_validator(mode="after")
    def _at_minor_unit(self) -> StatementBody:
        """Amounts loaded from storage may carry extra scale; show them as issued."""
        currency = self.currency
        lines = [
            line.model_copy(update={"amount": round_money(line.amount, currency)})
            for line in self.lines
        ]
        object.__setattr__(self, "lines", lines)
        object.__setattr__(self, "net", round_money(self.net, currency))
        object.__setattr__(self, "charges_base", round_money(self.charges_base, currency))
        return self

    @field_serializer("kpis", when_used="json")
    def _kpi_numbers(self, kpis: dict[str, Decimal | None]) -> dict[str, float | None]:
        ordered = [name for name in KPI_NAMES if name in kpis] + sorted(
            name for name in kpis if name not in KPI_NAMES
        )
        return {name: _kpi_number(kpis[name]) for name in ordered}

    @field_serializer("net", "charges_base", when_used="json")
    def _money_text(self, amount: Decimal) -> str:
        return format(amount, "f")


def _kpi_number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
