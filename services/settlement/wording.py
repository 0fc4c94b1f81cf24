"""How viu writes numbers in words: statement working, proposals, the value promised.

People read ratios as percentages and money with its currency and thousands
separators; explanations keep the exact decimals.
"""

from __future__ import annotations

from decimal import Decimal

from schemas.money import decimal_context, plain, round_money
from schemas.vocabulary import RATIO_KPIS, KpiName

TIMES = "\u00d7"
MINUS = "\u2212"


def points_word(kpi: KpiName, unit: str) -> str:
    """What one point of ``kpi`` is called in an explanation ("points", "t", "h")."""
    if kpi in RATIO_KPIS:
        return "points"
    return unit if kpi == "throughput" else "h"


def percent(value: Decimal) -> str:
    """A share as a percentage with one decimal: 0.925 → "92.5 %"."""
    with decimal_context():
        return f"{format(value * 100, '.1f')} %"


def show(kpi: str | None, value: Decimal) -> str:
    """A KPI value as people read it: ratios as percentages, sums with thousands separators."""
    return percent(value) if kpi in RATIO_KPIS else format(Decimal(plain(value)), ",f")


def amount_words(amount: Decimal, currency: str) -> str:
    """An amount as people read it: "EUR 3,250.00" (the sign is said in words)."""
    return f"{currency} {format(round_money(abs(amount), currency), ',f')}"
