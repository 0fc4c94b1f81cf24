"""Responses of ``routes/actions.py``: corrective actions with their effect (spec §7.4)."""

from __future__ import annotations

from services.api.schemas.base import DateText, JsonObject, Out, Timestamp


class ActionOut(Out):
    id: int
    contract_id: str
    title: str
    owner: str
    kpi: str | None
    devices: list[str]
    due: DateText
    proposal_id: int | None
    status: str
    overdue: bool
    created_by: str | None
    created_at: Timestamp
    closed_by: str | None
    closed_at: Timestamp | None
    note: str | None
    effect: JsonObject | None = None
    """The KPI on the action's devices before and after (``None`` without a KPI)."""


class OverdueActionOut(Out):
    id: int
    title: str
    owner: str
    kpi: str | None
    devices: list[str]
    due: DateText
    days_overdue: int
