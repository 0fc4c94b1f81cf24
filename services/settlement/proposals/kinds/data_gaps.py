"""``data_gaps``: some device's missing minutes exceeded ``data_gap_share`` (2 %) of a
period of the window — money then depends on the telemetry link, not the equipment."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schemas.contract import ContractTerms
from schemas.money import decimal_context, round_kpi
from services.settlement.proposals.base import (
    ActionSpec,
    Facts,
    Finding,
    Kind,
    Proposal,
    corrective,
)
from services.settlement.proposals.edits import validated, values
from services.settlement.proposals.evidence import bound, num
from services.settlement.wording import percent

NAME = "data_gaps"
TERM = "missing_data"
ZERO = Decimal(0)


def devices_key(terms: ContractTerms, _subject: str = "") -> Any:
    return tuple(terms.devices)


def detect(facts: Facts) -> list[Finding]:
    window = facts.window(facts.cfg.window, bound(devices_key, TERM))
    if window is None:
        return []
    evidence = []
    with decimal_context():
        for item in window:
            for d in item.body.devices:
                share = d.missing_min / d.period_min if d.period_min > 0 else ZERO
                if share > facts.cfg.data_gap_share:
                    evidence.append(
                        {
                            "period": str(item.period),
                            "device_id": d.device_id,
                            "missing_min": num(d.missing_min),
                            "period_min": num(d.period_min),
                            "share": num(round_kpi(share)),
                        }
                    )
    if not evidence:
        return []
    periods = tuple(i.period for i in window)
    devices = sorted({str(e["device_id"]) for e in evidence})
    return [Finding(NAME, TERM, TERM, periods, evidence, None, {"devices": devices})]


def propose(finding: Finding, terms: ContractTerms) -> Proposal | None:
    devices = finding.detail["devices"]
    worst = max(values(finding, "share"))
    lead = (
        f"Device(s) {', '.join(devices)} reported no data for up to {percent(worst)} of a period. "
        f"Under missing_data {terms.missing_data} money then depends on the telemetry link "
        "rather than on the equipment, and the statements lose both parties' trust."
    )
    if terms.missing_data == "excused":
        action = ActionSpec(
            f"restore the telemetry of {', '.join(devices)}", "provider", None, tuple(devices)
        )
        return corrective(
            finding, terms.missing_data, action, lead + " Action: restore the telemetry."
        )
    return Proposal(
        finding,
        terms.missing_data,
        "excused",
        validated(terms.model_copy(update={"missing_data": "excused"})),
        lead + " Proposed: missing_data excused, which neither rewards nor punishes gaps, while "
        "the devices' telemetry is restored; the impact shows how much money the gaps moved.",
        change="unreported minutes excused (missing_data: excused)",
        unchanged_because="the gaps fell in minutes that cost no penalty either way",
    )


KIND = Kind(
    name=NAME,
    order=70,
    detect=detect,
    propose=propose,
    window=lambda cfg: cfg.window,
    key=devices_key,
)
