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
from schemas.money import decimal_context, format_money, round_money
from schemas.periods import Period
from schemas.statement import StatementBody
from schemas.vocabulary import LINE_KINDS
from services.errors import Invalid
from services.settlement import contracts
from services.settlement.engine import settle
from services.settlement.ownership import ever_owned, owned_terms
from services.settlement.proposals.base import Proposal
from services.settlement.usage import load_usage
from services.settlement.wording import amount_words

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
    proposal: Proposal | None = None,
    effective: Period | None = None,
) -> dict[str, Any]:
    """The window re-settled under the proposed terms, with each party's difference and,
    for a proposal, what that means in words."""
    rows = [compare(*resettle_pair(conn, contract_id, current, proposed, p)) for p in periods]
    result = summarise(rows, current.currency)
    if effective is not None:
        result["effective_from"] = str(effective)
    if proposal is not None and periods:
        total = Decimal(result["total"]["difference"])
        result["summary"] = in_words(total, current.currency, periods, proposal, effective)
    return result


def span_words(periods: Sequence[Period]) -> str:
    first, last = periods[0], periods[-1]
    return str(first) if first == last else f"{first} to {last}"


def in_words(
    total: Decimal,
    currency: str,
    periods: Sequence[Period],
    proposal: Proposal,
    effective: Period | None,
) -> str:
    """Who would have paid whom how much over the window, and what changes from when."""
    span, money = span_words(periods), amount_words(total, currency)
    if total > 0:
        lead = f"Over {span} the customer would have paid the provider {money} more."
    elif total < 0:
        lead = f"Over {span} the provider would have received {money} less from the customer."
    else:
        why = proposal.unchanged_because or (
            "no period of the window reached a value where the proposed terms differ from the "
            "current ones"
        )
        lead = f"No money would have moved between the parties over {span}: {why}."
    when = f"From {effective} on" if effective is not None else "From the next period on"
    return f"{lead} {when}: {proposal.change}." if proposal.change else lead


def corrective_impact(proposal: Proposal, currency: str, effective: Period) -> dict[str, Any]:
    """A proposal without a term change moves no money; it shows what the drift costs."""
    stakes = [(p, round_money(a, currency)) for p, a in proposal.at_stake]
    total = sum((a for _, a in stakes), ZERO)
    work = proposal.change or "no term change"
    summary = f"Accepting moves no money between the parties: {work}."
    if stakes:
        periods = [p for p, _ in stakes]
        with decimal_context():
            mean = total / len(stakes)
        summary += (
            f" At stake: {amount_words(total, currency)} over {span_words(periods)} "
            f"({amount_words(mean, currency)} a period on average), {proposal.stake_means}."
        )
    return {
        "currency": currency,
        "remedy": proposal.remedy,
        "periods": [{"period": str(p), "at_stake": format(a, "f")} for p, a in stakes],
        "total": {"at_stake": format_money(total, currency)},
        "parties": parties(ZERO, currency),
        "effective_from": str(effective),
        "summary": summary,
    }


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
