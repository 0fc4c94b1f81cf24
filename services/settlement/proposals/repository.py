"""The ``proposals`` table: the only module that reads or writes it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from schemas.db import proposals
from schemas.vocabulary import PROPOSAL_STATUSES
from services.errors import NotFound
from services.settlement.proposals.base import Proposal

STATUSES = PROPOSAL_STATUSES


def _values(p: Proposal, version: int, impact: dict[str, Any]) -> dict[str, Any]:
    f = p.finding
    return {
        "based_on_version": version,
        "window_from": str(f.window[0]),
        "window_to": str(f.window[1]),
        "evidence": f.evidence,
        "current": p.current,
        "proposed": p.proposed,
        "proposed_terms": None
        if p.proposed_terms is None
        else p.proposed_terms.model_dump(mode="json"),
        "rationale": p.rationale,
        "impact": impact,
        "updated_at": datetime.now(UTC),
    }


def add(
    conn: Connection, contract_id: str, p: Proposal, version: int, impact: dict[str, Any]
) -> int:
    f = p.finding
    row = conn.execute(
        insert(proposals)
        .values(
            contract_id=contract_id,
            kind=f.kind,
            remedy=p.remedy,
            subject=f.subject,
            kpi=f.kpi,
            term=f.term,
            status="open",
            created_at=datetime.now(UTC),
            **_values(p, version, impact),
        )
        .returning(proposals.c.id)
    ).one()
    return int(row.id)


def refresh(
    conn: Connection, proposal_id: int, p: Proposal, version: int, impact: dict[str, Any]
) -> None:
    """The same drift seen again: new evidence and impact, same proposal."""
    conn.execute(
        update(proposals)
        .where(proposals.c.id == proposal_id)
        .values(term=p.finding.term, remedy=p.remedy, **_values(p, version, impact))
    )


def supersede(conn: Connection, proposal_id: int, reason: str, by: int | None = None) -> None:
    conn.execute(
        update(proposals)
        .where(proposals.c.id == proposal_id, proposals.c.status == "open")
        .values(status="superseded", reason=reason, superseded_by=by, updated_at=datetime.now(UTC))
    )


def link_successor(conn: Connection, proposal_id: int, successor: int) -> None:
    conn.execute(
        update(proposals).where(proposals.c.id == proposal_id).values(superseded_by=successor)
    )


def decide(
    conn: Connection,
    proposal_id: int,
    status: str,
    by: str,
    *,
    reason: str | None = None,
    accepted_version: int | None = None,
    action_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """The proposal's final state, once both parties accepted or one rejected."""
    now = at or datetime.now(UTC)
    conn.execute(
        update(proposals)
        .where(proposals.c.id == proposal_id)
        .values(
            status=status,
            decided_by=by,
            decided_at=now,
            reason=reason,
            accepted_version=accepted_version,
            action_id=action_id,
            updated_at=now,
        )
    )


def get(conn: Connection, proposal_id: int, *, for_update: bool = False) -> Any:
    query = select(proposals).where(proposals.c.id == proposal_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        raise NotFound(f"no proposal {proposal_id}")
    return row


def open_for(conn: Connection, contract_id: str) -> list[Any]:
    return list_for(conn, contract_id, ("open",))


def list_for(conn: Connection, contract_id: str, statuses: Sequence[str] = STATUSES) -> list[Any]:
    return list(
        conn.execute(
            select(proposals)
            .where(proposals.c.contract_id == contract_id, proposals.c.status.in_(statuses))
            .order_by(proposals.c.id.desc())
        )
    )


def was_rejected(conn: Connection, contract_id: str, p: Proposal) -> bool:
    """Whether this very change was already rejected: do not nag with it again."""
    rows = conn.execute(
        select(proposals.c.proposed).where(
            proposals.c.contract_id == contract_id,
            proposals.c.kind == p.finding.kind,
            proposals.c.subject == p.finding.subject,
            proposals.c.status == "rejected",
        )
    )
    return any(r.proposed == p.proposed for r in rows)


def as_json(row: Any) -> dict[str, Any]:
    """A proposal as the API shows it."""
    return {
        "id": row.id,
        "contract_id": row.contract_id,
        "kind": row.kind,
        "remedy": row.remedy,
        "kpi": row.kpi,
        "term": row.term,
        "status": row.status,
        "window": {"from": row.window_from, "to": row.window_to},
        "based_on_version": row.based_on_version,
        "evidence": row.evidence,
        "current": row.current,
        "proposed": row.proposed,
        "rationale": row.rationale,
        "impact": row.impact,
        "proposed_terms": row.proposed_terms,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "reason": row.reason,
        "accepted_version": row.accepted_version,
        "action_id": row.action_id,
        "superseded_by": row.superseded_by,
    }
