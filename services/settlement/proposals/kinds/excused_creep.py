"""``excused_creep``: the excused share of period minutes rose by more than
``excused_growth`` (half) from the previous quarter to the last and is above
``excused_floor`` (5 %).

"Quarter" means rolling blocks of three periods, so it can fire after any
month. Excused minutes leave the availability base: a growing excused share
hides downtime from the KPIs, and is where disputes over who caused it start.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from schemas.contract import ContractTerms
from schemas.money import decimal_context, round_kpi
from schemas.statement import StatementBody
from services.settlement.proposals.base import (
    ActionSpec,
    Facts,
    Finding,
    Kind,
    Proposal,
    corrective,
)
from services.settlement.proposals.edits import validated
from services.settlement.proposals.evidence import bound, kpi_inputs, num
from services.settlement.proposals.history import SettledPeriod
from services.settlement.wording import percent

NAME = "excused_creep"
QUARTER = 3
ZERO = Decimal(0)


def excused_key(terms: ContractTerms, _subject: str = "") -> Any:
    return kpi_inputs(terms)


def _sources(body: StatementBody, terms: ContractTerms) -> dict[str, Decimal]:
    """Excused minutes by where they come from: each excused cause, and missing data."""
    sources: dict[str, Decimal] = {c: ZERO for c in terms.excused_causes}
    for device in body.devices:
        for cause in terms.excused_causes:
            sources[cause] += device.down_min.get(cause, ZERO)
        if terms.missing_data == "excused":
            sources["missing"] = sources.get("missing", ZERO) + device.missing_min
    return sources


def _share(block: Sequence[SettledPeriod]) -> Decimal:
    with decimal_context():
        excused = sum((d.excused_min for i in block for d in i.body.devices), ZERO)
        minutes = sum((d.period_min for i in block for d in i.body.devices), ZERO)
        return round_kpi(excused / minutes) if minutes > 0 else ZERO


def detect(facts: Facts) -> list[Finding]:
    terms, cfg = facts.terms, facts.cfg
    window = facts.window(2 * QUARTER, bound(excused_key, NAME))
    if window is None:
        return []
    before, last = _share(window[:QUARTER]), _share(window[QUARTER:])
    if last <= cfg.excused_floor or last <= before * (1 + cfg.excused_growth):
        return []
    evidence = [
        {
            "period": str(item.period),
            "share": num(_share([item])),
            "excused_min": num(sum((d.excused_min for d in item.body.devices), ZERO)),
            "by_source": {k: num(v) for k, v in _sources(item.body, terms).items()},
        }
        for item in window
    ]
    grower = _fastest_growing(window, terms)
    detail = {"previous_share": num(before), "last_share": num(last), "source": grower}
    term = "missing_data" if grower == "missing" else "excused_causes"
    periods = tuple(i.period for i in window)
    return [Finding(NAME, term, term, periods, evidence, None, detail)]


def _fastest_growing(window: Sequence[SettledPeriod], terms: ContractTerms) -> str | None:
    def total(block: Sequence[SettledPeriod]) -> dict[str, Decimal]:
        sums: dict[str, Decimal] = {}
        for item in block:
            for source, minutes in _sources(item.body, terms).items():
                sums[source] = sums.get(source, ZERO) + minutes
        return sums

    before, last = total(window[:QUARTER]), total(window[QUARTER:])
    growth = {s: last[s] - before.get(s, ZERO) for s in last}
    best = max(growth, key=lambda s: (growth[s], s), default=None)
    return best if best is not None and growth[best] > 0 else None


def propose(finding: Finding, terms: ContractTerms) -> Proposal | None:
    source = finding.detail.get("source")
    before, last = finding.detail["previous_share"], finding.detail["last_share"]
    lead = (
        f"Excused time rose from {percent(Decimal(str(before)))} to {percent(Decimal(str(last)))} of period minutes, quarter on "
        "quarter. Excused minutes leave the availability base, so a growing excused share "
        "hides downtime from the KPIs and is where disputes over who caused downtime start."
    )
    if source is None:
        action = ActionSpec("review the annotations that excuse downtime", "provider")
        return corrective(finding, list(terms.excused_causes), action, lead)
    if source == "missing":
        return Proposal(
            finding,
            terms.missing_data,
            "downtime",
            validated(terms.model_copy(update={"missing_data": "downtime"})),
            lead + " Most of the growth is missing data. Proposed: missing_data downtime, so "
            "unreported minutes count against availability until telemetry is restored.",
            change="unreported minutes count as downtime (missing_data: downtime)",
        )
    causes = [c for c in terms.excused_causes if c != source]
    return Proposal(
        finding,
        list(terms.excused_causes),
        causes,
        validated(terms.model_copy(update={"excused_causes": causes})),
        lead + f" Most of the growth is '{source}' downtime. Proposed: stop excusing '{source}' "
        "downtime, so it counts against availability again — or agree in the review how much "
        f"'{source}' time per period is fair.",
        change=f"'{source}' downtime no longer excused",
    )


KIND = Kind(
    name=NAME,
    order=60,
    detect=detect,
    propose=propose,
    window=lambda cfg: 2 * QUARTER,
    key=excused_key,
)
