"""Contract validation (spec §2): bad terms fail with an error naming the field."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.contract import ContractIn, ContractTerms, CreditsPenalty, PerPointPenalty

SPEC_CONTRACT: dict[str, Any] = {
    "contract_id": "ACME-CRUSH-01",
    "provider": "Connectcorp",
    "customer": "MineCo",
    "currency": "EUR",
    "timezone": "Europe/Stockholm",
    "devices": ["crusher-07", "crusher-08"],
    "effective_from": "2026-01",
    "unit": "t",
    "rated_capacity_per_hour": 250,
    "missing_data": "downtime",
    "excused_causes": ["planned", "customer", "external"],
    "terms": {
        "fixed_fee": "12000.00",
        "usage": {
            "basis": "throughput",
            "mode": "graduated",
            "minimum_commitment": 30000,
            "tiers": [{"up_to": 40000, "price": "0.80"}, {"up_to": None, "price": "0.65"}],
        },
        "kpis": [
            {
                "kpi": "availability",
                "target": 0.95,
                "deadband": 0.005,
                "penalty": {"per_point": "800.00"},
                "bonus": {"above": 0.97, "per_point": "400.00"},
            },
            {
                "kpi": "quality_rate",
                "target": 0.98,
                "penalty": {
                    "credits": [{"below": 0.98, "pct": 0.02}, {"below": 0.95, "pct": 0.05}]
                },
            },
        ],
        "penalty_cap_pct": 0.20,
        "bonus_cap_pct": 0.10,
        "gain_share": {
            "kpi": "throughput",
            "baseline": 35000,
            "value_per_unit": "2.50",
            "provider_share": 0.30,
            "symmetric": False,
        },
    },
    "value_model": {
        "customer_value_per_unit": "3.10",
        "agreed_provider_share": 0.40,
        "tolerance": 0.10,
    },
}


def spec_contract() -> dict[str, Any]:
    return copy.deepcopy(SPEC_CONTRACT)


def rejected(document: dict[str, Any]) -> list[tuple[str, str]]:
    """The (field path, message) pairs of the validation error."""
    with pytest.raises(ValidationError) as info:
        ContractIn.model_validate(document)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in info.value.errors()]


def test_spec_example_contract_is_valid() -> None:
    contract = ContractIn.model_validate(spec_contract())
    assert contract.contract_id == "ACME-CRUSH-01"
    assert contract.terms.fixed_fee == Decimal("12000.00")
    assert isinstance(contract.terms.kpis[0].penalty, PerPointPenalty)
    assert isinstance(contract.terms.kpis[1].penalty, CreditsPenalty)


def test_ratios_given_as_json_numbers_become_exact_decimals() -> None:
    contract = ContractIn.model_validate_json(
        ContractIn.model_validate(spec_contract()).model_dump_json()
    )
    rule = contract.terms.kpis[0]
    assert rule.target == Decimal("0.95")
    assert rule.deadband == Decimal("0.005")
    assert contract.terms.penalty_cap_pct == Decimal("0.2")


def test_json_round_trip_is_stable() -> None:
    contract = ContractIn.model_validate(spec_contract())
    dumped = contract.model_dump(mode="json")
    assert dumped["terms"]["fixed_fee"] == "12000.00"
    assert dumped["terms"]["kpis"][0]["target"] == 0.95
    assert dumped["rated_capacity_per_hour"] == 250
    assert ContractIn.model_validate(dumped) == contract


def test_money_given_as_float_is_rejected() -> None:
    document = spec_contract()
    document["terms"]["fixed_fee"] = 12000.5
    [(field, message)] = rejected(document)
    assert field == "terms.fixed_fee"
    assert "decimal string" in message


def test_money_given_as_integer_is_accepted() -> None:
    document = spec_contract()
    document["terms"]["fixed_fee"] = 0
    assert ContractIn.model_validate(document).terms.fixed_fee == 0


def test_unknown_field_is_rejected_naming_it() -> None:
    document = spec_contract()
    document["terms"]["penalty_cap_percent"] = 0.2
    assert rejected(document)[0][0] == "terms.penalty_cap_percent"


def test_unknown_kpi_is_rejected() -> None:
    document = spec_contract()
    document["terms"]["kpis"][0]["kpi"] = "mtbf"
    assert rejected(document)[0][0] == "terms.kpis.0.kpi"


def test_negative_price_is_rejected() -> None:
    document = spec_contract()
    document["terms"]["usage"]["tiers"][1]["price"] = "-0.10"
    assert rejected(document)[0][0] == "terms.usage.tiers.1.price"


def test_negative_per_point_is_rejected() -> None:
    document = spec_contract()
    document["terms"]["kpis"][0]["penalty"]["per_point"] = "-800.00"
    assert rejected(document)[0][0].startswith("terms.kpis.0.penalty")


def test_unsorted_tiers_are_rejected() -> None:
    document = spec_contract()
    document["terms"]["usage"]["tiers"] = [
        {"up_to": 40000, "price": "0.80"},
        {"up_to": 30000, "price": "0.70"},
        {"up_to": None, "price": "0.65"},
    ]
    [(field, message)] = rejected(document)
    assert field == "terms.usage.tiers"
    assert "sorted" in message


def test_only_the_last_tier_may_be_open_ended() -> None:
    document = spec_contract()
    document["terms"]["usage"]["tiers"].reverse()
    [(field, message)] = rejected(document)
    assert field == "terms.usage.tiers"
    assert "last tier" in message


def test_usage_needs_at_least_one_tier() -> None:
    document = spec_contract()
    document["terms"]["usage"]["tiers"] = []
    assert rejected(document)[0][0] == "terms.usage.tiers"


@pytest.mark.parametrize("field", ["penalty_cap_pct", "bonus_cap_pct"])
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_cap_outside_unit_interval_is_rejected(field: str, value: float) -> None:
    document = spec_contract()
    document["terms"][field] = value
    assert rejected(document)[0][0] == f"terms.{field}"


def test_credit_pct_outside_unit_interval_is_rejected() -> None:
    document = spec_contract()
    document["terms"]["kpis"][1]["penalty"]["credits"][0]["pct"] = 2
    field = rejected(document)[0][0]
    assert field.startswith("terms.kpis.1.penalty") and field.endswith("0.pct")


def test_duplicate_kpi_rules_are_rejected() -> None:
    document = spec_contract()
    document["terms"]["kpis"][1]["kpi"] = "availability"
    [(field, message)] = rejected(document)
    assert field == "terms.kpis"
    assert "duplicate" in message


def test_penalty_must_be_per_point_or_credits() -> None:
    document = spec_contract()
    document["terms"]["kpis"][0]["penalty"] = {"flat": "100.00"}
    [(field, message)] = rejected(document)
    assert field == "terms.kpis.0.penalty"
    assert "per_point" in message and "credits" in message


def test_bonus_threshold_below_target_is_rejected() -> None:
    document = spec_contract()
    document["terms"]["kpis"][0]["bonus"]["above"] = 0.9
    [(field, message)] = rejected(document)
    assert field == "terms.kpis.0.bonus"
    assert "above" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("currency", "XYZ"),
        ("timezone", "Europe/Atlantis"),
        ("devices", []),
        ("devices", ["crusher 07"]),
        ("effective_from", "2026-13"),
        ("rated_capacity_per_hour", 0),
        ("missing_data", "ignore"),
        ("contract_id", "a/b"),
        ("provider", " "),
    ],
)
def test_invalid_contract_field_is_named(field: str, value: object) -> None:
    document = spec_contract()
    document[field] = value
    assert rejected(document)[0][0].split(".")[0] == field


def test_duplicate_device_is_rejected() -> None:
    document = spec_contract()
    document["devices"] = ["crusher-07", "crusher-07"]
    [(field, message)] = rejected(document)
    assert field == "devices"
    assert "crusher-07" in message


def test_fixed_fee_is_the_only_required_term() -> None:
    document = spec_contract()
    document["terms"] = {"fixed_fee": "0"}
    del document["missing_data"], document["excused_causes"], document["value_model"]
    contract = ContractIn.model_validate(document)
    assert contract.terms.usage is None and contract.terms.kpis == []
    assert contract.missing_data == "downtime"
    assert contract.excused_causes == ["planned", "customer", "external"]
    assert rejected({**document, "terms": {}})[0][0] == "terms.fixed_fee"


def test_value_model_tolerance_defaults_to_ten_percent() -> None:
    document = spec_contract()
    del document["value_model"]["tolerance"]
    contract = ContractIn.model_validate(document)
    assert contract.value_model is not None
    assert contract.value_model.tolerance == Decimal("0.10")


def test_contract_terms_drop_the_identity_of_the_contract() -> None:
    terms = ContractIn.model_validate(spec_contract()).contract_terms()
    assert type(terms) is ContractTerms
    assert "contract_id" not in terms.model_dump()
    assert terms.effective_period.month == 1
