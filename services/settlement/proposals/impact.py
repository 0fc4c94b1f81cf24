"""Impact and what-if: re-settle stored usage under other terms, compare with the current ones.

Both sides are settled now by ``engine.settle`` from the same usage (the
rollups as they are), so the difference is caused by the terms alone, not by
data that arrived after a statement was issued. Nothing is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from schemas.contract import ContractTerms
from schemas.money import format_money, round_money
from schemas.periods import Period
from schemas.statement import StatementBody
from schemas.vocabulary import LINE_KINDS
from services.errors import Invalid
from services.settlement import contracts
from services.settlement.engine import settle
from services.settlement.ownership import ever_owned, owned_terms
from services.settlement.usage import load_usage

ZERO = Decimal(0)


def _by_kind(body: StatementBody) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {kind: ZERO for kind in LINE_KINDS}
    for line in body.lines:
        sums[line.kind] += line.amount
    return sums


def compare(before: StatementBody, after: StatementBody) -> dict[str, Any]:
    """One period: both nets, their difference, and the difference per line kind."""
    old, new = _by_kind(before), _by_kind(after)
    return {
        "period": before.period,
        "current_net": format(before.net, "f"),
        "proposed_net": format(after.net, "f"),
        "difference": format(after.net - before.net, "f"),
        "lines": {k: format(new[k] - old[k], "f") for k in LINE_KINDS if new[k] != old[k]},
    }


def parties(difference: Decimal, currency: str) -> dict[str, str]:
    """How each party's money moves: what the customer pays more, the provider receives."""
    amount = round_money(difference, currency)
    return {"provider": format(amount, "f"), "customer": format(-amount, "f")}


def _sum(rows: Sequence[dict[str, Any]], key: str, currency: str) -> str:
    return format_money(sum((Decimal(r[key]) for r in rows), ZERO), currency)


def summarise(rows: Sequence[dict[str, Any]], currency: str) -> dict[str, Any]:
    total = sum((Decimal(r["difference"]) for r in rows), ZERO)
    return {
        "currency": currency,
        "periods": list(rows),
        "total": {
            "current_net": _sum(rows, "current_net", currency),
            "proposed_net": _sum(rows, "proposed_net", currency),
            "difference": _sum(rows, "difference", currency),
        },
        "parties": parties(total, currency),
    }


def resettle_pair(
    conn: Connection,
    contract_id: str,
    current: ContractTerms,
    other: ContractTerms,
    period: Period,
) -> tuple[StatementBody, StatementBody]:
    """``period`` settled under both terms, each reading only the contract's devices of then."""
    current = owned_terms(conn, contract_id, current, period)
    other = owned_terms(conn, contract_id, other, period)
    usage, _ = load_usage(conn, current, period)
    other_usage = usage if other.devices == current.devices else load_usage(conn, other, period)[0]
    return settle(current, period, usage), settle(other, period, other_usage)


def impact(
    conn: Connection,
    contract_id: str,
    current: ContractTerms,
    proposed: ContractTerms,
    periods: Sequence[Period],
) -> dict[str, Any]:
    """The window re-settled under the proposed terms, with each party's difference."""
    rows = [compare(*resettle_pair(conn, contract_id, current, proposed, p)) for p in periods]
    return summarise(rows, current.currency)


def _check_devices(conn: Connection, contract_id: str, alternative: ContractTerms) -> None:
    """What-if terms may only read the contract's own devices' data."""
    foreign = sorted(set(alternative.devices) - ever_owned(conn, contract_id))
    if foreign:
        raise Invalid(
            f"device(s) {', '.join(foreign)} are not devices of this contract",
            field="terms.devices",
        )


def simulate(
    conn: Connection, contract_id: str, alternative: ContractTerms, first: Period, last: Period
) -> dict[str, Any]:
    """Every period in ``[first, last]`` settled under the terms in force and under
    ``alternative``, with the differences; periods before the contract are skipped."""
    _check_devices(conn, contract_id, alternative)
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    period = first
    while period <= last:
        version = contracts.version_in_force(conn, contract_id, period)
        if version is None:
            skipped.append(str(period))
        elif version.terms.currency != alternative.currency:
            raise Invalid(
                f"the contract settles {period} in {version.terms.currency}",
                field="terms.currency",
            )
        else:
            before, after = resettle_pair(conn, contract_id, version.terms, alternative, period)
            results.append(
                {
                    "period": str(period),
                    "contract_version": version.version,
                    "current": before.model_dump(mode="json"),
                    "alternative": after.model_dump(mode="json"),
                    "difference": compare(before, after),
                }
            )
        period = period.next()
    summary = summarise([r["difference"] for r in results], alternative.currency)
    return {
        "contract_id": contract_id,
        "from": str(first),
        "to": str(last),
        "stored": False,
        "skipped": skipped,
        "periods": results,
        "total": summary["total"],
        "parties": summary["parties"],
    }
