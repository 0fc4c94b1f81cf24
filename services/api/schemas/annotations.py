"""Responses of ``routes/annotations.py`` (spec §1.3, §7.2)."""

from __future__ import annotations

from datetime import datetime

from services.api.schemas.base import DecisionOut, Out


class AnnotationOut(Out):
    """An annotation with each party's decision; ``party`` is ``None`` for an admin's fix."""

    id: int
    device_id: str
    from_ts: datetime
    to_ts: datetime
    cause: str
    note: str
    author: str
    created_at: datetime
    status: str
    party: str | None
    contract_id: str | None
    decisions: list[DecisionOut]
