"""From a finding to a proposal: the term concerned, a proposed term, and why.

Proposed values are set from what was achieved in the window and rounded to
numbers people negotiate with (half points for ratios, three significant
digits for quantities), always in the direction that keeps the proposal
consistent with the evidence: a lowered target is one the window would have
met on average, a raised one is one it met every period.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from schemas.contract import ContractTerms, CreditsPenalty, KpiRule, json_number
from schemas.money import decimal_context, plain, round_money
from schemas.vocabulary import RATIO_KPIS
from services.settlement.proposals.detectors import Finding

RATIO_STEP = Decimal("0.005")
PCT_STEP = Decimal("0.01")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Proposal:
    """A finding with its current and proposed term; ``proposed`` None: no term change."""

    finding: Finding
    current: Any
    proposed: Any
    proposed_terms: ContractTerms | None
    rationale: str


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


def _values(finding: Finding, key: str = "value") -> list[Decimal]:
    return [Decimal(str(e[key])) for e in finding.evidence if e.get(key) is not None]


def _validated(terms: ContractTerms) -> ContractTerms:
    """Re-validate derived terms: model_copy skips validators, the store must not."""
    return ContractTerms.model_validate(terms.model_dump(mode="json"))


def _with_rule(terms: ContractTerms, rule: KpiRule) -> ContractTerms:
    rules = [rule if r.kpi == rule.kpi else r for r in terms.terms.kpis]
    return _validated(
        terms.model_copy(update={"terms": terms.terms.model_copy(update={"kpis": rules})})
    )


def _with_terms(terms: ContractTerms, **changes: Any) -> ContractTerms:
    return _validated(terms.model_copy(update={"terms": terms.terms.model_copy(update=changes)}))


def _rule(terms: ContractTerms, kpi: str | None) -> KpiRule:
    return next(r for r in terms.terms.kpis if r.kpi == kpi)


def _rule_json(rule: KpiRule) -> dict[str, Any]:
    return rule.model_dump(mode="json", exclude_none=True)


def _listed(values: Sequence[Decimal]) -> str:
    return ", ".join(plain(v) for v in values)


def _shift_credits(rule: KpiRule, delta: Decimal) -> KpiRule:
    """Move SLA credit thresholds with the target, so the same shortfall costs the same."""
    if not isinstance(rule.penalty, CreditsPenalty):
        return rule
    ceiling = Decimal(1) if rule.kpi in RATIO_KPIS else None
    credits = []
    for credit in rule.penalty.credits:
        below = max(ZERO, credit.below + delta)
        below = min(below, ceiling) if ceiling is not None else below
        credits.append(credit.model_copy(update={"below": below}))
    return rule.model_copy(update={"penalty": rule.penalty.model_copy(update={"credits": credits})})


def chronic_penalty(finding: Finding, terms: ContractTerms) -> Proposal | None:
    rule = _rule(terms, finding.kpi)
    achieved = _values(finding)
    with decimal_context():
        mean = sum(achieved, ZERO) / len(achieved)
    target = kpi_floor(rule.kpi, mean)
    if target >= rule.target:
        return None
    new = _shift_credits(rule.model_copy(update={"target": target}), target - rule.target)
    return Proposal(
        finding,
        _rule_json(rule),
        _rule_json(new),
        _with_rule(terms, new),
        f"The {rule.kpi} penalty was charged in every one of the last {len(achieved)} periods "
        f"(achieved {_listed(achieved)} against target {plain(rule.target)}). A target that is "
        "never met no longer steers performance; it has become a standing discount. Proposed: "
        f"target {plain(target)}, the average achieved ({plain(mean.quantize(Decimal('1e-6')))}) "
        "rounded down, so the penalty fires again only when performance drops below what was "
        "actually delivered.",
    )


def unreachable_bonus(finding: Finding, terms: ContractTerms) -> Proposal | None:
    rule = _rule(terms, finding.kpi)
    assert rule.bonus is not None
    achieved = _values(finding)
    best = max(achieved)
    step = RATIO_STEP if rule.kpi in RATIO_KPIS else Decimal(1).scaleb(best.adjusted() - 2)
    above = kpi_floor(rule.kpi, best)
    if above >= best:
        above -= step
    above = max(rule.target, above)
    if above >= rule.bonus.above:
        return None
    new = rule.model_copy(update={"bonus": rule.bonus.model_copy(update={"above": above})})
    return Proposal(
        finding,
        _rule_json(rule),
        _rule_json(new),
        _with_rule(terms, new),
        f"No {rule.kpi} bonus was earned in the last {len(achieved)} periods (best "
        f"{plain(best)}, bonus above {plain(rule.bonus.above)}). A bonus nobody can reach "
        f"rewards nothing. Proposed: bonus above {plain(above)}, which the best period of the "
        "window would just have earned, so extra effort pays again.",
    )


def slack_target(finding: Finding, terms: ContractTerms) -> Proposal | None:
    rule = _rule(terms, finding.kpi)
    achieved = _values(finding)
    target = kpi_floor(rule.kpi, min(achieved))
    if target <= rule.target:
        return None
    new = _shift_credits(rule.model_copy(update={"target": target}), target - rule.target)
    if new.bonus is not None and new.bonus.above < target:
        new = new.model_copy(update={"bonus": new.bonus.model_copy(update={"above": target})})
    return Proposal(
        finding,
        _rule_json(rule),
        _rule_json(new),
        _with_rule(terms, new),
        f"{rule.kpi} beat its target {plain(rule.target)} comfortably in every period "
        f"(achieved {_listed(achieved)}) and no penalty was charged: the target was set on the "
        f"wrong baseline and no longer protects the customer. Proposed: target {plain(target)}, "
        "the lowest value achieved in the window rounded down, which every period met.",
    )


def cap_binding(finding: Finding, terms: ContractTerms) -> Proposal | None:
    cap = finding.subject
    current: Decimal | None = getattr(terms.terms, cap)
    assert current is not None
    needed = ZERO
    with decimal_context():
        for e in finding.evidence:
            base = Decimal(e["charges_base"])
            if base > 0:
                needed = max(needed, Decimal(e["uncapped"]) / base)
    proposed = min(Decimal(1), (needed / PCT_STEP).to_integral_value(ROUND_CEILING) * PCT_STEP)
    if proposed <= current:
        return None
    bound = sum(1 for e in finding.evidence if e["bound"])
    what = "penalties" if cap == "penalty_cap_pct" else "bonuses"
    return Proposal(
        finding,
        json_number(current),
        json_number(proposed),
        _with_terms(terms, **{cap: proposed}),
        f"The {cap.removesuffix('_pct').replace('_', ' ')} bound in {bound} of the last "
        f"{len(finding.evidence)} periods: beyond it further {what} change nothing, so the KPI "
        f"stops steering. Proposed: {cap} {plain(proposed)}, the largest share of charges_base "
        "the window needed. (If the KPI's target itself is wrong, fix that instead — see the "
        "KPI's own proposals.)",
    )


def commitment_mismatch(finding: Finding, terms: ContractTerms) -> Proposal | None:
    usage = terms.terms.usage
    assert usage is not None
    used = _values(finding, "usage")
    proposed = nice_floor(min(used))
    if proposed == usage.minimum_commitment:
        return None
    new_usage = usage.model_copy(update={"minimum_commitment": proposed})
    below = finding.detail.get("direction") == "below"
    why = (
        "the customer paid for capacity it did not use every period"
        if below
        else "usage exceeded 130 % of it every period, so it no longer secures the provider's "
        "base load"
    )
    return Proposal(
        finding,
        json_number(usage.minimum_commitment),
        json_number(proposed),
        _with_terms(terms, usage=new_usage),
        f"The minimum commitment of {plain(usage.minimum_commitment)} no longer matches usage "
        f"({_listed(used)} {usage.basis}): {why}. Proposed: minimum_commitment "
        f"{plain(proposed)}, the lowest usage of the window rounded down, which every period met.",
    )


def excused_creep(finding: Finding, terms: ContractTerms) -> Proposal | None:
    source = finding.detail.get("source")
    before, last = finding.detail["previous_share"], finding.detail["last_share"]
    lead = (
        f"Excused time rose from {before:.2%} to {last:.2%} of period minutes, quarter on "
        "quarter. Excused minutes leave the availability base, so a growing excused share "
        "hides downtime from the KPIs and is where disputes over who caused downtime start."
    )
    if source is None:
        current = list(terms.excused_causes)
        return Proposal(finding, current, None, None, lead + " Review the annotations.")
    if source == "missing":
        return Proposal(
            finding,
            terms.missing_data,
            "downtime",
            _validated(terms.model_copy(update={"missing_data": "downtime"})),
            lead + " Most of the growth is missing data. Proposed: missing_data downtime, so "
            "unreported minutes count against availability until telemetry is restored.",
        )
    causes = [c for c in terms.excused_causes if c != source]
    return Proposal(
        finding,
        list(terms.excused_causes),
        causes,
        _validated(terms.model_copy(update={"excused_causes": causes})),
        lead + f" Most of the growth is '{source}' downtime. Proposed: stop excusing '{source}' "
        "downtime, so it counts against availability again — or agree in the review how much "
        f"'{source}' time per period is fair.",
    )


def data_gaps(finding: Finding, terms: ContractTerms) -> Proposal | None:
    devices = ", ".join(finding.detail["devices"])
    worst = max(_values(finding, "share"))
    lead = (
        f"Device(s) {devices} reported no data for up to {worst:.2%} of a period. "
        f"Under missing_data {terms.missing_data} money then depends on the telemetry link "
        "rather than on the equipment, and the statements lose both parties' trust."
    )
    if terms.missing_data == "excused":
        return Proposal(
            finding, terms.missing_data, None, None, lead + " Action: restore the telemetry."
        )
    return Proposal(
        finding,
        terms.missing_data,
        "excused",
        _validated(terms.model_copy(update={"missing_data": "excused"})),
        lead + " Proposed: missing_data excused, which neither rewards nor punishes gaps, while "
        "the devices' telemetry is restored; the impact shows how much money the gaps moved.",
    )


def unfair_split(finding: Finding, terms: ContractTerms) -> Proposal | None:
    model = terms.value_model
    assert model is not None
    with decimal_context():
        gaps = [
            model.agreed_provider_share * Decimal(e["value_created"])
            + Decimal(e["cost"])
            - Decimal(e["net"])
            for e in finding.evidence
        ]
        created = sum((Decimal(e["value_created"]) for e in finding.evidence), ZERO)
        delta = sum(gaps, ZERO) / len(gaps)
    reasons = ", ".join(finding.detail["reasons"]).replace("_", " ")
    fee = terms.terms.fixed_fee
    lead = (
        f"The realised split drifted ({reasons}): provider shares "
        f"{', '.join(_share(e) for e in finding.evidence)} against the agreed "
        f"{plain(model.agreed_provider_share)} ± {plain(model.tolerance)}."
    )
    if created <= 0:
        return Proposal(
            finding,
            format(fee, "f"),
            None,
            None,
            lead + " The contract created no value in the window: no fee makes both parties "
            "gain. Review the cost to serve and the value model.",
        )
    new_fee = max(ZERO, round_money(fee + delta, terms.currency))
    if new_fee == fee:
        return None
    return Proposal(
        finding,
        format(fee, "f"),
        format(new_fee, "f"),
        _with_terms(terms, fixed_fee=new_fee),
        lead + f" Proposed: fixed_fee {format(new_fee, 'f')} (from {format(fee, 'f')}), which "
        "would have given the provider the agreed share of the value created on average over "
        "the window.",
    )


def _share(evidence: dict[str, Any]) -> str:
    share = evidence.get("provider_share")
    return "undefined" if share is None else f"{share:.2f}"


PROPOSERS: dict[str, Callable[[Finding, ContractTerms], Proposal | None]] = {
    "chronic_penalty": chronic_penalty,
    "unreachable_bonus": unreachable_bonus,
    "slack_target": slack_target,
    "cap_binding": cap_binding,
    "commitment_mismatch": commitment_mismatch,
    "excused_creep": excused_creep,
    "data_gaps": data_gaps,
    "unfair_split": unfair_split,
}


def propose(finding: Finding, terms: ContractTerms) -> Proposal | None:
    """The proposal for ``finding``; ``None`` when no better term follows from the evidence."""
    return PROPOSERS[finding.kind](finding, terms)
