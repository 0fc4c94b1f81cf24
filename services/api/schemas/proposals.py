"""Responses of ``routes/proposals.py`` (spec §4, §7.1).

``evidence``, ``current``, ``proposed``, ``impact`` and ``proposed_terms``
depend on the proposal's kind and remedy (docs/proposals.md describes them).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from services.api.schemas.base import DecisionOut, JsonObject, Out, PeriodText, Timestamp


class Window(Out):
    from_: PeriodText = Field(alias="from")
    to: PeriodText


class ProposalOut(Out):
    id: int
    contract_id: str
    kind: str
    remedy: str
    kpi: str | None
    term: str
    status: str
    window: Window
    based_on_version: int
    evidence: Any
    current: Any
    proposed: Any
    rationale: str
    impact: JsonObject
    proposed_terms: JsonObject | None
    created_at: Timestamp
    updated_at: Timestamp
    decided_by: str | None
    decided_at: Timestamp | None
    reason: str | None
    accepted_version: int | None
    action_id: int | None
    superseded_by: int | None
    decisions: list[DecisionOut]


class DetectOut(Out):
    """What a detection run did, by proposal id, and the open proposals after it."""

    created: list[int]
    updated: list[int]
    superseded: list[int]
    open: list[ProposalOut]
