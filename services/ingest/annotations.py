"""Annotations: after-the-fact downtime classification (spec §1.3, §7.2).

An annotation moves money between the parties, so one party's annotation is
``pending`` until the other party approves it, and only ``approved`` ones
count (``rollups.effective_cause``). A contract may waive this
(``"annotation_approval": "none"``); an annotation without a party (an admin
token's data fix) counts at once. The content of an annotation never
changes, only its status.

Whenever an annotation starts or stops counting, the rollups it covers are
re-computed in the same transaction, under an exclusive per-device lock so
that no concurrent write can add a delta computed with the cause the
annotation just replaced. An issued month is never edited: the next
settlement run writes an adjustment.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, text, update

from schemas.db import annotation_table as table
from schemas.db import contract_versions, devices
from schemas.telemetry import Annotation
from schemas.vocabulary import AnnotationDecision, AnnotationStatus, Party
from services import decisions
from services.errors import Conflict, Forbidden, NotFound
from services.ingest.rollups import FOLD_LOCK, rebuild_rollups

KIND = "annotation"


def _lock_device(conn: Connection, device_id: str) -> None:
    """The device's exclusive lock (writes hold it shared), after the rollups' fold lock.

    ``rebuild_rollups`` needs the fold lock; taken there, after a device
    lock, two transactions annotating two devices each (a dispute upheld
    writes one annotation and withdraws another) could each hold a device
    lock the other waits for. Taken first, every annotation transaction
    locks in one order: the fold lock, then devices. Writers never take the
    fold lock, folds never take a device lock.
    """
    conn.execute(text(FOLD_LOCK))
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('viu.device:' || :d, 0))"),
        {"d": device_id},
    )


def _contract_of(conn: Connection, device_id: str) -> str | None:
    row = conn.execute(
        select(devices.c.contract_id).where(devices.c.device_id == device_id)
    ).first()
    return None if row is None else str(row.contract_id)


def approval_waived(conn: Connection, contract_id: str) -> bool:
    """Whether the contract's latest terms say ``"annotation_approval": "none"``."""
    body = conn.execute(
        select(contract_versions.c.body)
        .where(contract_versions.c.contract_id == contract_id)
        .order_by(contract_versions.c.version.desc())
        .limit(1)
    ).scalar()
    return isinstance(body, dict) and body.get("annotation_approval") == "none"


def create(
    conn: Connection,
    note: Annotation,
    author: str,
    *,
    party: Party | None = None,
    approved: bool = False,
) -> dict[str, Any]:
    """Store an annotation; it counts at once unless it waits for the other party.

    ``party`` is the author's party (``None``: an admin's data fix);
    ``approved`` says both parties already agreed (an upheld dispute).
    """
    _lock_device(conn, note.device_id)
    contract_id = _contract_of(conn, note.device_id)
    waits = party is not None and not approved
    if waits and contract_id is not None and approval_waived(conn, contract_id):
        waits = False
    status: AnnotationStatus = "pending" if waits else "approved"
    row = (
        conn.execute(
            insert(table)
            .values(
                device_id=note.device_id,
                from_ts=note.from_ts,
                to_ts=note.to_ts,
                cause=note.cause,
                note=note.note,
                author=note.author or author,
                created_at=text("clock_timestamp()"),
                status=status,
                party=party,
                contract_id=contract_id,
            )
            .returning(table)
        )
        .mappings()
        .one()
    )
    if party is not None and contract_id is not None:
        decisions.record(conn, KIND, row["id"], contract_id, party, "approved", author)
    if status == "approved":
        rebuild_rollups(conn, note.device_id, note.from_ts, note.to_ts)
    return _json(conn, row)


def get(conn: Connection, annotation_id: int, *, for_update: bool = False) -> Any:
    query = select(table).where(table.c.id == annotation_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        raise NotFound(f"no annotation {annotation_id}")
    return row


def decide(
    conn: Connection,
    annotation_id: int,
    party: Party,
    decision: AnnotationDecision,
    by: str,
    *,
    reason: str | None = None,
    as_admin: bool = False,
) -> dict[str, Any]:
    """The other party approves or rejects a pending annotation."""
    row = get(conn, annotation_id)
    _lock_device(conn, row.device_id)
    row = get(conn, annotation_id, for_update=True)
    if row.status != "pending":
        raise Conflict(f"annotation {annotation_id} is {row.status}; only pending ones are decided")
    if row.party == party:
        raise Forbidden(f"the {party} wrote annotation {annotation_id}; the other party decides")
    decisions.record(
        conn, KIND, row.id, row.contract_id, party, decision, by, reason=reason, as_admin=as_admin
    )
    set_status(conn, row, "approved" if decision == "approved" else "rejected")
    return _json(conn, get(conn, annotation_id)._mapping)


def set_status(conn: Connection, row: Any, status: AnnotationStatus) -> None:
    """Change whether an annotation counts, and re-compute what it covers if that changed."""
    _lock_device(conn, row.device_id)
    conn.execute(update(table).where(table.c.id == row.id).values(status=status))
    if (row.status == "approved") != (status == "approved"):
        rebuild_rollups(conn, row.device_id, row.from_ts, row.to_ts)


def _json(conn: Connection, row: Any) -> dict[str, Any]:
    out = dict(row)
    out["decisions"] = decisions.listing(conn, KIND, [row["id"]])[row["id"]]
    return out


def listing(
    conn: Connection,
    device_id: str | None = None,
    *,
    contract_id: str | None = None,
    status: AnnotationStatus | None = None,
) -> list[dict[str, Any]]:
    stmt = select(table).order_by(table.c.from_ts, table.c.id)
    if device_id is not None:
        stmt = stmt.where(table.c.device_id == device_id)
    if contract_id is not None:
        stmt = stmt.where(table.c.contract_id == contract_id)
    if status is not None:
        stmt = stmt.where(table.c.status == status)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    decided = decisions.listing(conn, KIND, [r["id"] for r in rows])
    return [{**r, "decisions": decided[r["id"]]} for r in rows]
