"""Corrective actions (spec §7.4): work one party owes, and whether it worked.

An action is ``open`` until its owner marks it ``done`` or either party
``dropped`` it (with a reason). It is created by hand or by a
``corrective_action`` proposal both parties accepted. Its effect is its KPI on
its devices in the periods before it was created against the periods after
it was done, measured from the settlement rollups (``measure``), so the
review sees whether what it decided worked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert, select, update

from schemas.contract import json_number
from schemas.db import actions as table
from schemas.db import statements
from schemas.governance import ActionIn
from schemas.periods import Period, local_date, period_of
from schemas.vocabulary import ActionStatus, KpiName, Party
from services.errors import Conflict, Forbidden, Invalid, NotFound
from services.settlement import contracts
from services.settlement.measure import Measured, measure, pooled

EFFECT_PERIODS = 3
"""How many periods before creation and after completion an effect compares."""


def _check(conn: Connection, contract_id: str, spec: ActionIn) -> None:
    latest = contracts.latest_version(conn, contract_id)
    foreign = sorted(set(spec.devices) - set(latest.terms.devices))
    if foreign:
        raise Invalid(
            f"device(s) {', '.join(foreign)} are not devices of this contract", field="devices"
        )
    if spec.proposal_id is not None:
        from schemas.db import proposals

        owner = conn.execute(
            select(proposals.c.contract_id).where(proposals.c.id == spec.proposal_id)
        ).scalar()
        if owner != contract_id:
            raise Invalid(
                f"proposal {spec.proposal_id} is not a proposal of {contract_id}",
                field="proposal_id",
            )


def create(
    conn: Connection, contract_id: str, spec: ActionIn, by: str, now: datetime | None = None
) -> Any:
    """Record an action; the same open work (owner, KPI, devices) is not recorded twice."""
    _check(conn, contract_id, spec)
    same = _open_same(conn, contract_id, spec)
    if same is not None:
        return same
    row = conn.execute(
        insert(table)
        .values(
            contract_id=contract_id,
            title=spec.title,
            owner=spec.owner,
            kpi=spec.kpi,
            devices=sorted(spec.devices),
            due=spec.due,
            proposal_id=spec.proposal_id,
            status="open",
            created_by=by,
            created_at=now or datetime.now(UTC),
        )
        .returning(table)
    ).one()
    return row


def _open_same(conn: Connection, contract_id: str, spec: ActionIn) -> Any:
    return open_same(conn, contract_id, spec.owner, spec.kpi, spec.devices)


def open_same(
    conn: Connection, contract_id: str, owner: str, kpi: str | None, devices: Sequence[str]
) -> Any:
    """The open action doing this work already (same owner, KPI and devices), if any."""
    rows = conn.execute(
        select(table).where(
            table.c.contract_id == contract_id,
            table.c.status == "open",
            table.c.owner == owner,
            table.c.kpi.is_(None) if kpi is None else table.c.kpi == kpi,
        )
    )
    return next((r for r in rows if sorted(r.devices) == sorted(devices)), None)


def get(conn: Connection, action_id: int, *, for_update: bool = False) -> Any:
    query = select(table).where(table.c.id == action_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        raise NotFound(f"no action {action_id}")
    return row


def listing(conn: Connection, contract_id: str, statuses: Sequence[str] | None = None) -> list[Any]:
    query = select(table).where(table.c.contract_id == contract_id).order_by(table.c.id)
    if statuses is not None:
        query = query.where(table.c.status.in_(list(statuses)))
    return list(conn.execute(query))


def close(
    conn: Connection,
    action_id: int,
    status: ActionStatus,
    party: Party | None,
    by: str,
    note: str | None,
    now: datetime | None = None,
) -> Any:
    """``done`` by the owner (or an admin); ``dropped`` by either party, with a reason."""
    row = get(conn, action_id, for_update=True)
    if row.status != "open":
        raise Conflict(f"action {action_id} is {row.status}; only open actions are closed")
    if status == "done" and party is not None and party != row.owner:
        raise Forbidden(f"the {row.owner} owns action {action_id}; only its owner completes it")
    if status == "dropped" and not note:
        raise Invalid("dropping an action needs a reason", field="reason")
    conn.execute(
        update(table)
        .where(table.c.id == action_id)
        .values(status=status, closed_by=by, closed_at=now or datetime.now(UTC), note=note)
    )
    return get(conn, action_id)


def _periods_before(period: Period, count: int) -> list[Period]:
    out: list[Period] = []
    for _ in range(count):
        period = period.prev()
        out.append(period)
    return list(reversed(out))


def _periods_after(period: Period, current: Period, count: int) -> list[Period]:
    out: list[Period] = []
    while len(out) < count and (period := period.next()) < current:
        out.append(period)
    return out


def _settled(conn: Connection, contract_id: str, periods: list[Period]) -> list[Period]:
    if not periods:
        return []
    found = set(
        conn.execute(
            select(statements.c.period).where(
                statements.c.contract_id == contract_id,
                statements.c.period.in_([str(p) for p in periods]),
            )
        ).scalars()
    )
    return [p for p in periods if str(p) in {f.strip() for f in found}]


def _side(measured: list[Measured], value: Decimal | None) -> dict[str, Any]:
    return {
        "periods": [
            {"period": str(m.period), "value": None if m.value is None else json_number(m.value)}
            for m in measured
        ],
        "value": None if value is None else json_number(value),
    }


def effect(conn: Connection, row: Any, now: datetime | None = None) -> dict[str, Any] | None:
    """The action's KPI on its devices before it was created and after it was done."""
    if row.kpi is None:
        return None
    kpi: KpiName = row.kpi
    tz = contracts.latest_version(conn, row.contract_id).terms.timezone
    current = period_of(now or datetime.now(UTC), tz)

    def measured(periods: list[Period]) -> list[Measured]:
        """Only settled periods count: a month nobody settled is not evidence yet."""
        settled = _settled(conn, row.contract_id, periods)
        found = [measure(conn, row.contract_id, row.devices, kpi, p) for p in settled]
        return [m for m in found if m is not None]

    before = measured(_periods_before(period_of(row.created_at, tz), EFFECT_PERIODS))
    after: list[Measured] = []
    if row.status == "done" and row.closed_at is not None:
        after = measured(_periods_after(period_of(row.closed_at, tz), current, EFFECT_PERIODS))
    b, a = pooled(before, kpi), pooled(after, kpi)
    result: dict[str, Any] = {
        "kpi": kpi,
        "before": _side(before, b),
        "after": _side(after, a),
        "change": None if a is None or b is None else json_number(a - b),
    }
    if row.status == "done" and not after:
        result["note"] = "no full period since it was done yet"
    return result


def overdue(row: Any, today: date) -> bool:
    return bool(row.status == "open" and row.due < today)


def as_json(conn: Connection, row: Any, now: datetime | None = None) -> dict[str, Any]:
    tz = contracts.latest_version(conn, row.contract_id).terms.timezone
    today = local_date(now or datetime.now(UTC), tz)
    return {
        "id": row.id,
        "contract_id": row.contract_id,
        "title": row.title,
        "owner": row.owner,
        "kpi": row.kpi,
        "devices": list(row.devices),
        "due": row.due.isoformat(),
        "proposal_id": row.proposal_id,
        "status": row.status,
        "overdue": overdue(row, today),
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "closed_by": row.closed_by,
        "closed_at": row.closed_at.isoformat() if row.closed_at else None,
        "note": row.note,
        "effect": effect(conn, row, now),
    }


def overdue_for(
    conn: Connection, contract_id: str, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Open actions past their due date (for the outlook and the review), oldest due first."""
    tz = contracts.latest_version(conn, contract_id).terms.timezone
    today = local_date(now or datetime.now(UTC), tz)
    rows = [r for r in listing(conn, contract_id, ["open"]) if overdue(r, today)]
    return [
        {
            "id": r.id,
            "title": r.title,
            "owner": r.owner,
            "kpi": r.kpi,
            "devices": list(r.devices),
            "due": r.due.isoformat(),
            "days_overdue": (today - r.due).days,
        }
        for r in sorted(rows, key=lambda r: r.due)
    ]
