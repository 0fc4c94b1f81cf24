"""``data_gaps``: some device's missing minutes exceeded ``data_gap_share`` (2 %) of a
period of the window — money then depends on the telemetry link, not the equipment.

The evidence splits each device's missing minutes by connection state
(``services.settlement.connectivity``): ``offline_min`` (between a Sparkplug
death and the next birth), ``silent_min`` (connected, yet nothing arrived)
and ``unknown_min`` (no connection state), and says which dominated
(``mostly``). These keys appear for devices with connection state; without
any, every missing minute is unknown and the evidence is as before. The
rationale names the cause when connection state explains the gap."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schemas.contract import ContractTerms
from schemas.money import decimal_context, round_kpi
from services.settlement.connectivity import MissingSplit, unexplained
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
                    gap = facts.missing.get((str(item.period), d.device_id))
                    gap = gap or unexplained(d.missing_min)
                    entry = {
                        "period": str(item.period),
                        "device_id": d.device_id,
                        "missing_min": num(d.missing_min),
                        "period_min": num(d.period_min),
                        "share": num(round_kpi(share)),
                    }
                    if gap.known:  # a device with connection state (Sparkplug B)
                        entry |= {
                            "offline_min": num(gap.offline_min),
                            "silent_min": num(gap.silent_min),
                            "unknown_min": num(gap.unknown_min),
                            "mostly": gap.mostly,
                        }
                    evidence.append(entry)
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
    ) + _causes(finding)
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


WHY = {
    "offline": "offline (between a Sparkplug death and the next birth: link or gateway down)",
    "silent": "silent while connected (births say online, yet no data arrived)",
}


def _causes(finding: Finding) -> str:
    """What connection state says about the gaps, when it says anything."""

    def total(key: str) -> Decimal:
        return sum(
            (
                Decimal(str(e.get(key, e["missing_min"] if key == "unknown_min" else 0)))
                for e in finding.evidence
            ),
            ZERO,
        )

    offline, silent, unknown = total("offline_min"), total("silent_min"), total("unknown_min")
    if offline == silent == ZERO:
        return ""
    mostly = MissingSplit(offline, silent, unknown).mostly
    lead = f" Mostly {WHY[mostly]}." if mostly in WHY else ""
    return (
        f"{lead} Missing minutes: {offline} offline, {silent} silent while connected, "
        f"{unknown} without connection state."
    )


KIND = Kind(
    name=NAME,
    order=70,
    detect=detect,
    propose=propose,
    window=lambda cfg: cfg.window,
    key=devices_key,
)
