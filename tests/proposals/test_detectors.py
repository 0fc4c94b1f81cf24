"""Each §4 detector over constructed statement histories: one that must fire, one that must not.

The histories are settled by the real engine from constructed usage, so the
detectors read exactly what they read in production: statement bodies.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from services.settlement.proposals import base
from services.settlement.proposals.edits import nice_floor
from services.settlement.proposals.history import SettledPeriod, full_statement
from services.settlement.proposals.registry import KINDS, detect_all, propose
from services.settlement.proposals.settings import DetectorSettings
from services.settlement.value import split
from tests.proposals.conftest import contract, fleet_months, month, months, terms_of

CFG = DetectorSettings()
TERMS = terms_of(contract())


def _detect(
    kind: str, history: list[SettledPeriod], terms: Any, cfg: DetectorSettings, splits: Any = ()
) -> list[base.Finding]:
    return KINDS[kind].detect(base.Facts(history, terms, cfg, splits))


def _one(findings: list[base.Finding]) -> base.Finding:
    assert len(findings) == 1, findings
    return findings[0]


def _availability(*values: float, **extra: Any) -> list[dict[str, Any]]:
    return [{"availability": v, **extra} for v in values]


# chronic_penalty


def test_chronic_penalty_fires_when_the_penalty_was_charged_in_every_period() -> None:
    history = months(TERMS, "2026-06", _availability(0.93, 0.92, 0.935))
    finding = _one(_detect("chronic_penalty", history, TERMS, CFG))
    assert (finding.kind, finding.kpi) == ("chronic_penalty", "availability")
    assert [e["value"] for e in finding.evidence] == [0.93, 0.92, 0.935]
    proposal = propose(finding, TERMS)
    assert proposal is not None
    assert proposal.current["target"] == 0.95
    assert proposal.proposed["target"] == 0.925  # mean 0.928333 rounded down to half a point
    assert proposal.proposed_terms is not None
    assert proposal.proposed_terms.terms.kpis[0].target == Decimal("0.925")


def test_chronic_penalty_stays_silent_when_one_period_was_not_penalised() -> None:
    history = months(TERMS, "2026-06", _availability(0.93, 0.95, 0.93))
    assert _detect("chronic_penalty", history, TERMS, CFG) == []


def test_chronic_penalty_needs_a_full_window() -> None:
    history = months(TERMS, "2026-06", _availability(0.93, 0.92))
    assert _detect("chronic_penalty", history, TERMS, CFG) == []


FLEET = terms_of(contract(devices=["ra-a", "ra-b"]))


def _fleet(*pairs: tuple[float, float]) -> list[SettledPeriod]:
    per_period = [{"ra-a": {"availability": a}, "ra-b": {"availability": b}} for a, b in pairs]
    return fleet_months(FLEET, "2026-06", per_period)


def test_a_fleet_where_one_device_meets_the_target_gets_a_corrective_action_not_a_cut() -> None:
    history = _fleet((0.97, 0.90), (0.96, 0.89), (0.955, 0.91))
    finding = _one(_detect("chronic_penalty", history, FLEET, CFG))
    assert finding.detail["remedy"] == "corrective_action"
    assert finding.detail["lagging"] == ["ra-b"]
    assert finding.evidence[0]["devices"] == {"ra-a": 0.97, "ra-b": 0.9}
    proposal = propose(finding, FLEET)
    assert proposal is not None and proposal.remedy == "corrective_action"
    assert proposal.proposed_terms is None
    assert proposal.proposed == {
        "title": "bring availability of ra-b up to 95.0 %",
        "owner": "provider",
        "kpi": "availability",
        "devices": ["ra-b"],
    }
    # fleet 0.935, 0.925, 0.9325: 1.5, 2.5 and 1.75 points x 500.00 at stake
    stakes = [(str(p), str(a)) for p, a in proposal.at_stake]
    assert stakes == [("2026-06", "750.00"), ("2026-07", "1250.00"), ("2026-08", "875.00")]
    assert "not a lower target" in proposal.rationale


def test_a_device_that_met_the_target_earlier_in_six_periods_still_rules_out_a_target_cut() -> None:
    history = _fleet((0.96, 0.94), (0.93, 0.92), (0.93, 0.92), (0.92, 0.93), (0.93, 0.91))
    finding = _one(_detect("chronic_penalty", history, FLEET, CFG))
    assert finding.detail["met_target"] == {"ra-a": ["2026-06"]}
    assert finding.detail["remedy"] == "corrective_action"
    assert set(finding.detail["lagging"]) == {"ra-a", "ra-b"}


def test_a_fleet_where_no_device_meets_the_target_gets_a_re_baselined_target() -> None:
    history = _fleet((0.93, 0.92), (0.925, 0.93), (0.92, 0.935))
    finding = _one(_detect("chronic_penalty", history, FLEET, CFG))
    assert finding.detail["remedy"] == "change_terms" and finding.detail["met_target"] == {}
    proposal = propose(finding, FLEET)
    assert proposal is not None and proposal.remedy == "change_terms"
    assert proposal.proposed["target"] == 0.925  # fleet mean 0.926667 rounded down
    assert proposal.change == "availability target 95.0 % → 92.5 %"
    assert "no device met the target" in proposal.rationale


# unreachable_bonus


def test_unreachable_bonus_fires_when_no_bonus_was_earned_in_six_periods() -> None:
    history = months(TERMS, "2026-03", _availability(0.955, 0.96, 0.958, 0.951, 0.96, 0.957))
    finding = _one(_detect("unreachable_bonus", history, TERMS, CFG))
    assert len(finding.evidence) == 6
    proposal = propose(finding, TERMS)
    assert proposal is not None
    assert proposal.proposed["bonus"]["above"] == 0.955  # the best period (0.96) would earn it


def test_unreachable_bonus_below_target_says_why_it_would_not_have_paid_and_what_changes() -> None:
    rule = {
        "kpi": "availability",
        "target": 0.95,
        "penalty": {"per_point": "500.00"},
        "bonus": {"above": 0.99, "per_point": "200.00"},
    }
    terms = terms_of(contract(kpis=[rule]))
    history = months(terms, "2026-05", _availability(0.90, 0.91, 0.89, 0.90, 0.905, 0.90))
    proposal = propose(_one(_detect("unreachable_bonus", history, terms, CFG)), terms)
    assert proposal is not None
    assert proposal.proposed["bonus"]["above"] == 0.95  # the target: a bonus may go no lower
    assert "would just have earned" not in proposal.rationale
    assert "would have paid nothing in this window" in proposal.rationale
    assert proposal.unchanged_because is not None and "best 91.0 %" in proposal.unchanged_because
    assert "every point above 95.0 % earns EUR 200.00" in proposal.change


def test_unreachable_bonus_stays_silent_when_a_bonus_was_earned() -> None:
    history = months(TERMS, "2026-03", _availability(0.955, 0.975, 0.958, 0.951, 0.96, 0.957))
    assert _detect("unreachable_bonus", history, TERMS, CFG) == []


def test_unreachable_bonus_waits_for_six_periods() -> None:
    history = months(TERMS, "2026-03", _availability(0.955, 0.96, 0.958, 0.951, 0.96))
    assert _detect("unreachable_bonus", history, TERMS, CFG) == []


# slack_target


def test_slack_target_fires_when_the_target_was_beaten_by_more_than_two_points() -> None:
    history = months(TERMS, "2026-06", _availability(0.98, 0.985, 0.99))
    finding = _one(_detect("slack_target", history, TERMS, CFG))
    proposal = propose(finding, TERMS)
    assert proposal is not None
    assert proposal.proposed["target"] == 0.98
    assert proposal.proposed["bonus"]["above"] == 0.98  # a bonus may not start below target


def test_slack_target_stays_silent_when_one_period_was_close_to_target() -> None:
    history = months(TERMS, "2026-06", _availability(0.98, 0.96, 0.99))
    assert _detect("slack_target", history, TERMS, CFG) == []


def test_slack_points_are_configurable_per_contract() -> None:
    history = months(TERMS, "2026-06", _availability(0.98, 0.96, 0.99))
    loose = DetectorSettings(slack_points=Decimal("0.5"))
    assert _one(_detect("slack_target", history, TERMS, loose)).kpi == "availability"


# cap_binding


def test_cap_binding_fires_when_the_penalty_cap_bound_in_two_periods() -> None:
    terms = terms_of(contract(penalty_cap_pct=0.05))
    history = months(terms, "2026-06", _availability(0.80, 0.94, 0.82))
    finding = _one(_detect("cap_binding", history, terms, CFG))
    assert finding.subject == "penalty_cap_pct"
    assert [e["bound"] for e in finding.evidence] == [True, False, True]
    proposal = propose(finding, terms)
    assert proposal is not None
    # 0.80: 15 points x 500 = 7500 of charges_base 27500 = 27.3 % -> 0.28
    assert (proposal.current, proposal.proposed) == (0.05, 0.28)


def test_cap_binding_stays_silent_when_the_cap_bound_once() -> None:
    terms = terms_of(contract(penalty_cap_pct=0.05))
    history = months(terms, "2026-06", _availability(0.80, 0.94, 0.96))
    assert _detect("cap_binding", history, terms, CFG) == []


# commitment_mismatch


def test_commitment_mismatch_fires_when_usage_stayed_below_the_commitment() -> None:
    history = months(TERMS, "2026-06", [{"throughput": t} for t in (20500, 22000, 25000)])
    finding = _one(_detect("commitment_mismatch", history, TERMS, CFG))
    assert finding.detail["direction"] == "below"
    proposal = propose(finding, TERMS)
    assert proposal is not None
    assert (proposal.current, proposal.proposed) == (30000, 20500)


def test_commitment_mismatch_fires_when_usage_exceeded_130_percent() -> None:
    history = months(TERMS, "2026-06", [{"throughput": t} for t in (40000, 41234, 45000)])
    finding = _one(_detect("commitment_mismatch", history, TERMS, CFG))
    assert finding.detail["direction"] == "above"
    proposal = propose(finding, TERMS)
    assert proposal is not None and proposal.proposed == 40000


def test_commitment_mismatch_stays_silent_when_usage_crossed_the_commitment() -> None:
    history = months(TERMS, "2026-06", [{"throughput": t} for t in (20000, 35000, 25000)])
    assert _detect("commitment_mismatch", history, TERMS, CFG) == []


# excused_creep


def test_excused_creep_fires_when_the_excused_share_rose_by_half_and_exceeds_5_percent() -> None:
    history = months(TERMS, "2026-04", [{"planned": p} for p in (500, 600, 500, 2500, 3000, 3500)])
    finding = _one(_detect("excused_creep", history, TERMS, CFG))
    assert finding.detail["source"] == "planned"
    assert finding.detail["last_share"] > 0.05
    proposal = propose(finding, TERMS)
    assert proposal is not None
    assert proposal.proposed == ["customer", "external"]


def test_excused_creep_stays_silent_when_the_share_is_high_but_steady() -> None:
    history = months(TERMS, "2026-04", [{"planned": 3000}] * 6)
    assert _detect("excused_creep", history, TERMS, CFG) == []


def test_excused_creep_stays_silent_below_5_percent() -> None:
    history = months(TERMS, "2026-04", [{"planned": p} for p in (100, 100, 100, 1000, 1000, 1000)])
    assert _detect("excused_creep", history, TERMS, CFG) == []


# data_gaps


def test_data_gaps_fires_when_a_device_missed_more_than_2_percent_of_a_period() -> None:
    history = months(TERMS, "2026-06", [{"missing": 0}, {"missing": 1000}, {"missing": 0}])
    finding = _one(_detect("data_gaps", history, TERMS, CFG))
    assert finding.evidence == [
        {
            "period": "2026-07",
            "device_id": "ra-a",
            "missing_min": 1000,
            "period_min": 44640,
            "share": 0.022401,
        }
    ]
    proposal = propose(finding, TERMS)
    assert proposal is not None
    assert (proposal.current, proposal.proposed) == ("downtime", "excused")


def test_data_gaps_stays_silent_under_2_percent() -> None:
    history = months(TERMS, "2026-06", [{"missing": 500}] * 3)
    assert _detect("data_gaps", history, TERMS, CFG) == []


# unfair_split

VALUE_MODEL = {"customer_value_per_unit": "3.10", "agreed_provider_share": 0.40, "tolerance": 0.10}


def _splits(terms: Any, costs: list[str | None]) -> tuple[list[SettledPeriod], list[Any]]:
    history = months(terms, "2026-06", [{}] * len(costs))
    return history, [
        split(h.body, terms.value_model, None if c is None else Decimal(c))
        for h, c in zip(history, costs, strict=True)
    ]


def test_unfair_split_fires_when_the_provider_share_left_the_agreed_band() -> None:
    terms = terms_of(contract(value_model=VALUE_MODEL))
    history, splits = _splits(terms, ["5000", "5000", "5000"])
    assert all(s.provider_share == Decimal("0.217391") for s in splits)
    finding = _one(_detect("unfair_split", history, terms, CFG, splits))
    assert finding.detail["reasons"] == ["share_outside_agreed"]
    proposal = propose(finding, terms)
    assert proposal is not None
    # 0.40 x 103500 value created + 5000 cost - 27500 net = 18900 more fixed fee
    assert (proposal.current, proposal.proposed) == ("10000.00", "28900.00")


def test_unfair_split_fires_when_the_provider_lost_money_twice() -> None:
    terms = terms_of(contract(value_model=VALUE_MODEL, fixed_fee="40000.00"))
    history, splits = _splits(terms, ["10000", "70000", "70000"])
    finding = _one(_detect("unfair_split", history, terms, CFG, splits))
    assert "provider_losing" in finding.detail["reasons"]


def test_unfair_split_stays_silent_inside_the_agreed_band() -> None:
    terms = terms_of(contract(value_model=VALUE_MODEL, fixed_fee="40000.00"))
    history, splits = _splits(terms, ["10000", "10000", "10000"])
    assert all(s.within_agreed for s in splits)
    assert _detect("unfair_split", history, terms, CFG, splits) == []


def test_unfair_split_waits_until_the_cost_to_serve_is_recorded() -> None:
    terms = terms_of(contract(value_model=VALUE_MODEL))
    history, splits = _splits(terms, ["5000", None, "5000"])
    assert _detect("unfair_split", history, terms, CFG, splits) == []


def test_unfair_split_needs_a_value_model() -> None:
    history, splits = _splits(TERMS, ["5000", "5000", "5000"])
    assert _detect("unfair_split", history, TERMS, CFG, splits) == []


# shared rules


def test_a_steady_contract_fires_nothing() -> None:
    history = months(TERMS, "2026-03", _availability(0.965, 0.975) * 3)
    assert detect_all(base.Facts(history, TERMS, CFG)) == []


def test_history_uses_the_resettled_body_of_an_issued_adjustment() -> None:
    original = month(TERMS, "2026-06", availability=0.93).body.model_dump(mode="json")
    resettled = month(TERMS, "2026-06", availability=0.96).body.model_dump(mode="json")
    rows = [
        SimpleNamespace(
            period="2026-06", seq=0, status="issued", contract_version=1, body=original
        ),
        SimpleNamespace(
            period="2026-06",
            seq=1,
            status="issued",
            contract_version=1,
            body={**resettled, "adjusts": {"id": 1}, "resettled": resettled},
        ),
        SimpleNamespace(period="2026-06", seq=2, status="draft", contract_version=1, body=original),
    ]
    settled = full_statement(rows)
    assert settled is not None and settled.adjusted
    assert settled.body.kpis["availability"] == Decimal("0.96")


def test_proposed_quantities_are_rounded_down_to_three_significant_digits() -> None:
    assert nice_floor(Decimal("27843.5")) == Decimal("27800")
    assert nice_floor(Decimal("0.123456")) == Decimal("0.123")
    assert nice_floor(Decimal(0)) == 0


# promise_gap

PROMISED = terms_of(contract(value_promise={"promised": {"throughput": 36000}, "tolerance": 0.05}))


def _throughput(*values: float) -> list[SettledPeriod]:
    return months(PROMISED, "2026-06", [{"throughput": t} for t in values])


def test_promise_gap_fires_when_every_period_fell_short_by_more_than_the_tolerance() -> None:
    # 36,000 promised, 5 % tolerance: 34,200 is the edge
    finding = _one(_detect("promise_gap", _throughput(34199, 30000, 34199.5), PROMISED, CFG))
    assert (finding.subject, finding.term) == ("throughput", "value_promise.promised.throughput")
    assert [e["realised"] for e in finding.evidence] == [34199, 30000, 34199.5]
    proposal = propose(finding, PROMISED)
    assert proposal is not None and proposal.remedy == "corrective_action"
    assert proposal.proposed["owner"] == "provider"


def test_promise_gap_stays_quiet_at_the_edge_of_the_tolerance() -> None:
    assert _detect("promise_gap", _throughput(34200, 30000, 30000), PROMISED, CFG) == []
    assert _detect("promise_gap", _throughput(30000, 30000), PROMISED, CFG) == []  # no window


def test_promise_gap_may_re_baseline_the_promise_instead() -> None:
    cfg = DetectorSettings(promise_gap_remedy="change_terms")
    finding = _one(_detect("promise_gap", _throughput(30000, 31000, 32000), PROMISED, cfg))
    proposal = propose(finding, PROMISED)
    assert proposal is not None and proposal.remedy == "change_terms"
    assert (proposal.current, proposal.proposed) == (36000, 31000)
    assert proposal.proposed_terms is not None
    assert proposal.proposed_terms.value_promise is not None
    assert proposal.proposed_terms.value_promise.promised["throughput"] == Decimal(31000)
