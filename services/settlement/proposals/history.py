"""A contract's statement history: one full statement per settled period.

Detectors, the value split and the review pack all judge a period by the
statement both parties agreed on: the issued one, or — once late data led to
an *issued* adjustment — the re-settled statement that adjustment carries.
A period that was never issued is judged by its current draft.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from schemas.db import statements
from schemas.periods import Period
from schemas.statement import StatementBody

ADJUSTMENT_KEYS = ("adjusts", "resettled")


@dataclass(frozen=True)
class SettledPeriod:
    """The statement that stands for one period, and where it came from."""

    period: Period
    body: StatementBody
    contract_version: int
    status: str
    adjusted: bool


def full_statement(rows: Sequence[Any]) -> SettledPeriod | None:
    """The statement standing for a period, given its rows ordered by seq."""
    if not rows:
        return None
    issued_adjustments = [r for r in rows if r.seq > 0 and r.status == "issued"]
    row = issued_adjustments[-1] if issued_adjustments else rows[0]
    body = dict(row.body)
    body = body.get("resettled", body)
    clean = {k: v for k, v in body.items() if k not in ADJUSTMENT_KEYS}
    return SettledPeriod(
        period=Period.parse(row.period.strip()),
        body=StatementBody.model_validate(clean),
        contract_version=row.contract_version,
        status=row.status,
        adjusted=bool(issued_adjustments),
    )


def settled_periods(
    conn: Connection, contract_id: str, first: Period | None = None, last: Period | None = None
) -> dict[Period, SettledPeriod]:
    """Every settled period of ``contract_id`` in ``[first, last]``, oldest first."""
    query = select(statements).where(statements.c.contract_id == contract_id)
    if first is not None:
        query = query.where(statements.c.period >= str(first))
    if last is not None:
        query = query.where(statements.c.period <= str(last))
    grouped: dict[str, list[Any]] = {}
    for row in conn.execute(query.order_by(statements.c.period, statements.c.seq)):
        grouped.setdefault(row.period, []).append(row)
    result: dict[Period, SettledPeriod] = {}
    for rows in grouped.values():
        settled = full_statement(rows)
        if settled is not None:
            result[settled.period] = settled
    return result


def latest_run(
    conn: Connection, contract_id: str, before: Period, limit: int
) -> list[SettledPeriod]:
    """The latest run of consecutive settled periods before ``before`` (at most ``limit``).

    Anchored at the latest settled period, not at ``before``: a contract whose
    last settled month lies a while back is still judged on its last ``limit``
    months. A gap ends the run; which version settled a period is for each
    detector to weigh (``Facts.window``).
    """
    last = conn.execute(
        select(func.max(statements.c.period)).where(
            statements.c.contract_id == contract_id, statements.c.period < str(before)
        )
    ).scalar()
    if last is None:
        return []
    period = first = Period.parse(last.strip())
    for _ in range(limit - 1):
        first = first.prev()
    settled = settled_periods(conn, contract_id, first, period)
    run: list[SettledPeriod] = []
    while len(run) < limit and period in settled:
        run.append(settled[period])
        period = period.prev()
    return list(reversed(run))
