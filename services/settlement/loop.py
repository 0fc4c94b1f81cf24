"""What the quarterly review needs to close the loop (spec §5, §7): decisions, disputes,
pending annotations, corrective actions and what earlier decisions changed since.

The review of a quarter is held after it; the decisions recorded during the
quarter are those of the previous review (and of the work between), so the
pack shows each of them with what it changed since: an accepted term change
by the KPI and the money of the periods settled under it (re-settled under
the terms it replaced, from the same rollups), a corrective action by its
KPI before and after.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from schemas.contract import json_number
from schemas.db import annotation_table, decisions, proposals
from schemas.periods import Period, Quarter, period_bounds
from schemas.vocabulary import PARTIES
from services.settlement import actions, contracts, disputes
from services.settlement.proposals import repository as proposals_repo
from services.settlement.proposals.history import settled_periods
from services.settlement.proposals.impact import impact

ZERO = Decimal(0)


def quarter_span(conn: Connection, contract_id: str, quarter: Quarter) -> tuple[datetime, datetime]:
    """The quarter's first and last instant in the contract's time zone."""
    tz = contracts.latest_version(conn, contract_id).terms.timezone
    first, _, last = quarter.months()
    return period_bounds(first, tz)[0], period_bounds(last, tz)[1]


def decisions_by_party(
    conn: Connection, contract_id: str, span: tuple[datetime, datetime], hidden: Collection[int]
) -> dict[str, list[dict[str, Any]]]:
    """Every decision recorded in ``span``, per party (proposals in ``hidden`` left out)."""
    rows = conn.execute(
        select(decisions)
        .where(
            decisions.c.contract_id == contract_id,
            decisions.c.decided_at >= span[0],
            decisions.c.decided_at < span[1],
        )
        .order_by(decisions.c.decided_at, decisions.c.id)
    )
    out: dict[str, list[dict[str, Any]]] = {party: [] for party in PARTIES}
    for r in rows:
        if r.object_type == "proposal" and r.object_id in hidden:
            continue
        out[r.party].append(
            {
                "object_type": r.object_type,
                "object_id": r.object_id,
                "decision": r.decision,
                "by": r.decided_by,
                "at": r.decided_at.isoformat(),
                "reason": r.reason,
                "as_admin": r.as_admin,
            }
        )
    return out


def disputes_for(conn: Connection, contract_id: str, quarter: Quarter) -> list[dict[str, Any]]:
    """Disputes about the quarter's months, and every dispute still open."""
    months = {str(p) for p in quarter.months()}
    rows = disputes.listing(conn, contract_id)
    return [disputes.as_json(r) for r in rows if r.status == "open" or r.period.strip() in months]


def pending_annotations(conn: Connection, contract_id: str) -> list[dict[str, Any]]:
    """Annotations one party made that the other has not approved yet (they count for nothing)."""
    rows = conn.execute(
        select(annotation_table)
        .where(
            annotation_table.c.contract_id == contract_id, annotation_table.c.status == "pending"
        )
        .order_by(annotation_table.c.from_ts, annotation_table.c.id)
    )
    return [
        {
            "id": r.id,
            "device_id": r.device_id,
            "from": r.from_ts.isoformat(),
            "to": r.to_ts.isoformat(),
            "cause": r.cause,
            "note": r.note,
            "author": r.author,
            "party": r.party,
            "awaiting": "customer" if r.party == "provider" else "provider",
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]


def actions_for(
    conn: Connection, contract_id: str, span: tuple[datetime, datetime], now: datetime
) -> list[dict[str, Any]]:
    """Every open action, and those worked on in the quarter, with effect and overdue flag."""
    rows = actions.listing(conn, contract_id)
    relevant = [
        r
        for r in rows
        if r.closed_at is None or (r.created_at < span[1] and r.closed_at >= span[0])
    ]
    return [actions.as_json(conn, r, now) for r in relevant]


def _since(conn: Connection, contract_id: str, version: int) -> list[Period]:
    settled = settled_periods(conn, contract_id)
    return [p for p, item in settled.items() if item.contract_version == version]


def _kpi_values(conn: Connection, contract_id: str, periods: list[Period], kpi: str) -> list[Any]:
    settled = settled_periods(conn, contract_id, periods[0], periods[-1]) if periods else {}
    return [
        {
            "period": str(p),
            "value": None if (v := item.body.kpis.get(kpi)) is None else json_number(v),
        }
        for p, item in settled.items()
        if p in periods
    ]


def _changed_since(conn: Connection, row: Any, now: datetime) -> dict[str, Any] | None:
    """What an accepted proposal changed in KPIs and money in the periods since."""
    if row.status != "accepted":
        return None
    if row.action_id is not None:
        return {"action": actions.as_json(conn, actions.get(conn, row.action_id), now)}
    if row.accepted_version is None:
        return None
    periods = _since(conn, row.contract_id, row.accepted_version)
    result: dict[str, Any] = {"version": row.accepted_version, "periods": [str(p) for p in periods]}
    if row.kpi is not None:
        result["kpi"] = {
            "kpi": row.kpi,
            "before": [{"period": e["period"], "value": e.get("value")} for e in row.evidence],
            "since": _kpi_values(conn, row.contract_id, periods, row.kpi),
        }
    if periods and row.accepted_version > 1:
        new = contracts.get_version(conn, row.contract_id, row.accepted_version).terms
        old = contracts.get_version(conn, row.contract_id, row.accepted_version - 1).terms
        money = impact(
            conn, row.contract_id, new, old.model_copy(update={"devices": new.devices}), periods
        )
        # ``money`` re-settles the periods under the replaced terms: its difference is what
        # the old terms would have changed; the accepted change did the opposite.
        total = -Decimal(money["total"]["difference"])
        result["money"] = {
            "currency": money["currency"],
            "net_under_new_terms": money["total"]["current_net"],
            "net_under_replaced_terms": money["total"]["proposed_net"],
            "difference": format(total, "f"),
            "parties": {"provider": format(total, "f"), "customer": format(-total, "f")},
        }
    return result


def decided_proposals(
    conn: Connection,
    contract_id: str,
    span: tuple[datetime, datetime],
    provider: bool,
    hidden_kinds: Collection[str],
    now: datetime,
) -> list[dict[str, Any]]:
    """Proposals decided in ``span`` (the previous review's decisions) and what they did."""
    rows = conn.execute(
        select(proposals)
        .where(
            proposals.c.contract_id == contract_id,
            proposals.c.status.in_(["accepted", "rejected"]),
            proposals.c.decided_at >= span[0],
            proposals.c.decided_at < span[1],
        )
        .order_by(proposals.c.decided_at, proposals.c.id)
    )
    out = []
    for row in rows:
        if not provider and row.kind in hidden_kinds:
            continue
        out.append({**proposals_repo.as_json(row), "changed_since": _changed_since(conn, row, now)})
    return out
