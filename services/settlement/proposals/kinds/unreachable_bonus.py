"""``unreachable_bonus``: a bonus was earned in none of the last ``bonus_window`` (6) periods.

A bonus nobody reaches rewards nothing. The threshold is lowered so the best
period of the window would just have earned it, but never below the target
(a bonus must not reward and penalise the same value). When even the best
period was below the target, the lowered threshold pays nothing over the
window, and the proposal says so and what it changes from the next period on.
"""

from __future__ import annotations

from decimal import Decimal

from schemas.contract import ContractTerms
from schemas.vocabulary import RATIO_KPIS
from services.settlement.proposals.base import Facts, Finding, Kind, Proposal
from services.settlement.proposals.edits import (
    RATIO_STEP,
    kpi_floor,
    rule,
    rule_json,
    values,
    with_rule,
)
from services.settlement.proposals.evidence import bonus_key, per_rule
from services.settlement.wording import amount_words, show

NAME = "unreachable_bonus"


def detect(facts: Facts) -> list[Finding]:
    rules = [r for r in facts.terms.terms.kpis if r.bonus is not None]
    return per_rule(
        NAME,
        facts,
        rules,
        facts.cfg.bonus_window,
        lambda _, e: e.bonus == 0,
        "kpis[{kpi}].bonus.above",
        bonus_key,
    )


def propose(finding: Finding, terms: ContractTerms) -> Proposal | None:
    r = rule(terms, finding.kpi)
    assert r.bonus is not None
    achieved = values(finding)
    best = max(achieved)
    step = RATIO_STEP if r.kpi in RATIO_KPIS else Decimal(1).scaleb(best.adjusted() - 2)
    above = kpi_floor(r.kpi, best)
    if above >= best:
        above -= step
    above = max(r.target, above)
    if above >= r.bonus.above:
        return None
    new = r.model_copy(update={"bonus": r.bonus.model_copy(update={"above": above})})
    lead = (
        f"No {r.kpi} bonus was earned in the last {len(achieved)} periods (best "
        f"{show(r.kpi, best)}, bonus above {show(r.kpi, r.bonus.above)}). A bonus nobody can reach "
        "rewards nothing."
    )
    per_point = amount_words(r.bonus.per_point, terms.currency)
    pays = f"every point above {show(r.kpi, above)} earns {per_point}"
    if best > above:
        why = (
            f" Proposed: bonus above {show(r.kpi, above)}, which the best period of the window "
            f"would just have earned, so extra effort pays again ({pays})."
        )
        unchanged = None
    else:
        why = (
            f" Even the best period was not above the target {show(r.kpi, r.target)}, the "
            f"lowest a bonus threshold may be. Proposed: bonus above {show(r.kpi, above)}; it would have "
            f"paid nothing in this window, but from the next period on {pays}, so reaching "
            "and beating the target pays."
        )
        unchanged = (
            f"{r.kpi} never exceeded {show(r.kpi, above)} in the window (best "
            f"{show(r.kpi, best)}), so the lower threshold would have paid no bonus"
        )
    return Proposal(
        finding,
        rule_json(r),
        rule_json(new),
        with_rule(terms, new),
        lead + why,
        change=f"{r.kpi} bonus from above {show(r.kpi, r.bonus.above)} to above "
        f"{show(r.kpi, above)} ({pays})",
        unchanged_because=unchanged,
    )


KIND = Kind(
    name=NAME,
    order=20,
    detect=detect,
    propose=propose,
    window=lambda cfg: cfg.bonus_window,
    key=bonus_key,
)
