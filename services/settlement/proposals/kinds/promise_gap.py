"""``promise_gap`` (spec §7.3): a promised figure was missed by more than the promise's
``tolerance`` (relative) in every period of the window.

The supplier promised the business case at the sale; the follow-up is a
corrective action for the provider by default (on the devices below the
promise, for a ratio KPI), with the evidence per period and device. With the
detector setting ``promise_gap_remedy: change_terms`` the proposal is instead
to re-baseline the promise on what was delivered.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schemas.contract import ContractTerms
from schemas.money import decimal_context, round_money
from schemas.periods import Period
from schemas.vocabulary import CUSTOMER_VALUE, KPIS, RATIO_KPIS
from services.settlement.kpis import fleet_kpis, summary_quantities
from services.settlement.promise import missed, realised
from services.settlement.proposals.base import (
    ActionSpec,
    Facts,
    Finding,
    Kind,
    Proposal,
    corrective,
)
from services.settlement.proposals.edits import kpi_floor, validated
from services.settlement.proposals.evidence import bound, device_values, kpi_inputs, num
from services.settlement.proposals.history import SettledPeriod
from services.settlement.wording import amount_words, percent, show

NAME = "promise_gap"
PREFIX = "value_promise.promised."
ZERO = Decimal(0)


def promise_key(terms: ContractTerms, figure: str) -> Any:
    """The promise, the value model (customer value) and what the KPI depends on."""
    promise = terms.value_promise
    model = terms.value_model
    return (
        kpi_inputs(terms),
        None if promise is None else promise.model_dump(mode="json"),
        None if model is None else format(model.customer_value_per_unit, "f"),
    )


def _say(figure: str, value: Decimal, currency: str) -> str:
    return amount_words(value, currency) if figure == CUSTOMER_VALUE else show(figure, value)


def _lagging(
    window: list[SettledPeriod], facts: Facts, figure: str, promised: Decimal
) -> list[str]:
    """Devices whose own value over the window stayed under the promise (ratio KPIs)."""
    if figure not in RATIO_KPIS:
        return []
    lagging = []
    for device in facts.terms.devices:
        quantities = [
            summary_quantities(d) for i in window for d in i.body.devices if d.device_id == device
        ]
        value = fleet_kpis(quantities, facts.terms.rated_capacity_per_hour)[figure]
        if value is not None and value < promised:
            lagging.append(device)
    return lagging


def detect(facts: Facts) -> list[Finding]:
    promise = facts.terms.value_promise
    if promise is None:
        return []
    findings = []
    for figure, promised in promise.promised.items():
        window = facts.window(facts.cfg.window, bound(promise_key, figure))
        if window is None:
            continue
        values = [realised(i.body, facts.terms_of(i), figure) for i in window]
        if not all(missed(promised, v, promise.tolerance) for v in values):
            continue
        currency = facts.terms.currency
        evidence = []
        for item, value in zip(window, values, strict=True):
            assert value is not None
            with decimal_context():
                relative = (value - promised) / promised if promised > 0 else None
            row: dict[str, Any] = {
                "period": str(item.period),
                "promised": _value(figure, promised, currency),
                "realised": _value(figure, value, currency),
                "relative_gap": None
                if relative is None
                else num(relative.quantize(Decimal("1e-6"))),
                "tolerance": num(promise.tolerance),
            }
            if figure in KPIS:
                values_by_device = device_values(item, facts.terms_of(item), figure)
                row["devices"] = {d: num(v) for d, v in values_by_device.items()}
            evidence.append(row)
        detail = {
            "lagging": _lagging(window, facts, figure, promised),
            "remedy": facts.cfg.promise_gap_remedy,
        }
        periods = tuple(i.period for i in window)
        kpi = figure if figure in KPIS else None
        findings.append(Finding(NAME, figure, PREFIX + figure, periods, evidence, kpi, detail))
    return findings


def _value(figure: str, value: Decimal, currency: str) -> Any:
    return format(round_money(value, currency), "f") if figure == CUSTOMER_VALUE else num(value)


def propose(finding: Finding, terms: ContractTerms) -> Proposal | None:
    promise = terms.value_promise
    assert promise is not None
    figure = finding.subject
    promised = promise.promised[figure]
    achieved = [Decimal(str(e["realised"])) for e in finding.evidence]
    said = ", ".join(_say(figure, v, terms.currency) for v in achieved)
    lead = (
        f"The {figure.replace('_', ' ')} promised at the sale ({_say(figure, promised, terms.currency)}"
        f" a period) was missed by more than the tolerance of {percent(promise.tolerance)} "
        f"in every one of the last {len(achieved)} periods (delivered {said})."
    )
    if finding.detail.get("remedy") == "change_terms":
        return _rebaseline(finding, terms, figure, promised, achieved, lead)
    lagging: list[str] = finding.detail.get("lagging", [])
    on = f" on {', '.join(lagging)}" if lagging else ""
    action = ActionSpec(
        f"deliver the promised {figure.replace('_', ' ')} of "
        f"{_say(figure, promised, terms.currency)}{on}",
        "provider",
        figure if figure in KPIS else None,
        tuple(lagging),
    )
    stakes: list[tuple[Period, Decimal]] = []
    if figure == CUSTOMER_VALUE:
        stakes = [(p, promised - v) for p, v in zip(finding.periods, achieved, strict=True)]
    return corrective(
        finding,
        promise.model_dump(mode="json")["promised"][figure],
        action,
        lead + " The promise was the reason to buy: the remedy is work by the provider to "
        "deliver it, checked in the next review against the same figures.",
        stakes,
        "of customer value promised but not delivered",
    )


def _rebaseline(
    finding: Finding,
    terms: ContractTerms,
    figure: str,
    promised: Decimal,
    achieved: list[Decimal],
    lead: str,
) -> Proposal | None:
    promise = terms.value_promise
    assert promise is not None
    with decimal_context():
        mean = sum(achieved, ZERO) / len(achieved)
    new = round_money(mean, terms.currency) if figure == CUSTOMER_VALUE else kpi_floor(figure, mean)
    if new >= promised:
        return None
    figures = {**promise.promised, figure: new}
    changed = promise.model_copy(update={"promised": figures})
    current = promise.model_dump(mode="json")["promised"][figure]
    proposed = changed.model_dump(mode="json")["promised"][figure]
    return Proposal(
        finding,
        current,
        proposed,
        validated(terms.model_copy(update={"value_promise": changed})),
        lead + f" Proposed: promise {_say(figure, new, terms.currency)}, what was delivered on "
        "average, so the review follows a promise the equipment keeps.",
        change=f"promised {figure.replace('_', ' ')} {_say(figure, promised, terms.currency)} → "
        f"{_say(figure, new, terms.currency)}",
        unchanged_because="the promise moves no money by itself",
    )


KIND = Kind(
    name=NAME,
    order=90,
    detect=detect,
    propose=propose,
    window=lambda cfg: cfg.window,
    key=promise_key,
)
