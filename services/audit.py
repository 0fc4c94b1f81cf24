"""The audit trail: who changed what, when and from where (append-only in the database)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from schemas.db import audit_log


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    role: str | None = None,
    party: str | None = None,
    source: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry in the caller's transaction, so it commits with the change itself."""
    conn.execute(
        insert(audit_log).values(
            actor=actor,
            role=role,
            party=party,
            action=action,
            object_type=object_type,
            object_id=object_id,
            source=source,
            details=details or {},
        )
    )


def listing(
    conn: Connection,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    for col, value in (
        (audit_log.c.object_type, object_type),
        (audit_log.c.object_id, object_id),
        (audit_log.c.action, action),
    ):
        if value is not None:
            q = q.where(col == value)
    if before is not None:
        q = q.where(audit_log.c.id < before)
    return [{**r, "at": r["at"].isoformat()} for r in (dict(m) for m in conn.execute(q).mappings())]
