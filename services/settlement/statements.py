"""Statements (spec §3.4): drafts recomputed on every run, issued ones never touched.

A run over a period whose statement is issued never edits it; if the inputs
changed, it writes an *adjustment* statement carrying the difference,
referencing the last issued statement of that period and saying what changed
(``services.settlement.adjustments``).

Every statement is a document finance can invoice from: its ``number`` is
``{contract_id}-{period}-{seq}`` (``ACME-CRUSH-01-2026-10-0`` for the
statement, ``…-1`` for its first adjustment): unique because (contract,
period, seq) is, and stable because none of the three ever changes. Rows come
with the contract's parties and the time zone of the version that settled
them, so the period's local dates can be printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Select, and_, delete, insert, select, text, update

from schemas.db import contract_versions, contracts, statements
from schemas.money import round_money
from schemas.periods import Period
from schemas.statement import StatementBody
from services.errors import Conflict, NotFound
from services.settlement import adjustments

Outcome = Literal["created", "updated", "unchanged", "adjustment", "adjustment_updated"]


@dataclass(frozen=True)
class Computed:
    """A freshly computed statement for one (contract, period), not yet stored."""

    contract_id: str
    period: Period
    contract_version: int
    body: StatementBody
    digest: str
    watermark: datetime | None

    @property
    def body_json(self) -> dict[str, Any]:
        return self.body.model_dump(mode="json")


def lock(conn: Connection, contract_id: str, period: Period) -> None:
    """Serialise work on one (contract, period) across processes and replicas."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('viu.settle'), hashtext(:key))"),
        {"key": f"{contract_id}/{period}"},
    )


def number(contract_id: str, period: str, seq: int) -> str:
    """The statement number finance quotes: ``ACME-CRUSH-01-2026-10-0``."""
    return f"{contract_id}-{period}-{seq}"


def period_dates(period: Period) -> tuple[date, date]:
    """First and last local day of the period (the end is inclusive, as on an invoice)."""
    return period.first_day, period.next().first_day - timedelta(days=1)


def documents() -> Select[Any]:
    """Statements with what an invoice needs besides: the parties and the time zone."""
    return (
        select(
            statements,
            contracts.c.provider,
            contracts.c.customer,
            contract_versions.c.body["timezone"].astext.label("timezone"),
        )
        .join(contracts, contracts.c.contract_id == statements.c.contract_id)
        .join(
            contract_versions,
            and_(
                contract_versions.c.contract_id == statements.c.contract_id,
                contract_versions.c.version == statements.c.contract_version,
            ),
        )
    )


def rows_for(conn: Connection, contract_id: str, period: Period) -> list[Any]:
    """Every statement of one contract and period, the original first."""
    return list(
        conn.execute(
            documents()
            .where(statements.c.contract_id == contract_id, statements.c.period == str(period))
            .order_by(statements.c.seq)
        )
    )


def of_contract(conn: Connection, contract_id: str) -> list[Any]:
    """Every statement of one contract, newest period first, each period's original first."""
    return list(
        conn.execute(
            documents()
            .where(statements.c.contract_id == contract_id)
            .order_by(statements.c.period.desc(), statements.c.seq)
        )
    )


def of_period(conn: Connection, period: Period, visible: ColumnElement[bool]) -> list[Any]:
    """Every statement of a period on the contracts ``visible`` admits (the finance export)."""
    return list(
        conn.execute(
            documents()
            .where(statements.c.period == str(period), visible)
            .order_by(statements.c.contract_id, statements.c.seq)
        )
    )


def store(conn: Connection, c: Computed) -> Outcome:
    """Write ``c`` as the draft or adjustment it implies; idempotent for equal inputs."""
    rows = rows_for(conn, c.contract_id, c.period)
    if not rows:
        _insert(conn, c, seq=0, body=c.body_json, net=c.body.net, adjusts=None)
        return "created"
    last = rows[-1]
    if last.status == "draft" and last.seq == 0:
        return (
            "unchanged"
            if last.inputs_digest == c.digest
            else _update(conn, last, c, c.body_json, c.body.net, "updated")
        )
    issued = [r for r in rows if r.status == "issued"][-1]
    if issued.inputs_digest == c.digest:
        if last.status == "draft":
            conn.execute(delete(statements).where(statements.c.id == last.id))
        return "unchanged"
    if last.status == "draft" and last.inputs_digest == c.digest:
        return "unchanged"
    body, net = adjustment_body(issued, c)
    body["changes"] = _changes(conn, issued, c)
    if last.status == "draft":
        return _update(conn, last, c, body, net, "adjustment_updated")
    _insert(conn, c, seq=last.seq + 1, body=body, net=net, adjusts=issued.id)
    return "adjustment"


def _changes(conn: Connection, issued: Any, c: Computed) -> dict[str, Any]:
    timezone = conn.execute(
        select(contract_versions.c.body["timezone"].astext).where(
            contract_versions.c.contract_id == c.contract_id,
            contract_versions.c.version == c.contract_version,
        )
    ).scalar_one()
    return adjustments.explain(
        conn,
        issued,
        c.body_json,
        period=c.period,
        timezone=str(timezone),
        contract_version=c.contract_version,
        watermark=c.watermark,
    )


def _values(c: Computed, body: dict[str, Any], net: Decimal) -> dict[str, Any]:
    """What every (re)computation writes: the result and where it came from."""
    return {
        "contract_version": c.contract_version,
        "currency": c.body.currency,
        "net": net,
        "body": body,
        "inputs_digest": c.digest,
        "watermark": c.watermark,
        "computed_at": datetime.now(UTC),
    }


def _insert(
    conn: Connection,
    c: Computed,
    *,
    seq: int,
    body: dict[str, Any],
    net: Decimal,
    adjusts: int | None,
) -> None:
    conn.execute(
        insert(statements).values(
            contract_id=c.contract_id,
            period=str(c.period),
            seq=seq,
            status="draft",
            adjusts_id=adjusts,
            **_values(c, body, net),
        )
    )


def _update(
    conn: Connection, row: Any, c: Computed, body: dict[str, Any], net: Decimal, outcome: Outcome
) -> Outcome:
    conn.execute(
        update(statements).where(statements.c.id == row.id).values(**_values(c, body, net))
    )
    return outcome


def _resettled(row: Any) -> dict[str, Any]:
    """The full statement an issued row stands for (adjustments carry it inside)."""
    body: dict[str, Any] = row.body
    full: dict[str, Any] = body.get("resettled", body)
    return full


def _line_key(line: dict[str, Any]) -> tuple[str, str]:
    return line["kind"], line.get("kpi") or ""


def adjustment_body(issued: Any, c: Computed) -> tuple[dict[str, Any], Decimal]:
    """The difference between the re-settled statement and what was issued."""
    before = _resettled(issued)
    after = c.body_json
    old = {_line_key(ln): Decimal(ln["amount"]) for ln in before["lines"]}
    new = {_line_key(ln): ln for ln in after["lines"]}
    lines = []
    for key in list(dict.fromkeys([*old, *new])):
        was = old.get(key, Decimal(0))
        now_line = new.get(key)
        now = Decimal(now_line["amount"]) if now_line else Decimal(0)
        diff = round_money(now - was, c.body.currency)
        if diff == 0:
            continue
        why = now_line["explanation"] if now_line else "no longer applies"
        lines.append(
            {
                "kind": key[0],
                **({"kpi": key[1]} if key[1] else {}),
                "amount": _fmt(diff, c.body.currency),
                "explanation": f"adjustment: issued {_fmt(was, c.body.currency)}, "
                f"re-settled {_fmt(now, c.body.currency)} ({why})",
            }
        )
    net = round_money(Decimal(after["net"]) - Decimal(before["net"]), c.body.currency)
    body = {
        **after,
        "lines": lines,
        "net": _fmt(net, c.body.currency),
        "adjusts": {
            "id": issued.id,
            "seq": issued.seq,
            "number": number(issued.contract_id, issued.period, issued.seq),
            "net": before["net"],
        },
        "resettled": after,
    }
    return body, net


def _fmt(amount: Decimal, currency: str) -> str:
    return str(round_money(amount, currency))


def issue(conn: Connection, contract_id: str, period: Period, by: str) -> Any:
    """Issue the pending draft (original or adjustment) of a period."""
    rows = rows_for(conn, contract_id, period)
    if not rows:
        raise NotFound(f"no statement for {contract_id} {period}; run settlement first")
    last = rows[-1]
    if last.status == "issued":
        raise Conflict(f"statement {contract_id} {period} is issued and nothing changed since")
    conn.execute(
        update(statements)
        .where(statements.c.id == last.id)
        .values(status="issued", issued_at=datetime.now(UTC), issued_by=by)
    )
    return rows_for(conn, contract_id, period)[-1]
