"""``per_point``: so much money per point the KPI falls short of target (beyond the deadband)."""

from __future__ import annotations

from decimal import Decimal

from schemas.contract import KpiRule
from schemas.money import plain
from schemas.penalties import PerPointPenalty
from schemas.vocabulary import point_of
from services.settlement.penalties.base import Charge, PenaltyBasis, PenaltyForm
from services.settlement.wording import MINUS, TIMES, points_word


def charge(rule: KpiRule, value: Decimal, basis: PenaltyBasis) -> Charge | None:
    assert isinstance(rule.penalty, PerPointPenalty)
    if value >= rule.target - rule.deadband:
        return None
    points = (rule.target - value) / point_of(rule.kpi)
    per_point = rule.penalty.per_point
    band = f" {MINUS} deadband {plain(rule.deadband)}" if rule.deadband else ""
    return -per_point * points, (
        f"{rule.kpi} {plain(value)} < target {plain(rule.target)}{band}: "
        f"{plain(points)} {points_word(rule.kpi, basis.unit)} {TIMES} {format(per_point, 'f')}"
    )


def follow(penalty: PerPointPenalty, delta: Decimal, rule: KpiRule) -> PerPointPenalty:
    """Counted from the target itself: nothing to move."""
    return penalty


FORM = PenaltyForm(PerPointPenalty, charge, follow)
