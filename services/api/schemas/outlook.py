"""Responses of ``routes/outlook.py``: the early warning and what-if (spec §3.4, §4)."""

from __future__ import annotations

from pydantic import Field

from services.api.schemas.actions import OverdueActionOut
from services.api.schemas.base import DecimalText, JsonObject, Number, OpenOut, PeriodText
from services.api.schemas.settlements import StatementBodyOut


class MonthToDate(OpenOut):
    kpis: dict[str, Number | None]


class FlagOut(OpenOut):
    """A KPI heading for a penalty or a missed bonus."""

    kpi: str
    flag: str
    message: str


class OutlookOut(OpenOut):
    contract_id: str
    period: PeriodText
    as_of: str
    contract_version: int
    elapsed_days: Number
    period_days: Number
    month_to_date: MonthToDate
    projected: StatementBodyOut
    flags: list[FlagOut]
    overdue_actions: list[OverdueActionOut]


class NetDifference(OpenOut):
    current_net: DecimalText
    proposed_net: DecimalText
    difference: DecimalText


class SimulatedPeriod(OpenOut):
    period: PeriodText
    contract_version: int
    current: StatementBodyOut
    alternative: StatementBodyOut
    difference: JsonObject


class SimulationOut(OpenOut):
    """``[from, to]`` re-settled under the alternative terms next to the terms in force."""

    contract_id: str
    from_: PeriodText = Field(alias="from")
    to: PeriodText
    stored: bool
    skipped: list[PeriodText]
    periods: list[SimulatedPeriod]
    total: NetDifference
    parties: dict[str, DecimalText]
