"""What a penalty form is: a shape, its price for a KPI value, and how it follows a target."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from schemas.contract import KpiRule
from schemas.money import format_money

Charge = tuple[Decimal, str]
"""A (negative) penalty amount, unrounded, and its explanation."""


@dataclass(frozen=True)
class PenaltyBasis:
    """What a penalty may depend on beyond the KPI value: the statement's charges."""

    currency: str
    unit: str
    charges_base: Decimal

    def money(self, amount: Decimal) -> str:
        return format_money(amount, self.currency)


@dataclass(frozen=True)
class PenaltyForm:
    """One penalty form.

    ``charge(rule, value, basis)``: the penalty for ``value`` under ``rule``
    (whose penalty has this form), or ``None`` when none applies.
    ``follow(penalty, delta, rule)``: the penalty with its thresholds moved by
    ``delta`` when the rule's target moves by ``delta``, so the same shortfall
    costs the same.
    """

    model: type[Any]
    charge: Callable[[KpiRule, Decimal, PenaltyBasis], Charge | None]
    follow: Callable[[Any, Decimal, KpiRule], Any]
