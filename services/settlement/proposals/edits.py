"""Building proposed terms: numbers people negotiate with, rules edited field by field.

Proposed values are set from what was achieved in the window and rounded to
numbers people negotiate with (half points for ratios, three significant
digits for quantities), always in the direction that keeps the proposal
consistent with the evidence: a lowered target is one the window would have
met on average, a raised one is one it met every period.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from schemas.contract import ContractTerms, KpiRule
from schemas.money import decimal_context
from schemas.vocabulary import RATIO_KPIS
from services.settlement.penalties import form_of
from services.settlement.proposals.base import Finding
from services.settlement.wording import show

RATIO_STEP = Decimal("0.005")
PCT_STEP = Decimal("0.01")
ZERO = Decimal(0)


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    with decimal_context():
        return (value / step).to_integral_value(ROUND_FLOOR) * step


def nice_floor(value: Decimal) -> Decimal:
    """``value`` rounded down to three significant digits (27,843 → 27,800)."""
    if value <= 0:
        return ZERO
    return floor_to(value, Decimal(1).scaleb(value.adjusted() - 2)).normalize() + 0


def kpi_floor(kpi: str, value: Decimal) -> Decimal:
    return floor_to(value, RATIO_STEP) if kpi in RATIO_KPIS else nice_floor(value)


def values(finding: Finding, key: str = "value") -> list[Decimal]:
    return [Decimal(str(e[key])) for e in finding.evidence if e.get(key) is not None]


def validated(terms: ContractTerms) -> ContractTerms:
    """Re-validate derived terms: model_copy skips validators, the store must not."""
    return ContractTerms.model_validate(terms.model_dump(mode="json"))


def with_rule(terms: ContractTerms, rule: KpiRule) -> ContractTerms:
    rules = [rule if r.kpi == rule.kpi else r for r in terms.terms.kpis]
    return validated(
        terms.model_copy(update={"terms": terms.terms.model_copy(update={"kpis": rules})})
    )


def with_terms(terms: ContractTerms, **changes: Any) -> ContractTerms:
    return validated(terms.model_copy(update={"terms": terms.terms.model_copy(update=changes)}))


def rule(terms: ContractTerms, kpi: str | None) -> KpiRule:
    return next(r for r in terms.terms.kpis if r.kpi == kpi)


def rule_json(r: KpiRule) -> dict[str, Any]:
    return r.model_dump(mode="json", exclude_none=True)


def listed(numbers: Sequence[Decimal], kpi: str | None = None) -> str:
    """Values as people read them: ratios as percentages, sums with thousands separators."""
    return ", ".join(show(kpi, v) for v in numbers)


def move_target(r: KpiRule, target: Decimal) -> KpiRule:
    """``r`` with a new target; the penalty's thresholds follow it (same shortfall, same cost)."""
    moved = r.model_copy(update={"target": target})
    if r.penalty is None:
        return moved
    penalty = form_of(r.penalty).follow(r.penalty, target - r.target, r)
    return moved.model_copy(update={"penalty": penalty})
