"""Responses of ``routes/disputes.py`` (spec §7.2)."""

from __future__ import annotations

from services.api.schemas.base import DecisionOut, JsonObject, Out, PeriodText


class DisputeOut(Out):
    id: int
    contract_id: str
    period: PeriodText
    line_kind: str | None
    kpi: str | None
    annotation_id: int | None
    reason: str
    raised_by_party: str
    status: str
    note: str | None
    result: JsonObject | None
    decisions: list[DecisionOut]
    override: JsonObject | None
