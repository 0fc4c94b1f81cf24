"""``commitment_mismatch``: usage was below the minimum commitment in every period, or above
``commitment_upper`` (130 %) of it in every period — the commitment no longer matches use."""

from __future__ import annotations

from typing import Any

from schemas.contract import ContractTerms, json_number
from schemas.money import round_kpi
from services.settlement.proposals.base import Facts, Finding, Kind, Proposal
from services.settlement.proposals.edits import listed, nice_floor, values, with_terms
from services.settlement.proposals.evidence import bound, kpi_inputs, num
from services.settlement.wording import show

NAME = "commitment_mismatch"
TERM = "usage.minimum_commitment"


def usage_key(terms: ContractTerms, _subject: str = "") -> Any:
    usage = terms.terms.usage
    return (kpi_inputs(terms), None if usage is None else usage.model_dump(mode="json"))


def detect(facts: Facts) -> list[Finding]:
    usage = facts.terms.terms.usage
    window = facts.window(facts.cfg.window, bound(usage_key, TERM))
    if window is None or usage is None or usage.minimum_commitment <= 0:
        return []
    commitment = usage.minimum_commitment
    quantities = [item.body.kpis.get(usage.basis) for item in window]
    if any(q is None for q in quantities):
        return []
    used = [q for q in quantities if q is not None]
    if all(q < commitment for q in used):
        direction = "below"
    elif all(q > facts.cfg.commitment_upper * commitment for q in used):
        direction = "above"
    else:
        return []
    evidence = [
        {
            "period": str(item.period),
            "usage": num(q),
            "basis": usage.basis,
            "minimum_commitment": num(commitment),
            "ratio": num(round_kpi(q / commitment)),
        }
        for item, q in zip(window, used, strict=True)
    ]
    periods = tuple(i.period for i in window)
    return [Finding(NAME, TERM, TERM, periods, evidence, None, {"direction": direction})]


def propose(finding: Finding, terms: ContractTerms) -> Proposal | None:
    usage = terms.terms.usage
    assert usage is not None
    used = values(finding, "usage")
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
    what = terms.unit if usage.basis == "throughput" else "h"
    old, new = (f"{show(None, v)} {what}" for v in (usage.minimum_commitment, proposed))
    return Proposal(
        finding,
        json_number(usage.minimum_commitment),
        json_number(proposed),
        with_terms(terms, usage=new_usage),
        f"The minimum commitment of {old} no longer matches usage "
        f"({listed(used)} {what} of {usage.basis.replace('_', ' ')}): {why}. Proposed: a minimum "
        f"commitment of {new}, the lowest usage of the window rounded down, which every period met.",
        change=f"minimum commitment {old} → {new}",
        unchanged_because=None
        if below
        else f"usage stayed above both commitments ({old} and {new}) in every period, so the floor never applied",
    )


KIND = Kind(
    name=NAME,
    order=50,
    detect=detect,
    propose=propose,
    window=lambda cfg: cfg.window,
    key=usage_key,
)
