"""``chronic_penalty``: a KPI's penalty was charged in every period of the window.

A target that is never met has become a standing discount, but lowering it
pays whoever caused the shortfall. So the devices are compared first (spec
§4): if some device met the target in some period of the last
``baseline_window`` (6) while the fleet kept missing it, the equipment can
reach it and the shortfall is the lagging devices': the remedy is a corrective
action for the provider on them, with the money at stake, and no target
change. Only when no device met it in any of those periods was the target set
on the wrong baseline, and a lower one is proposed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schemas.contract import ContractTerms, KpiRule
from schemas.money import decimal_context
from schemas.periods import Period
from services.settlement.kpis import fleet_kpis, summary_quantities
from services.settlement.proposals.base import (
    ActionSpec,
    Facts,
    Finding,
    Kind,
    Proposal,
    corrective,
)
from services.settlement.proposals.edits import (
    kpi_floor,
    listed,
    move_target,
    rule,
    rule_json,
    values,
    with_rule,
)
from services.settlement.proposals.evidence import (
    bound,
    device_share,
    device_values,
    num,
    penalty_key,
    per_rule,
    rule_of,
)
from services.settlement.proposals.history import SettledPeriod
from services.settlement.wording import amount_words, show

NAME = "chronic_penalty"
ZERO = Decimal(0)


def detect(facts: Facts) -> list[Finding]:
    rules = [r for r in facts.terms.terms.kpis if r.penalty is not None]
    findings = per_rule(
        NAME,
        facts,
        rules,
        facts.cfg.window,
        lambda _, e: e.penalty < 0,
        "kpis[{kpi}].target",
        penalty_key,
    )
    return [_compare_devices(f, facts) for f in findings]


def _pooled(items: list[SettledPeriod], device: str, facts: Facts, kpi: Any) -> Decimal | None:
    """One device's value over several periods: numerators and denominators summed."""
    quantities = [
        summary_quantities(d) for item in items for d in item.body.devices if d.device_id == device
    ]
    return fleet_kpis(quantities, facts.terms.rated_capacity_per_hour)[kpi] if quantities else None


def _compare_devices(finding: Finding, facts: Facts) -> Finding:
    """Add each device's value per period and decide whose shortfall it is."""
    r = rule_of(facts.terms, finding.kpi)
    assert r is not None
    run = facts.run(bound(penalty_key, r.kpi))
    baseline = run[-max(facts.cfg.baseline_window, len(finding.periods)) :]
    per_period = {
        str(item.period): device_values(item, facts.terms_of(item), r.kpi) for item in baseline
    }
    share = device_share(r, len(facts.terms.devices))
    devices = list(facts.terms.devices)
    met = {d: [p for p, v in per_period.items() if d in v and v[d] >= share] for d in devices}
    window = [item for item in baseline if item.period in finding.periods]
    pooled = {d: _pooled(window, d, facts, r.kpi) for d in devices}
    lagging = [d for d in devices if (v := pooled[d]) is not None and v < share]
    if not lagging:  # rounding can hide it; whoever missed most often lags
        lagging = [
            d
            for d in devices
            if any(per_period[str(p)].get(d, share) < share for p in finding.periods)
        ]
    evidence = [
        {**e, "devices": {d: num(v) for d, v in per_period.get(e["period"], {}).items()}}
        for e in finding.evidence
    ]
    detail = {
        "remedy": "corrective_action" if any(met.values()) else "change_terms",
        "device_target": num(share),
        "met_target": {d: periods for d, periods in met.items() if periods},
        "baseline_periods": list(per_period),
        "window_values": {d: num(v) for d, v in pooled.items()},
        "lagging": lagging,
    }
    return Finding(
        finding.kind,
        finding.subject,
        finding.term,
        finding.periods,
        evidence,
        finding.kpi,
        detail,
    )


def propose(finding: Finding, terms: ContractTerms) -> Proposal | None:
    r = rule(terms, finding.kpi)
    if finding.detail.get("remedy") == "corrective_action":
        return _action(finding, r, terms.currency)
    return _rebaseline(finding, r, terms)


def _action(finding: Finding, r: KpiRule, currency: str) -> Proposal:
    detail = finding.detail
    lagging: list[str] = detail["lagging"]
    share = Decimal(str(detail["device_target"]))
    achieved = values(finding)
    at_stake = [(Period.parse(e["period"]), -Decimal(e["penalty"])) for e in finding.evidence]
    met = "; ".join(f"{d} met it in {', '.join(p)}" for d, p in detail["met_target"].items())
    lag = ", ".join(
        f"{d} {show(r.kpi, Decimal(str(detail['window_values'][d])))}"
        for d in lagging
        if detail["window_values"].get(d) is not None
    )
    total = sum((amount for _, amount in at_stake), ZERO)
    stakes = ", ".join(f"{p} {amount_words(a, currency)}" for p, a in at_stake)
    action = ActionSpec(
        f"bring {r.kpi} of {', '.join(lagging)} up to {show(r.kpi, share)}",
        "provider",
        r.kpi,
        tuple(lagging),
    )
    return corrective(
        finding,
        rule_json(r),
        action,
        f"The {r.kpi} penalty was charged in every one of the last {len(achieved)} periods "
        f"(fleet {listed(achieved, r.kpi)} against target {show(r.kpi, r.target)}), yet the "
        "equipment can "
        f"reach the target: {met}. The shortfall is the lagging devices' ({lag} over "
        "the window), so the remedy is work on them by the provider, not a lower target — "
        "that would pay the provider for its own equipment's shortfall. Penalties at stake: "
        f"{stakes} "
        f"({amount_words(total, currency)} over the window); they stop once the devices are back on target.",
        at_stake,
    )


def _rebaseline(finding: Finding, r: KpiRule, terms: ContractTerms) -> Proposal | None:
    achieved = values(finding)
    with decimal_context():
        mean = sum(achieved, ZERO) / len(achieved)
    target = kpi_floor(r.kpi, mean)
    if target >= r.target:
        return None
    new = move_target(r, target)
    looked = len(finding.detail.get("baseline_periods", achieved))
    return Proposal(
        finding,
        rule_json(r),
        rule_json(new),
        with_rule(terms, new),
        f"The {r.kpi} penalty was charged in every one of the last {len(achieved)} periods "
        f"(achieved {listed(achieved, r.kpi)} against target {show(r.kpi, r.target)}), and no "
        "device met "
        f"the target in any of the last {looked} settled periods: the target was set on the "
        "wrong baseline. A target that is never met no longer steers performance; it has become "
        f"a standing discount. Proposed: target {show(r.kpi, target)}, the average achieved "
        f"({show(r.kpi, mean)}) rounded down, so the penalty fires again "
        "only when performance drops below what was actually delivered.",
        change=f"{r.kpi} target {show(r.kpi, r.target)} → {show(r.kpi, target)}",
    )


KIND = Kind(
    name=NAME,
    order=10,
    detect=detect,
    propose=propose,
    window=lambda cfg: cfg.window,
    key=penalty_key,
)
