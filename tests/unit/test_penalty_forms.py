"""Penalty forms: every shape in schemas/penalties.py is priced by one module, found by registry."""

from __future__ import annotations

from decimal import Decimal

from schemas.contract import KpiRule
from schemas.penalties import PENALTY_FORMS
from services.settlement.penalties import FORMS, PenaltyBasis, form_of

BASIS = PenaltyBasis("EUR", "t", Decimal("20000.00"))


def test_every_penalty_shape_has_its_pricing_module() -> None:
    assert list(FORMS) == [f.form for f in PENALTY_FORMS] == ["per_point", "credits"]
    for name, form in FORMS.items():
        assert form.model.form == name


def test_a_rule_finds_the_form_of_its_penalty() -> None:
    rule = KpiRule.model_validate(
        {"kpi": "availability", "target": 0.95, "penalty": {"per_point": "800.00"}}
    )
    assert form_of(rule.penalty) is FORMS["per_point"]
    charged = form_of(rule.penalty).charge(rule, Decimal("0.93"), BASIS)
    assert charged is not None and charged[0] == Decimal("-1600.00")


def test_credit_thresholds_follow_a_moved_target_but_per_point_needs_nothing() -> None:
    credits = KpiRule.model_validate(
        {
            "kpi": "availability",
            "target": 0.98,
            "penalty": {"credits": [{"below": 0.98, "pct": 0.02}, {"below": 0.95, "pct": 0.05}]},
        }
    )
    moved = form_of(credits.penalty).follow(credits.penalty, Decimal("-0.03"), credits)
    assert [c.below for c in moved.credits] == [Decimal("0.95"), Decimal("0.92")]
    per_point = KpiRule.model_validate(
        {"kpi": "availability", "target": 0.95, "penalty": {"per_point": "800.00"}}
    )
    assert form_of(per_point.penalty).follow(per_point.penalty, Decimal("-0.03"), per_point) == (
        per_point.penalty
    )
