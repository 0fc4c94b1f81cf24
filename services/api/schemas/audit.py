"""Responses of ``routes/audit.py``."""

from __future__ import annotations

from services.api.schemas.base import JsonObject, Out, Timestamp


class AuditEntry(Out):
    id: int
    at: Timestamp
    actor: str
    role: str | None
    party: str | None
    action: str
    object_type: str
    object_id: str
    source: str | None
    details: JsonObject
    """What the action recorded; its keys depend on ``action``."""


class AuditPage(Out):
    items: list[AuditEntry]
    next_before: int | None
