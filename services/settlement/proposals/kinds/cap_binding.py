"""``cap_binding``: the penalty or bonus cap bound in ``cap_binding_periods`` (2) or more
periods of the window — beyond it further penalties or bonuses change nothing, so the
KPI stops steering."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Any

from schemas.contract import ContractTerms, json_number
from schemas.money import decimal_context
from services.settlement.proposals.base import Facts, Finding, Kind, Proposal
from services.settlement.proposals.edits import PCT_STEP, with_terms
from services.settlement.proposals.evidence import bound, settlement_key
from services.settlement.proposals.history import SettledPeriod
from services.settlement.wording import percent

NAME = "cap_binding"
ZERO = Decimal(0)
CAPS = ("penalty_cap", "bonus_cap")


def _evidence(item: SettledPeriod, cap: str, pct: Decimal) -> dict[str, Any]:
    body = item.body
    source = "penalty" if cap == "penalty_cap" else "bonus"
    total = abs(sum((ln.amount for ln in body.lines if ln.kind == source), ZERO))
    returned = abs(sum((ln.amount for ln in body.lines if ln.kind == cap), ZERO))
    return {
        "period": str(item.period),
        "bound": returned > 0,
        "uncapped": format(total, "f"),
        "charges_base": format(body.charges_base, "f"),
        "cap": format(pct * body.charges_base, "f"),
        "returned": format(returned, "f"),
    }


def detect(facts: Facts) -> list[Finding]:
    findings = []
    for cap in CAPS:
        term = f"{cap}_pct"
        pct: Decimal | None = getattr(facts.terms.terms, term)
        window = facts.window(facts.cfg.window, bound(settlement_key, term))
        if pct is None or window is None:
            continue
        evidence = [_evidence(item, cap, pct) for item in window]
        if sum(1 for e in evidence if e["bound"]) >= facts.cfg.cap_binding_periods:
            periods = tuple(i.period for i in window)
            findings.append(Finding(NAME, term, term, periods, evidence))
    return findings


def propose(finding: Finding, terms: ContractTerms) -> Proposal | None:
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
    bound_in = sum(1 for e in finding.evidence if e["bound"])
    what = "penalties" if cap == "penalty_cap_pct" else "bonuses"
    name = cap.removesuffix("_pct").replace("_", " ")
    return Proposal(
        finding,
        json_number(current),
        json_number(proposed),
        with_terms(terms, **{cap: proposed}),
        f"The {name} bound in {bound_in} of the last "
        f"{len(finding.evidence)} periods: beyond it further {what} change nothing, so the KPI "
        f"stops steering. Proposed: {name} {percent(proposed)} of fixed fee + usage, the "
        "largest share of them the window needed. (If the KPI's target itself is wrong, fix that instead — see the "
        "KPI's own proposals.)",
        change=f"{name} {percent(current)} → {percent(proposed)} of fixed fee + usage",
    )


KIND = Kind(
    name=NAME,
    order=40,
    detect=detect,
    propose=propose,
    window=lambda cfg: cfg.window,
    key=settlement_key,
)
