"""The realised value split (spec §4 ``unfair_split``): is each party profiting?

customer gain = throughput x customer_value_per_unit - net; provider margin =
net - cost to serve; the provider's share = margin / (margin + gain). The net
cancels out of the value created (gain + margin), so the split shows how the
contract's money divides a value neither party can inflate by billing.
Costs are the provider's secret: ``customer_view`` never contains anything a
customer could derive them from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from schemas.contract import ValueModel
from schemas.money import decimal_context, round_kpi, round_money
from schemas.periods import Period
from schemas.statement import StatementBody
from services.settlement import contracts
from services.settlement.costs import costs_by_period
from services.settlement.proposals.history import SettledPeriod, settled_periods

ZERO = Decimal(0)
MAX_PERIODS = 36


@dataclass(frozen=True)
class ValueSplit:
    """One period's realised split; gains are ``None`` without a value model."""

    period: str
    currency: str
    throughput: Decimal
    net: Decimal
    cost: Decimal
    cost_recorded: bool
    provider_margin: Decimal
    value_to_customer: Decimal | None
    customer_gain: Decimal | None
    provider_share: Decimal | None
    agreed_provider_share: Decimal | None
    tolerance: Decimal | None

    @property
    def value_created(self) -> Decimal | None:
        if self.customer_gain is None:
            return None
        return self.customer_gain + self.provider_margin

    @property
    def within_agreed(self) -> bool | None:
        """Whether the provider's share is inside agreed ± tolerance (None: no model)."""
        if self.agreed_provider_share is None or self.tolerance is None:
            return None
        if self.provider_share is None:
            return False
        return abs(self.provider_share - self.agreed_provider_share) <= self.tolerance


def split(body: StatementBody, model: ValueModel | None, cost: Decimal | None) -> ValueSplit:
    """The split of one settled period; an unrecorded cost counts as zero."""
    currency = body.currency
    with decimal_context():
        throughput = body.kpis.get("throughput") or ZERO
        spent = round_money(cost or ZERO, currency)
        margin = body.net - spent
        value, gain, share = None, None, None
        if model is not None:
            value = round_money(throughput * model.customer_value_per_unit, currency)
            gain = value - body.net
            created = gain + margin
            share = round_kpi(margin / created) if created > 0 else None
        return ValueSplit(
            period=body.period,
            currency=currency,
            throughput=throughput,
            net=body.net,
            cost=spent,
            cost_recorded=cost is not None,
            provider_margin=margin,
            value_to_customer=value,
            customer_gain=gain,
            provider_share=share,
            agreed_provider_share=model.agreed_provider_share if model else None,
            tolerance=model.tolerance if model else None,
        )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def customer_view(s: ValueSplit) -> dict[str, Any]:
    """What both parties may see: the customer's side only."""
    return {
        "period": s.period,
        "currency": s.currency,
        "throughput": float(s.throughput),
        "value_to_customer": _text(s.value_to_customer),
        "net": _text(s.net),
        "customer_gain": _text(s.customer_gain),
    }


def provider_view(s: ValueSplit) -> dict[str, Any]:
    """The full split, with cost, margin and shares (provider side only)."""
    return {
        **customer_view(s),
        "cost": _text(s.cost),
        "cost_recorded": s.cost_recorded,
        "provider_margin": _text(s.provider_margin),
        "value_created": _text(s.value_created),
        "provider_share": None if s.provider_share is None else float(s.provider_share),
        "agreed_provider_share": _number(s.agreed_provider_share),
        "tolerance": _number(s.tolerance),
        "within_agreed": s.within_agreed,
    }


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def splits_for(
    conn: Connection, contract_id: str, settled: Sequence[SettledPeriod]
) -> list[ValueSplit]:
    """Splits of settled periods, each under the value model of its own version."""
    if not settled:
        return []
    spent = costs_by_period(conn, contract_id, [s.period for s in settled])
    result = []
    for item in settled:
        model = contracts.get_version(conn, contract_id, item.contract_version).terms.value_model
        result.append(split(item.body, model, spent.get(item.period)))
    return result


def realised(conn: Connection, contract_id: str, first: Period, last: Period) -> list[ValueSplit]:
    """The realised split of every settled period in ``[first, last]``."""
    settled = settled_periods(conn, contract_id, first, last)
    return splits_for(conn, contract_id, list(settled.values()))
