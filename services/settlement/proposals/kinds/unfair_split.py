"""``unfair_split``: with a value model and the cost to serve recorded for every period of
the window, the provider's realised share of the value created left agreed ± tolerance in
every period, or either party lost money in ``negative_gain_periods`` (2) or more.

Its evidence and proposed fee would reveal the provider's cost, so only the
provider side sees it (``visibility="provider"``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schemas.contract import ContractTerms
from schemas.money import decimal_context, round_money
from services.settlement.proposals.base import (
    ActionSpec,
    Facts,
    Finding,
    Kind,
    Proposal,
    corrective,
)
from services.settlement.proposals.edits import with_terms
from services.settlement.proposals.evidence import NOT_SETTLED, bound
from services.settlement.value import provider_view
from services.settlement.wording import amount_words, percent

NAME = "unfair_split"
TERM = "fixed_fee"
ZERO = Decimal(0)


def split_key(terms: ContractTerms, _subject: str = "") -> Any:
    """Money terms and the value model: both make the split."""
    hidden = set(NOT_SETTLED) - {"value_model"}
    return terms.model_dump(mode="json", exclude=hidden)


def detect(facts: Facts) -> list[Finding]:
    terms, cfg = facts.terms, facts.cfg
    window = facts.window(cfg.window, bound(split_key, TERM))
    if terms.value_model is None or window is None:
        return []
    splits = [facts.split_of(item) for item in window]
    if any(s is None or not s.cost_recorded for s in splits):
        return []  # a margin without the cost to serve would be invented
    recorded = [s for s in splits if s is not None]
    outside = all(s.within_agreed is False for s in recorded)
    customer_losses = sum(
        1 for s in recorded if s.customer_gain is not None and s.customer_gain < 0
    )
    provider_losses = sum(1 for s in recorded if s.provider_margin < 0)
    reasons = [
        *(["share_outside_agreed"] if outside else []),
        *(["customer_losing"] if customer_losses >= cfg.negative_gain_periods else []),
        *(["provider_losing"] if provider_losses >= cfg.negative_gain_periods else []),
    ]
    if not reasons:
        return []
    periods = tuple(i.period for i in window)
    evidence = [provider_view(s) for s in recorded]
    return [Finding(NAME, TERM, TERM, periods, evidence, None, {"reasons": reasons})]


def _share(evidence: dict[str, Any]) -> str:
    share = evidence.get("provider_share")
    return "undefined" if share is None else percent(Decimal(str(share)))


def propose(finding: Finding, terms: ContractTerms) -> Proposal | None:
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
        f"{percent(model.agreed_provider_share)} ± {percent(model.tolerance)}."
    )
    if created <= 0:
        action = ActionSpec("review the cost to serve and the value model", "provider")
        return corrective(
            finding,
            format(fee, "f"),
            action,
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
        with_terms(terms, fixed_fee=new_fee),
        lead + f" Proposed: a fixed fee of {amount_words(new_fee, terms.currency)} (from "
        f"{amount_words(fee, terms.currency)}), which "
        "would have given the provider the agreed share of the value created on average over "
        "the window.",
        change=f"fixed fee {amount_words(fee, terms.currency)} → "
        f"{amount_words(new_fee, terms.currency)}",
    )


KIND = Kind(
    name=NAME,
    order=80,
    detect=detect,
    propose=propose,
    window=lambda cfg: cfg.window,
    key=split_key,
    visibility="provider",
)
