"""The value promised against the value delivered (spec §7.3), per period and per quarter.

A period is judged by the statement that stands for it (as everywhere in
§4 and §5) under the promise of the version that settled it. Realised
customer value is throughput x customer_value_per_unit, as in the value
model. A figure is ``met`` (at or above the promise), ``within_tolerance``
(short by at most ``tolerance``, relative) or ``missed``.

A quarter pools ratio KPIs (numerators and denominators of every device
and month summed, as the fleet KPIs do) and averages the per-period sums
(throughput, customer value), since promises are per period.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection

from schemas.contract import ContractTerms, json_number
from schemas.money import decimal_context, format_money, round_kpi, round_money
from schemas.periods import Period, Quarter
from schemas.promise import ValuePromise
from schemas.statement import StatementBody
from schemas.vocabulary import CUSTOMER_VALUE, KPIS, RATIO_KPIS
from services.settlement import contracts
from services.settlement.kpis import fleet_kpis, summary_quantities
from services.settlement.proposals.history import SettledPeriod, settled_periods
from services.settlement.wording import amount_words, show

Status = Literal["met", "within_tolerance", "missed"]
ZERO = Decimal(0)


def realised(body: StatementBody, terms: ContractTerms, figure: str) -> Decimal | None:
    """What a settled period delivered of ``figure``."""
    if figure != CUSTOMER_VALUE:
        return body.kpis.get(figure)
    throughput = body.kpis.get("throughput")
    if terms.value_model is None or throughput is None:
        return None
    with decimal_context():
        return round_money(throughput * terms.value_model.customer_value_per_unit, body.currency)


def missed(promised: Decimal, value: Decimal | None, tolerance: Decimal) -> bool:
    """Short of the promise by more than ``tolerance`` (relative): what ``promise_gap`` counts."""
    with decimal_context():
        return value is not None and value < promised * (1 - tolerance)


def status(promised: Decimal, value: Decimal | None, tolerance: Decimal) -> Status | None:
    if value is None:
        return None
    if value >= promised:
        return "met"
    return "missed" if missed(promised, value, tolerance) else "within_tolerance"


def _number(figure: str, value: Decimal | None, currency: str) -> Any:
    if value is None:
        return None
    return format_money(value, currency) if figure == CUSTOMER_VALUE else json_number(value)


def figure_json(
    figure: str, promise: ValuePromise, value: Decimal | None, currency: str
) -> dict[str, Any]:
    """One figure of one period (or quarter): baseline, promised, realised and the gap."""
    promised = promise.promised[figure]
    gap = relative = None
    if value is not None:
        with decimal_context():
            gap = value - promised
            relative = round_kpi(gap / promised) if promised > 0 else None
    return {
        "baseline": _number(figure, promise.baseline.get(figure), currency),
        "promised": _number(figure, promised, currency),
        "realised": _number(figure, value, currency),
        "gap": _number(figure, gap, currency),
        "relative_gap": None if relative is None else json_number(relative),
        "status": status(promised, value, promise.tolerance),
    }


def figure_words(figure: str, promise: ValuePromise, value: Decimal | None, currency: str) -> str:
    """ "availability 90.0 % at signing → promised 95.0 % → delivered 93.1 %"."""

    def say(amount: Decimal) -> str:
        if figure == CUSTOMER_VALUE:
            return amount_words(amount, currency)
        return show(figure, amount)

    name = "customer value a period" if figure == CUSTOMER_VALUE else KPIS[figure].label  # type: ignore[index]
    parts = [name]
    if figure in promise.baseline:
        parts.append(f"{say(promise.baseline[figure])} at signing →")
    parts.append(f"promised {say(promise.promised[figure])} →")
    parts.append("not measured" if value is None else f"delivered {say(value)}")
    return " ".join(parts)


def pooled(
    items: Sequence[SettledPeriod], terms: ContractTerms, figure: str, values: list[Decimal | None]
) -> Decimal | None:
    """A figure over several periods: ratios pooled from the devices, sums averaged."""
    if figure in RATIO_KPIS:
        quantities = [summary_quantities(d) for item in items for d in item.body.devices]
        value = fleet_kpis(quantities, terms.rated_capacity_per_hour)[figure]
        return None if value is None else round_kpi(value)
    known = [v for v in values if v is not None]
    if not known:
        return None
    with decimal_context():
        mean = sum(known, ZERO) / len(known)
    return (
        round_money(mean, items[-1].body.currency) if figure == CUSTOMER_VALUE else round_kpi(mean)
    )


def _period(item: SettledPeriod, terms: ContractTerms) -> dict[str, Any] | None:
    promise = terms.value_promise
    if promise is None:
        return None
    currency = item.body.currency
    return {
        "period": str(item.period),
        "contract_version": item.contract_version,
        "figures": {
            f: figure_json(f, promise, realised(item.body, terms, f), currency)
            for f in promise.promised
        },
    }


def _quarter(quarter: Quarter, items: list[SettledPeriod], terms: ContractTerms) -> dict[str, Any]:
    promise = terms.value_promise
    assert promise is not None
    currency = items[-1].body.currency
    figures, words = {}, []
    for f in promise.promised:
        value = pooled(items, terms, f, [realised(i.body, terms, f) for i in items])
        figures[f] = figure_json(f, promise, value, currency)
        words.append(figure_words(f, promise, value, currency))
    return {
        "quarter": str(quarter),
        "periods": [str(i.period) for i in items],
        "figures": figures,
        "summary": words,
    }


def report(
    conn: Connection, contract_id: str, first: Period, last: Period
) -> dict[str, Any] | None:
    """Promised against realised for every settled period in ``[first, last]`` and their
    quarters; ``None`` when no version in the range (nor the latest) carries a promise."""
    latest = contracts.latest_version(conn, contract_id)
    settled = settled_periods(conn, contract_id, first, last)
    versions: dict[int, ContractTerms] = {latest.version: latest.terms}
    for item in settled.values():
        if item.contract_version not in versions:
            versions[item.contract_version] = contracts.get_version(
                conn, contract_id, item.contract_version
            ).terms
    promised = [(item, versions[item.contract_version]) for item in settled.values()]
    promised = [(item, terms) for item, terms in promised if terms.value_promise is not None]
    promise = latest.terms.value_promise or (promised[-1][1].value_promise if promised else None)
    if promise is None:
        return None
    periods = [p for item, terms in promised if (p := _period(item, terms)) is not None]
    by_quarter: dict[Quarter, list[tuple[SettledPeriod, ContractTerms]]] = {}
    for item, terms in promised:
        by_quarter.setdefault(item.period.quarter, []).append((item, terms))
    quarters = [
        _quarter(q, [i for i, _ in pairs], pairs[-1][1]) for q, pairs in sorted(by_quarter.items())
    ]
    return {
        **promise.model_dump(mode="json"),
        "periods": periods,
        "quarters": quarters,
    }
