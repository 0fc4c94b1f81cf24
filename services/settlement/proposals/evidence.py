"""Reading evidence out of settled statements: windows, KPI verdicts, per-device values.

Detectors read only statements (and the value split derived from them), so
what fired can be shown as evidence both parties can check against their own
statements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from schemas.contract import ContractTerms, KpiRule, json_number
from schemas.statement import KpiEvaluation, StatementBody
from schemas.vocabulary import RATIO_KPIS, KpiName
from services.settlement.kpis import fleet_kpis, summary_quantities
from services.settlement.proposals.base import Facts, Finding, TermsKey
from services.settlement.proposals.history import SettledPeriod

ZERO = Decimal(0)
NOT_SETTLED = ("value_model", "value_promise", "annotation_approval", "effective_from")
"""Version fields settlement never reads: changing them leaves evidence comparable."""


def num(value: Decimal | None) -> int | float | None:
    return None if value is None else json_number(value)


def evaluation(body: StatementBody, kpi: str) -> KpiEvaluation | None:
    return next((e for e in body.evaluations if e.kpi == kpi), None)


def rule_of(terms: ContractTerms, kpi: str | None) -> KpiRule | None:
    return next((r for r in terms.terms.kpis if r.kpi == kpi), None)


def kpi_inputs(terms: ContractTerms) -> tuple[Any, ...]:
    """What a KPI value depends on besides the data: devices, policies, capacity."""
    return (
        tuple(terms.devices),
        terms.missing_data,
        tuple(terms.excused_causes),
        terms.rated_capacity_per_hour,
    )


def _rule_part(terms: ContractTerms, kpi: str, fields: tuple[str, ...]) -> Any:
    rule = rule_of(terms, kpi)
    part = None if rule is None else rule.model_dump(mode="json", include=set(fields))
    return (kpi_inputs(terms), part)


def penalty_key(terms: ContractTerms, kpi: str) -> Any:
    """Whether a penalty was charged depends on the target, deadband and penalty form."""
    return _rule_part(terms, kpi, ("target", "deadband", "penalty"))


def bonus_key(terms: ContractTerms, kpi: str) -> Any:
    """Whether a bonus was earned depends on its threshold alone (and the KPI's inputs)."""
    return _rule_part(terms, kpi, ("bonus",))


def settlement_key(terms: ContractTerms, _subject: str = "") -> Any:
    """Everything settlement reads: evidence about money needs all of it unchanged."""
    return terms.model_dump(mode="json", exclude=set(NOT_SETTLED))


SubjectKey = Callable[[ContractTerms, str], Any]


def bound(key: SubjectKey, subject: str) -> TermsKey:
    return lambda terms: key(terms, subject)


def kpi_evidence(item: SettledPeriod, e: KpiEvaluation) -> dict[str, Any]:
    return {
        "period": str(item.period),
        "value": num(e.value),
        "target": num(e.target),
        "deadband": num(e.deadband),
        "bonus_above": num(e.bonus_above),
        "status": e.status,
        "penalty": format(e.penalty, "f"),
        "bonus": format(e.bonus, "f"),
    }


RulePredicate = Callable[[KpiRule, KpiEvaluation], bool]


def per_rule(
    kind: str,
    facts: Facts,
    rules: Sequence[KpiRule],
    length: int,
    fires: RulePredicate,
    term: str,
    key: SubjectKey,
) -> list[Finding]:
    """One finding per KPI rule whose evaluation satisfies ``fires`` in each of the
    last ``length`` periods settled under terms equal on ``key``."""
    findings = []
    for rule in rules:
        window = facts.window(length, bound(key, rule.kpi))
        if window is None:
            continue
        evaluations = [evaluation(item.body, rule.kpi) for item in window]
        if all(e is not None and e.value is not None and fires(rule, e) for e in evaluations):
            evidence = [kpi_evidence(i, e) for i, e in zip(window, evaluations, strict=True) if e]
            periods = tuple(i.period for i in window)
            findings.append(
                Finding(kind, rule.kpi, term.format(kpi=rule.kpi), periods, evidence, rule.kpi)
            )
    return findings


def device_values(item: SettledPeriod, terms: ContractTerms, kpi: KpiName) -> dict[str, Decimal]:
    """Each device's own value of ``kpi`` in one settled period (undefined ones left out).

    Computed from the statement's device summaries with the fleet formulas, so a
    one-device fleet's value is exactly its statement's.
    """
    values = {}
    for summary in item.body.devices:
        value = fleet_kpis([summary_quantities(summary)], terms.rated_capacity_per_hour)[kpi]
        if value is not None:
            values[summary.device_id] = value
    return values


def device_share(rule: KpiRule, devices: int) -> Decimal:
    """What one device must reach for the fleet to meet ``rule``: the target itself for a
    ratio, an equal share of it for a sum such as throughput."""
    if rule.kpi in RATIO_KPIS or devices == 0:
        return rule.target
    return rule.target / devices
