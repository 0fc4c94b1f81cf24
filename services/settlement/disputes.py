"""Disputes (spec §7.2): either party contests a draft statement's line or an annotation.

The party that did not raise a dispute resolves it: ``upheld`` (it becomes an
annotation, or the withdrawal of the disputed one, and the period is
re-settled — an adjustment if it was issued meanwhile) or ``dismissed``
(closed with its note). An open dispute blocks the issue of its period
unless finance issues it with an ``override_reason``, which is recorded on
each dispute it overrode.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from schemas.db import annotation_table, disputes
from schemas.governance import DisputeIn
from schemas.periods import Period
from schemas.vocabulary import DisputeOutcome, Party
from services.errors import Conflict, Forbidden, Invalid, NotFound
from services.settlement import contracts, statements


def _check_subject(conn: Connection, body: DisputeIn) -> None:
    period = Period.parse(body.period)
    if contracts.version_in_force(conn, body.contract_id, period) is None:
        raise Invalid(f"contract '{body.contract_id}' is not in force in {period}", field="period")
    if body.annotation_id is not None:
        owner = conn.execute(
            select(annotation_table.c.contract_id).where(
                annotation_table.c.id == body.annotation_id
            )
        ).scalar()
        if owner != body.contract_id:
            raise Invalid(
                f"annotation {body.annotation_id} is not an annotation of {body.contract_id}",
                field="annotation_id",
            )
        return
    rows = statements.rows_for(conn, body.contract_id, period)
    if not rows:
        raise Conflict(f"no statement for {body.contract_id} {period} yet: settle it first")
    if rows[-1].status != "draft":
        raise Conflict(
            f"the statement of {body.contract_id} {period} is issued and nothing is pending: "
            "later data or an annotation reaches it as an adjustment, which can be disputed"
        )


def raise_dispute(conn: Connection, body: DisputeIn, party: Party, by: str, as_admin: bool) -> Any:
    """Record a dispute; it blocks the issue of its period until resolved."""
    _check_subject(conn, body)
    return conn.execute(
        insert(disputes)
        .values(
            contract_id=body.contract_id,
            period=body.period,
            line_kind=body.line_kind,
            kpi=body.kpi,
            annotation_id=body.annotation_id,
            reason=body.reason,
            raised_party=party,
            raised_by=by,
            raised_at=datetime.now(UTC),
            raised_as_admin=as_admin,
            status="open",
        )
        .returning(disputes)
    ).one()


def get(conn: Connection, dispute_id: int, *, for_update: bool = False) -> Any:
    query = select(disputes).where(disputes.c.id == dispute_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        raise NotFound(f"no dispute {dispute_id}")
    return row


def listing(
    conn: Connection,
    contract_id: str,
    *,
    status: str | None = None,
    periods: Sequence[str] | None = None,
) -> list[Any]:
    query = select(disputes).where(disputes.c.contract_id == contract_id).order_by(disputes.c.id)
    if status is not None:
        query = query.where(disputes.c.status == status)
    if periods is not None:
        query = query.where(disputes.c.period.in_(list(periods)))
    return list(conn.execute(query))


def open_for(conn: Connection, contract_id: str, period: Period) -> list[Any]:
    return listing(conn, contract_id, status="open", periods=[str(period)])


def resolve(
    conn: Connection,
    dispute_id: int,
    party: Party,
    outcome: DisputeOutcome,
    note: str,
    by: str,
    as_admin: bool,
) -> Any:
    """The other party's resolution; what an upheld dispute became is added by ``settle``."""
    row = get(conn, dispute_id, for_update=True)
    if row.status != "open":
        raise Conflict(f"dispute {dispute_id} is {row.status} already")
    if party == row.raised_party:
        raise Forbidden(f"the {party} raised dispute {dispute_id}; the other party resolves it")
    conn.execute(
        update(disputes)
        .where(disputes.c.id == dispute_id)
        .values(
            status=outcome,
            resolved_party=party,
            resolved_by=by,
            resolved_at=datetime.now(UTC),
            resolved_as_admin=as_admin,
            note=note,
        )
    )
    return get(conn, dispute_id)


def record_result(conn: Connection, dispute_id: int, result: dict[str, Any]) -> Any:
    conn.execute(update(disputes).where(disputes.c.id == dispute_id).values(result=result))
    return get(conn, dispute_id)


def override(conn: Connection, rows: Sequence[Any], reason: str, by: str) -> None:
    """Finance issued over these open disputes: say so on each (they stay open)."""
    conn.execute(
        update(disputes)
        .where(disputes.c.id.in_([r.id for r in rows]))
        .values(override_reason=reason, overridden_by=by, overridden_at=datetime.now(UTC))
    )


def check_issue(
    conn: Connection, contract_id: str, period: Period, override_reason: str | None, by: str
) -> list[int]:
    """Refuse to issue over open disputes unless overridden; returns the disputes overridden."""
    blocking = open_for(conn, contract_id, period)
    if not blocking:
        return []
    ids = [r.id for r in blocking]
    if not override_reason:
        raise Conflict(
            f"open dispute(s) {', '.join(map(str, ids))} on {contract_id} {period}: resolve "
            'them, or issue with {"override_reason": "..."} to record why not',
            disputes=ids,
        )
    override(conn, blocking, override_reason, by)
    return ids


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def as_json(row: Any) -> dict[str, Any]:
    decisions = [
        {
            "party": row.raised_party,
            "decision": "raised",
            "by": row.raised_by,
            "at": row.raised_at.isoformat(),
            "reason": row.reason,
            "as_admin": row.raised_as_admin,
        }
    ]
    if row.resolved_at is not None:
        decisions.append(
            {
                "party": row.resolved_party,
                "decision": row.status,
                "by": row.resolved_by,
                "at": row.resolved_at.isoformat(),
                "reason": row.note,
                "as_admin": row.resolved_as_admin,
            }
        )
    return {
        "id": row.id,
        "contract_id": row.contract_id,
        "period": row.period.strip(),
        "line_kind": row.line_kind,
        "kpi": row.kpi,
        "annotation_id": row.annotation_id,
        "reason": row.reason,
        "raised_by_party": row.raised_party,
        "status": row.status,
        "note": row.note,
        "result": row.result,
        "decisions": decisions,
        "override": None
        if row.override_reason is None
        else {
            "reason": row.override_reason,
            "by": row.overridden_by,
            "at": _when(row.overridden_at),
        },
    }
