"""The settlement engine (spec §3): per-device quantities, fleet KPIs, money lines."""
# ruff: noqa: RUF001  (explanations use the multiplication and minus signs of the spec)

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.contract import ContractTerms, Usage
from schemas.money import round_kpi
from schemas.periods import Period
from schemas.statement import StatementBody, StatementLine
from services.settlement.engine import SettlementError, inputs_digest, settle, usage_charge
from services.settlement.kpis import (
    DeviceUsage,
    device_quantities,
    fleet_kpis,
    fleet_kpis_exact,
)

SEPTEMBER = Period(2026, 9)
MONTH_MIN = 30 * 1440


def contract(terms: dict[str, Any] | None = None, **fields: Any) -> ContractTerms:
    """A one-device UTC contract at 100 units/hour, overridable field by field."""
    document: dict[str, Any] = {
        "currency": "EUR",
        "timezone": "UTC",
        "devices": ["d1"],
        "effective_from": "2026-01",
        "unit": "t",
        "rated_capacity_per_hour": 100,
        "terms": {"fixed_fee": "1000.00", **(terms or {})},
    }
    return ContractTerms.model_validate({**document, **fields})


Number = Decimal | int | str


def usage(
    device_id: str = "d1",
    *,
    uptime: Number = MONTH_MIN,
    reported: Number = MONTH_MIN,
    quality: Number | None = None,
    throughput: Number = 0,
    planned: Number = 0,
    customer: Number = 0,
) -> DeviceUsage:
    """A device's usage; its non-running minutes are unplanned unless said otherwise."""
    reported_min, uptime_min = Decimal(reported), Decimal(uptime)
    planned_min, customer_min = Decimal(planned), Decimal(customer)
    return DeviceUsage(
        device_id=device_id,
        reported_min=reported_min,
        uptime_min=uptime_min,
        quality_min=uptime_min if quality is None else Decimal(quality),
        throughput=Decimal(throughput),
        down_min={
            "unplanned": reported_min - uptime_min - planned_min - customer_min,
            "planned": planned_min,
            "customer": customer_min,
        },
    )


def with_availability(value: str, **kwargs: Any) -> DeviceUsage:
    return usage(uptime=Decimal(value) * MONTH_MIN, **kwargs)


def kinds(body: StatementBody) -> list[tuple[str, str | None, str]]:
    return [(line.kind, line.kpi, format(line.amount, "f")) for line in body.lines]


def only(body: StatementBody, kind: str) -> StatementLine:
    [line] = [line for line in body.lines if line.kind == kind]
    return line


def availability_rule(**rule: Any) -> dict[str, Any]:
    return {"kpis": [{"kpi": "availability", "target": 0.95, **rule}]}


# §3.1 per-device quantities


def test_missing_minutes_count_as_unplanned_downtime_by_default() -> None:
    q = device_quantities(usage(reported=43000, uptime=43000), MONTH_MIN, "downtime", ["planned"])
    assert q.missing_min == 200
    assert q.down_min["unplanned"] == 200
    assert q.base_min == MONTH_MIN


def test_missing_minutes_are_excused_under_the_excused_policy() -> None:
    q = device_quantities(usage(reported=43000, uptime=43000), MONTH_MIN, "excused", [])
    assert q.excused_min == 200
    assert q.base_min == 43000
    assert q.down_min["unplanned"] == 0


def test_missing_minutes_count_as_uptime_under_the_uptime_policy() -> None:
    q = device_quantities(usage(reported=43000, uptime=43000), MONTH_MIN, "uptime", [])
    assert q.uptime_min == MONTH_MIN
    assert q.quality_min == 43000


def test_availability_excludes_planned_downtime() -> None:
    planned = usage(uptime=42000, planned=1200)
    body = settle(contract(), SEPTEMBER, [planned])
    assert body.kpis["availability"] == 1
    body = settle(contract(excused_causes=["customer"]), SEPTEMBER, [planned])
    assert body.kpis["availability"] == round_kpi(Decimal(42000) / MONTH_MIN)


def test_customer_downtime_counts_against_availability_when_not_excused() -> None:
    caused = usage(uptime=42000, customer=1200)
    assert settle(contract(excused_causes=["planned"]), SEPTEMBER, [caused]).kpis[
        "availability"
    ] == round_kpi(Decimal(42000) / MONTH_MIN)


def test_fleet_kpis_sum_numerators_and_denominators_never_average_ratios() -> None:
    busy = usage("d1", uptime=MONTH_MIN)
    mostly_planned = usage("d2", uptime=100, planned=43000)
    body = settle(contract(devices=["d1", "d2"]), SEPTEMBER, [busy, mostly_planned])
    assert body.kpis["availability"] == round_kpi(Decimal(MONTH_MIN + 100) / (MONTH_MIN + 200))


def test_contract_device_without_data_counts_as_all_missing() -> None:
    body = settle(contract(devices=["d1", "d2"]), SEPTEMBER, [usage("d1")])
    assert body.kpis["availability"] == Decimal("0.5")
    assert body.devices[1].missing_min == MONTH_MIN
    assert any("d2" in warning and "no data" in warning for warning in body.warnings)


def test_performance_and_utilisation_use_rated_capacity() -> None:
    body = settle(contract(), SEPTEMBER, [usage(uptime=MONTH_MIN // 2, throughput=30000)])
    assert body.kpis["performance"] == Decimal("0.833333")
    assert body.kpis["utilisation"] == Decimal("0.416667")
    assert body.kpis["utilised_capacity_hours"] == 300
    assert body.kpis["uptime_hours"] == 360


def test_oee_is_rounded_once_from_the_unrounded_components() -> None:
    quantities = [
        device_quantities(
            usage(uptime=41111, quality=40001, throughput=61234), MONTH_MIN, "downtime", []
        )
    ]
    exact = fleet_kpis_exact(quantities, Decimal(100))
    components = [exact[name] for name in ("availability", "performance", "quality_rate")]
    assert all(value is not None for value in components)
    product = components[0] * components[1] * components[2]  # type: ignore[operator]
    assert fleet_kpis(quantities, Decimal(100))["oee"] == round_kpi(product)


def test_kpi_with_zero_denominator_is_undefined_and_costs_nothing() -> None:
    terms = contract(
        {"kpis": [{"kpi": "quality_rate", "target": 0.99, "penalty": {"per_point": "100"}}]}
    )
    body = settle(terms, SEPTEMBER, [usage(uptime=0)])
    assert body.kpis["quality_rate"] is None and body.kpis["oee"] is None
    assert [line.kind for line in body.lines] == ["fixed_fee"]
    assert body.evaluations[0].status == "undefined"
    assert any(warning.startswith("quality_rate is undefined") for warning in body.warnings)


# §3.3 usage


TIERS = [
    {"up_to": 100, "price": "1.00"},
    {"up_to": 300, "price": "0.50"},
    {"up_to": None, "price": "0.25"},
]


def usage_terms(mode: str, minimum: int = 0) -> ContractTerms:
    return contract({"usage": {"mode": mode, "minimum_commitment": minimum, "tiers": TIERS}})


def test_graduated_tiers_price_each_slice() -> None:
    line = only(settle(usage_terms("graduated"), SEPTEMBER, [usage(throughput=500)]), "usage")
    assert line.amount == Decimal("250.00")
    assert "100 × 1.00 + 200 × 0.50 + 200 × 0.25" in line.explanation


def test_volume_tiers_price_everything_at_one_tier() -> None:
    line = only(settle(usage_terms("volume"), SEPTEMBER, [usage(throughput=500)]), "usage")
    assert line.amount == Decimal("125.00")


def test_volume_tier_boundary_belongs_to_the_lower_tier() -> None:
    line = only(settle(usage_terms("volume"), SEPTEMBER, [usage(throughput=300)]), "usage")
    assert line.amount == Decimal("150.00")


def test_minimum_commitment_floors_the_billable_quantity() -> None:
    line = only(settle(usage_terms("graduated", 200), SEPTEMBER, [usage(throughput=50)]), "usage")
    assert line.amount == Decimal("150.00")
    assert "max(50, minimum_commitment 200) = 200" in line.explanation


def test_usage_on_uptime_hours() -> None:
    terms = contract({"usage": {"basis": "uptime_hours", "tiers": [{"up_to": None, "price": "2"}]}})
    assert only(settle(terms, SEPTEMBER, [usage(uptime=600)]), "usage").amount == 20


def test_last_finite_tier_keeps_pricing_beyond_its_limit() -> None:
    terms = contract({"usage": {"tiers": [{"up_to": 100, "price": "1.00"}]}})
    body = settle(terms, SEPTEMBER, [usage(throughput=150)])
    assert only(body, "usage").amount == 150
    assert any("last tier" in note for note in body.notes)


def test_usage_line_is_present_even_when_zero() -> None:
    body = settle(usage_terms("graduated"), SEPTEMBER, [usage(throughput=0)])
    assert kinds(body) == [("fixed_fee", None, "1000.00"), ("usage", None, "0.00")]


# §3.3 penalties and bonuses


def test_per_point_penalty_is_measured_from_target_not_from_the_deadband() -> None:
    terms = contract(availability_rule(deadband=0.01, penalty={"per_point": "100.00"}))
    body = settle(terms, SEPTEMBER, [with_availability("0.93")])
    line = only(body, "penalty")
    assert (line.kpi, line.amount) == ("availability", Decimal("-200.00"))
    assert line.explanation == "availability 0.93 < target 0.95 − deadband 0.01: 2 points × 100.00"


def test_no_penalty_within_the_deadband() -> None:
    terms = contract(availability_rule(deadband=0.01, penalty={"per_point": "100.00"}))
    body = settle(terms, SEPTEMBER, [with_availability("0.945")])
    assert [line.kind for line in body.lines] == ["fixed_fee"]
    assert body.evaluations[0].status == "within_deadband"
    assert "deadband" in body.evaluations[0].explanation


def test_value_exactly_at_threshold_is_not_penalised() -> None:
    terms = contract(availability_rule(deadband=0.01, penalty={"per_point": "100.00"}))
    body = settle(terms, SEPTEMBER, [with_availability("0.94")])
    assert [line.kind for line in body.lines] == ["fixed_fee"]


def test_credits_take_the_largest_applicable_pct_of_charges_base() -> None:
    credits = [
        {"below": 0.97, "pct": 0.05},
        {"below": 0.95, "pct": 0.15},
        {"below": 0.9, "pct": 0.3},
    ]
    terms = contract(availability_rule(penalty={"credits": credits}))
    line = only(settle(terms, SEPTEMBER, [with_availability("0.93")]), "penalty")
    assert line.amount == Decimal("-150.00")
    assert "15% × charges_base 1000.00" in line.explanation


def test_no_credit_when_value_meets_every_threshold() -> None:
    terms = contract(availability_rule(penalty={"credits": [{"below": 0.95, "pct": 0.05}]}))
    body = settle(terms, SEPTEMBER, [with_availability("0.95")])
    assert body.evaluations[0].status == "on_target"
    assert len(body.lines) == 1


def test_bonus_pays_per_point_above_threshold() -> None:
    terms = contract(availability_rule(bonus={"above": 0.97, "per_point": "50.00"}))
    body = settle(terms, SEPTEMBER, [with_availability("0.99")])
    assert kinds(body)[1:] == [("bonus", "availability", "100.00")]
    assert body.evaluations[0].status == "bonus"


def test_missed_bonus_is_explained() -> None:
    terms = contract(availability_rule(bonus={"above": 0.97, "per_point": "50.00"}))
    body = settle(terms, SEPTEMBER, [with_availability("0.96")])
    assert "no bonus" in body.evaluations[0].explanation


def test_throughput_point_is_one_unit() -> None:
    rule = {"kpi": "throughput", "target": 1000, "penalty": {"per_point": "2.00"}}
    body = settle(contract({"kpis": [rule]}), SEPTEMBER, [usage(throughput=900)])
    line = only(body, "penalty")
    assert line.amount == Decimal("-200.00")
    assert "100 t × 2.00" in line.explanation


# §3.3 caps and gain share


def test_penalty_cap_gives_back_the_excess() -> None:
    rule = availability_rule(penalty={"per_point": "100.00"})
    terms = contract({**rule, "penalty_cap_pct": 0.1})
    body = settle(terms, SEPTEMBER, [with_availability("0.93")])
    assert kinds(body) == [
        ("fixed_fee", None, "1000.00"),
        ("penalty", "availability", "-200.00"),
        ("penalty_cap", None, "100.00"),
    ]
    assert body.net == Decimal("900.00")


def test_penalty_under_cap_adds_no_cap_line() -> None:
    terms = contract({**availability_rule(penalty={"per_point": "10.00"}), "penalty_cap_pct": 0.1})
    body = settle(terms, SEPTEMBER, [with_availability("0.93")])
    assert [line.kind for line in body.lines] == ["fixed_fee", "penalty"]
    assert any("cap not reached" in note for note in body.notes)


def test_bonus_cap_takes_back_the_excess() -> None:
    rule = availability_rule(bonus={"above": 0.97, "per_point": "50.00"})
    terms = contract({**rule, "bonus_cap_pct": 0.05})
    body = settle(terms, SEPTEMBER, [with_availability("0.99")])
    assert kinds(body)[1:] == [("bonus", "availability", "100.00"), ("bonus_cap", None, "-50.00")]


def gain_share(symmetric: bool) -> ContractTerms:
    share = {"baseline": 1000, "value_per_unit": "2.00", "provider_share": 0.25}
    return contract({"gain_share": {**share, "symmetric": symmetric}})


def test_gain_share_pays_the_provider_share_above_baseline() -> None:
    body = settle(gain_share(False), SEPTEMBER, [usage(throughput=1200)])
    assert kinds(body)[1:] == [("gain_share", None, "100.00")]


def test_gain_share_below_baseline_only_when_symmetric() -> None:
    assert len(settle(gain_share(False), SEPTEMBER, [usage(throughput=800)]).lines) == 1
    body = settle(gain_share(True), SEPTEMBER, [usage(throughput=800)])
    assert kinds(body)[1:] == [("gain_share", None, "-100.00")]


def test_jpy_amounts_have_no_minor_unit() -> None:
    terms = contract(
        {"fixed_fee": "1000", "usage": {"tiers": [{"up_to": None, "price": "0.5"}]}},
        currency="JPY",
    )
    body = settle(terms, SEPTEMBER, [usage(throughput=1001)])
    assert body.model_dump(mode="json")["lines"][1]["amount"] == "500"
    assert body.model_dump(mode="json")["net"] == "1500"


# inputs and determinism


def test_usage_of_a_device_outside_the_contract_is_ignored_with_a_warning() -> None:
    body = settle(contract(), SEPTEMBER, [usage("d1"), usage("other", uptime=0)])
    assert body.kpis["availability"] == 1
    assert any("other" in warning for warning in body.warnings)


def test_two_usages_for_one_device_are_refused() -> None:
    with pytest.raises(SettlementError, match="d1"):
        settle(contract(), SEPTEMBER, [usage("d1"), usage("d1")])


def test_same_inputs_give_byte_identical_json() -> None:
    terms = contract(
        {**availability_rule(penalty={"per_point": "100"}), "penalty_cap_pct": 0.1},
        devices=["d1", "d2"],
    )
    devices = [with_availability("0.93", device_id="d1"), usage("d2", throughput=5)]
    first = settle(terms, SEPTEMBER, devices).model_dump_json()
    assert settle(terms, SEPTEMBER, list(reversed(devices))).model_dump_json() == first


def test_inputs_digest_ignores_representation_but_not_content() -> None:
    terms = contract()
    digest = inputs_digest(terms, SEPTEMBER, [usage("d1", throughput=5), usage("d2")])
    same = [usage("d2"), usage("d1", throughput="5.000")]
    assert inputs_digest(terms, SEPTEMBER, same) == digest
    assert inputs_digest(terms, SEPTEMBER, [usage("d1", throughput=6), usage("d2")]) != digest
    assert inputs_digest(terms, SEPTEMBER.next(), same) != digest
    assert len(digest) == 64


# properties


@st.composite
def contracts_and_usage(draw: st.DrawFn) -> tuple[ContractTerms, list[DeviceUsage]]:
    money = st.decimals(min_value=0, max_value=10_000, places=2).map(str)
    ratio = st.decimals(min_value=0, max_value=1, places=3).map(float)
    bounds = sorted(draw(st.sets(st.integers(1, 50_000), max_size=3)))
    tiers = [{"up_to": up_to, "price": draw(money)} for up_to in bounds]
    tiers.append({"up_to": None, "price": draw(money)})
    target = draw(ratio)
    rules = [
        {
            "kpi": "availability",
            "target": target,
            "penalty": {"per_point": draw(money)},
            "bonus": {"above": min(1.0, target + draw(ratio)), "per_point": draw(money)},
        },
        {
            "kpi": "quality_rate",
            "target": draw(ratio),
            "penalty": {"credits": [{"below": draw(ratio), "pct": draw(ratio)}]},
        },
    ]
    terms = contract(
        {
            "fixed_fee": draw(money),
            "usage": {"mode": draw(st.sampled_from(["graduated", "volume"])), "tiers": tiers},
            "kpis": rules,
            "penalty_cap_pct": draw(st.none() | ratio),
            "bonus_cap_pct": draw(st.none() | ratio),
            "gain_share": {
                "baseline": draw(st.integers(0, 100_000)),
                "value_per_unit": draw(money),
                "provider_share": draw(ratio),
                "symmetric": draw(st.booleans()),
            },
        },
        currency=draw(st.sampled_from(["EUR", "JPY", "KWD"])),
    )
    uptime = draw(st.integers(0, MONTH_MIN))
    device = usage(
        reported=draw(st.integers(uptime, MONTH_MIN)),
        uptime=uptime,
        quality=draw(st.integers(0, uptime)),
        throughput=draw(st.integers(0, 200_000)),
    )
    return terms, [device]


@settings(max_examples=200, deadline=None)
@given(contracts_and_usage())
def test_net_is_the_sum_of_the_rounded_lines(case: tuple[ContractTerms, list[DeviceUsage]]) -> None:
    terms, devices = case
    body = settle(terms, SEPTEMBER, devices)
    assert body.net == sum((line.amount for line in body.lines), Decimal(0))
    places = {"EUR": 2, "JPY": 0, "KWD": 3}[terms.currency]
    assert all(line.amount.as_tuple().exponent == -places for line in body.lines)


@settings(max_examples=200, deadline=None)
@given(contracts_and_usage())
def test_capped_adjustments_never_exceed_their_caps(
    case: tuple[ContractTerms, list[DeviceUsage]],
) -> None:
    terms, devices = case
    body = settle(terms, SEPTEMBER, devices)
    unit = Decimal(1).scaleb(-{"EUR": 2, "JPY": 0, "KWD": 3}[terms.currency])
    for adjusted, pct in (
        (("penalty", "penalty_cap"), terms.terms.penalty_cap_pct),
        (("bonus", "bonus_cap"), terms.terms.bonus_cap_pct),
    ):
        total = abs(sum((line.amount for line in body.lines if line.kind in adjusted), Decimal(0)))
        if pct is not None:
            assert total <= pct * body.charges_base + unit


@given(
    st.lists(st.integers(1, 10_000), min_size=0, max_size=4, unique=True).map(sorted),
    st.lists(st.decimals(min_value=0, max_value=5, places=2), min_size=5, max_size=5),
    st.integers(0, 20_000),
)
def test_graduated_charge_equals_pricing_each_unit_by_its_tier(
    bounds: list[int], prices: list[Decimal], quantity: int
) -> None:
    tier_prices = [*prices[: len(bounds)], prices[-1]]
    tiers = [
        {"up_to": up_to, "price": str(price)}
        for up_to, price in zip([*bounds, None], tier_prices, strict=True)
    ]
    expected = sum(
        (
            tier_prices[sum(1 for bound in bounds if unit > bound)]
            for unit in range(1, quantity + 1)
        ),
        Decimal(0),
    )
    charge = usage_charge(Usage.model_validate({"tiers": tiers}), Decimal(quantity))
    assert charge.amount == expected


def test_statement_json_reloads_to_the_same_json() -> None:
    terms = contract({**availability_rule(penalty={"per_point": "100"}), "penalty_cap_pct": 0.1})
    text = settle(terms, SEPTEMBER, [with_availability("0.93", throughput=7)]).model_dump_json()
    assert StatementBody.model_validate_json(text).model_dump_json() == text
