"""``slack_target``: a KPI beat its target by more than ``slack_points`` (2) every period
of the window and no penalty was charged — the target was set on the wrong baseline
and no longer protects the customer."""

from __future__ import annotations

from schemas.contract import ContractTerms, KpiRule
from schemas.money import decimal_context
from schemas.statement import KpiEvaluation
from schemas.vocabulary import point_of
from services.settlement.proposals.base import Facts, Finding, Kind, Proposal
from services.settlement.proposals.edits import (
    kpi_floor,
    listed,
    move_target,
    rule,
    rule_json,
    values,
    with_rule,
)
from services.settlement.proposals.evidence import penalty_key, per_rule
from services.settlement.wording import show

NAME = "slack_target"


def detect(facts: Facts) -> list[Finding]:
    def slack(r: KpiRule, e: KpiEvaluation) -> bool:
        assert e.value is not None
        with decimal_context():
            margin = (e.value - r.target) / point_of(r.kpi)
        return margin > facts.cfg.slack_points and e.penalty == 0

    return per_rule(
        NAME,
        facts,
        facts.terms.terms.kpis,
        facts.cfg.window,
        slack,
        "kpis[{kpi}].target",
        penalty_key,
    )


def propose(finding: Finding, terms: ContractTerms) -> Proposal | None:
    r = rule(terms, finding.kpi)
    achieved = values(finding)
    target = kpi_floor(r.kpi, min(achieved))
    if target <= r.target:
        return None
    new = move_target(r, target)
    if new.bonus is not None and new.bonus.above < target:
        new = new.model_copy(update={"bonus": new.bonus.model_copy(update={"above": target})})
    return Proposal(
        finding,
        rule_json(r),
        rule_json(new),
        with_rule(terms, new),
        f"{r.kpi} beat its target {show(r.kpi, r.target)} comfortably in every period "
        f"(achieved {listed(achieved, r.kpi)}) and no penalty was charged: the target was set on the "
        f"wrong baseline and no longer protects the customer. Proposed: target {show(r.kpi, target)}, "
        "the lowest value achieved in the window rounded down, which every period met.",
        change=f"{r.kpi} target {show(r.kpi, r.target)} → {show(r.kpi, target)}",
        unchanged_because=f"every period of the window met the new target {show(r.kpi, target)}",
    )


KIND = Kind(
    name=NAME,
    order=30,
    detect=detect,
    propose=propose,
    window=lambda cfg: cfg.window,
    key=penalty_key,
)
