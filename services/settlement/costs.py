"""The provider's cost to serve a contract, per period (spec §2): its input to the value split.

Costs are append-only entries, like ledger lines: a wrong entry is corrected
by posting a negative one, so a margin shown in a review can always be traced
back to what was recorded then.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from sqlalchemy import Connection, func, insert, select

from schemas.db import costs
from schemas.money import decimal_context, minor_unit, round_money
from schemas.periods import Period
from services.errors import Invalid
from services.settlement import contracts

MAX_AMOUNT = Decimal("1e15")


def _amount(value: Any) -> Any:
    """Money is a decimal string; a float has already lost its cents."""
    if isinstance(value, bool | float):
        raise ValueError('amount must be a decimal string such as "1250.00"')
    return str(value).strip() if isinstance(value, int | str) else value


class CostIn(BaseModel):
    """One cost entry as posted by the provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    period: Annotated[str, StringConstraints(pattern=r"^[1-9]\d{3}-(0[1-9]|1[0-2])$")]
    amount: Annotated[
        Decimal,
        BeforeValidator(_amount),
        Field(allow_inf_nan=False, gt=-MAX_AMOUNT, lt=MAX_AMOUNT),
    ]
    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    note: Annotated[str, StringConstraints(max_length=2000)] = ""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None


def _currency_of(conn: Connection, contract_id: str, period: Period) -> str:
    version = contracts.version_in_force(conn, contract_id, period)
    if version is None:
        raise Invalid(f"contract '{contract_id}' is not in force in {period}", field="period")
    return version.terms.currency


def add_cost(conn: Connection, contract_id: str, entry: CostIn, by: str) -> dict[str, Any]:
    """Record one entry in the contract's currency of that period."""
    period = Period.parse(entry.period)
    currency = _currency_of(conn, contract_id, period)
    if entry.currency is not None and entry.currency != currency:
        raise Invalid(f"the contract settles {period} in {currency}", field="currency")
    if entry.amount != round_money(entry.amount, currency):
        raise Invalid(f"{currency} has {minor_unit(currency)} decimal places", field="amount")
    row = conn.execute(
        insert(costs)
        .values(
            contract_id=contract_id,
            period=str(period),
            amount=entry.amount,
            currency=currency,
            category=entry.category,
            note=entry.note,
            created_by=by,
            created_at=datetime.now(UTC),
        )
        .returning(costs)
    ).one()
    return cost_json(row)


def cost_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "contract_id": row.contract_id,
        "period": row.period,
        "amount": format(row.amount, "f"),
        "currency": row.currency,
        "category": row.category,
        "note": row.note,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
    }


def list_costs(conn: Connection, contract_id: str, first: Period, last: Period) -> list[Any]:
    return list(
        conn.execute(
            select(costs)
            .where(
                costs.c.contract_id == contract_id,
                costs.c.period >= str(first),
                costs.c.period <= str(last),
            )
            .order_by(costs.c.period, costs.c.id)
        )
    )


def costs_by_period(
    conn: Connection, contract_id: str, periods: Iterable[Period]
) -> dict[Period, Decimal]:
    """Total recorded cost per period; periods without entries are absent (unknown)."""
    wanted = [str(p) for p in periods]
    rows = conn.execute(
        select(costs.c.period, func.sum(costs.c.amount).label("total"))
        .where(costs.c.contract_id == contract_id, costs.c.period.in_(wanted))
        .group_by(costs.c.period)
    )
    with decimal_context():
        return {Period.parse(r.period.strip()): Decimal(r.total) for r in rows}
