"""``credits``: SLA service credits, a share of charges_base below each threshold.

The largest applicable ``pct`` wins; credits do not add up.
"""

from __future__ import annotations

from decimal import Decimal

from schemas.contract import KpiRule
from schemas.money import plain
from schemas.penalties import CreditsPenalty
from schemas.vocabulary import RATIO_KPIS
from services.settlement.penalties.base import Charge, PenaltyBasis, PenaltyForm
from services.settlement.wording import TIMES

ZERO = Decimal(0)


def charge(rule: KpiRule, value: Decimal, basis: PenaltyBasis) -> Charge | None:
    assert isinstance(rule.penalty, CreditsPenalty)
    applicable = [credit for credit in rule.penalty.credits if value < credit.below]
    if not applicable:
        return None
    best = max(applicable, key=lambda credit: credit.pct)
    return -best.pct * basis.charges_base, (
        f"{rule.kpi} {plain(value)} < below {plain(best.below)}: "
        f"credit {plain(best.pct * 100)}% {TIMES} charges_base {basis.money(basis.charges_base)}"
    )


def follow(penalty: CreditsPenalty, delta: Decimal, rule: KpiRule) -> CreditsPenalty:
    """Every threshold moves with the target (ratios stay within [0, 1])."""
    ceiling = Decimal(1) if rule.kpi in RATIO_KPIS else None
    credits = []
    for credit in penalty.credits:
        below = max(ZERO, credit.below + delta)
        below = min(below, ceiling) if ceiling is not None else below
        credits.append(credit.model_copy(update={"below": below}))
    return penalty.model_copy(update={"credits": credits})


FORM = PenaltyForm(CreditsPenalty, charge, follow)
