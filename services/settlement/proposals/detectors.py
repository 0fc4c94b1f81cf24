"""The §4 detectors: pure functions from a statement history to findings.

Each detector reads only settled statements (and, for ``unfair_split``, the
value split derived from them), so what fired can be shown as evidence that
both parties can check against their own statements. The history handed in
is consecutive and settled under the terms being judged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from schemas.contract import ContractTerms, KpiRule, json_number
from schemas.money import decimal_context, round_kpi
from schemas.periods import Period
from schemas.statement import KpiEvaluation, StatementBody
from schemas.vocabulary import point_of
from services.settlement.proposals.history import SettledPeriod
from services.settlement.proposals.settings import DetectorSettings
from services.settlement.value import ValueSplit, provider_view

Kind = Literal[
    "chronic_penalty",
    "unreachable_bonus",
    "slack_target",
    "cap_binding",
    "commitment_mismatch",
    "excused_creep",
    "data_gaps",
    "unfair_split",
]
QUARTER = 3
ZERO = Decimal(0)


@dataclass(frozen=True)
class Finding:
    """A detector that fired: on what, over which periods, with which per-period values."""

    kind: Kind
    subject: str
    term: str
    periods: tuple[Period, ...]
    evidence: list[dict[str, Any]]
    kpi: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def window(self) -> tuple[Period, Period]:
        return self.periods[0], self.periods[-1]


def _last(history: Sequence[SettledPeriod], n: int) -> list[SettledPeriod] | None:
    """The last ``n`` periods, or ``None`` while the history is shorter than the window."""
    return list(history[-n:]) if len(history) >= n else None


def _evaluation(body: StatementBody, kpi: str) -> KpiEvaluation | None:
    return next((e for e in body.evaluations if e.kpi == kpi), None)


def _num(value: Decimal | None) -> int | float | None:
    return None if value is None else json_number(value)


def _kpi_evidence(item: SettledPeriod, e: KpiEvaluation) -> dict[str, Any]:
    return {
        "period": str(item.period),
        "value": _num(e.value),
        "target": _num(e.target),
        "deadband": _num(e.deadband),
        "bonus_above": _num(e.bonus_above),
        "status": e.status,
        "penalty": format(e.penalty, "f"),
        "bonus": format(e.bonus, "f"),
    }


RulePredicate = Callable[[KpiRule, KpiEvaluation], bool]


def _per_rule(
    kind: Kind,
    window: list[SettledPeriod] | None,
    rules: Sequence[KpiRule],
    fires: RulePredicate,
    term: str,
) -> list[Finding]:
    """One finding per KPI rule whose evaluation satisfies ``fires`` in every period."""
    if window is None:
        return []
    findings = []
    for rule in rules:
        evaluations = [_evaluation(item.body, rule.kpi) for item in window]
        if all(e is not None and e.value is not None and fires(rule, e) for e in evaluations):
            evidence = [_kpi_evidence(i, e) for i, e in zip(window, evaluations, strict=True) if e]
            periods = tuple(i.period for i in window)
            findings.append(
                Finding(kind, rule.kpi, term.format(kpi=rule.kpi), periods, evidence, rule.kpi)
            )
    return findings


def chronic_penalty(
    history: Sequence[SettledPeriod], terms: ContractTerms, cfg: DetectorSettings
) -> list[Finding]:
    """A KPI's penalty was charged in every period of the window."""
    rules = [r for r in terms.terms.kpis if r.penalty is not None]
    return _per_rule(
        "chronic_penalty",
        _last(history, cfg.window),
        rules,
        lambda _, e: e.penalty < 0,
        "kpis[{kpi}].target",
    )


def unreachable_bonus(
    history: Sequence[SettledPeriod], terms: ContractTerms, cfg: DetectorSettings
) -> list[Finding]:
    """A bonus was earned in none of the last ``bonus_window`` (6) periods."""
    rules = [r for r in terms.terms.kpis if r.bonus is not None]
    return _per_rule(
        "unreachable_bonus",
        _last(history, cfg.bonus_window),
        rules,
        lambda _, e: e.bonus == 0,
        "kpis[{kpi}].bonus.above",
    )


def slack_target(
    history: Sequence[SettledPeriod], terms: ContractTerms, cfg: DetectorSettings
) -> list[Finding]:
    """A KPI beat its target by more than ``slack_points`` every period, never penalised."""

    def slack(rule: KpiRule, e: KpiEvaluation) -> bool:
        assert e.value is not None
        with decimal_context():
            margin = (e.value - rule.target) / point_of(rule.kpi)
        return margin > cfg.slack_points and e.penalty == 0

    return _per_rule(
        "slack_target", _last(history, cfg.window), terms.terms.kpis, slack, "kpis[{kpi}].target"
    )


def _cap_evidence(item: SettledPeriod, cap: str, pct: Decimal) -> dict[str, Any]:
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


def cap_binding(
    history: Sequence[SettledPeriod], terms: ContractTerms, cfg: DetectorSettings
) -> list[Finding]:
    """The penalty or bonus cap bound in ``cap_binding_periods`` (2) or more periods."""
    window = _last(history, cfg.window)
    if window is None:
        return []
    findings = []
    for cap, pct in (
        ("penalty_cap", terms.terms.penalty_cap_pct),
        ("bonus_cap", terms.terms.bonus_cap_pct),
    ):
        if pct is None:
            continue
        evidence = [_cap_evidence(item, cap, pct) for item in window]
        if sum(1 for e in evidence if e["bound"]) >= cfg.cap_binding_periods:
            periods = tuple(i.period for i in window)
            term = f"{cap}_pct"
            findings.append(Finding("cap_binding", term, term, periods, evidence))
    return findings


def commitment_mismatch(
    history: Sequence[SettledPeriod], terms: ContractTerms, cfg: DetectorSettings
) -> list[Finding]:
    """Usage below the minimum commitment every period, or above 130 % of it every period."""
    window, usage = _last(history, cfg.window), terms.terms.usage
    if window is None or usage is None or usage.minimum_commitment <= 0:
        return []
    commitment = usage.minimum_commitment
    quantities = [item.body.kpis.get(usage.basis) for item in window]
    if any(q is None for q in quantities):
        return []
    values = [q for q in quantities if q is not None]
    if all(q < commitment for q in values):
        direction = "below"
    elif all(q > cfg.commitment_upper * commitment for q in values):
        direction = "above"
    else:
        return []
    evidence = [
        {
            "period": str(item.period),
            "usage": _num(q),
            "basis": usage.basis,
            "minimum_commitment": _num(commitment),
            "ratio": _num(round_kpi(q / commitment)),
        }
        for item, q in zip(window, values, strict=True)
    ]
    periods = tuple(i.period for i in window)
    term = "usage.minimum_commitment"
    return [
        Finding(
            "commitment_mismatch", term, term, periods, evidence, None, {"direction": direction}
        )
    ]


def _excused_sources(body: StatementBody, terms: ContractTerms) -> dict[str, Decimal]:
    """Excused minutes by where they come from: each excused cause, and missing data."""
    sources: dict[str, Decimal] = {c: ZERO for c in terms.excused_causes}
    for device in body.devices:
        for cause in terms.excused_causes:
            sources[cause] += device.down_min.get(cause, ZERO)
        if terms.missing_data == "excused":
            sources["missing"] = sources.get("missing", ZERO) + device.missing_min
    return sources


def _block_share(block: Sequence[SettledPeriod]) -> Decimal:
    with decimal_context():
        excused = sum((d.excused_min for i in block for d in i.body.devices), ZERO)
        minutes = sum((d.period_min for i in block for d in i.body.devices), ZERO)
        return round_kpi(excused / minutes) if minutes > 0 else ZERO


def excused_creep(
    history: Sequence[SettledPeriod], terms: ContractTerms, cfg: DetectorSettings
) -> list[Finding]:
    """The excused share rose by more than half from the previous quarter and is above 5 %."""
    window = _last(history, 2 * QUARTER)
    if window is None:
        return []
    before, last = _block_share(window[:QUARTER]), _block_share(window[QUARTER:])
    if last <= cfg.excused_floor or last <= before * (1 + cfg.excused_growth):
        return []
    evidence = []
    for item in window:
        sources = _excused_sources(item.body, terms)
        evidence.append(
            {
                "period": str(item.period),
                "share": _num(_block_share([item])),
                "excused_min": _num(sum((d.excused_min for d in item.body.devices), ZERO)),
                "by_source": {k: _num(v) for k, v in sources.items()},
            }
        )
    grower = _fastest_growing(window, terms)
    detail = {"previous_share": _num(before), "last_share": _num(last), "source": grower}
    term = "missing_data" if grower == "missing" else "excused_causes"
    periods = tuple(i.period for i in window)
    return [Finding("excused_creep", term, term, periods, evidence, None, detail)]


def _fastest_growing(window: Sequence[SettledPeriod], terms: ContractTerms) -> str | None:
    def total(block: Sequence[SettledPeriod]) -> dict[str, Decimal]:
        sums: dict[str, Decimal] = {}
        for item in block:
            for source, minutes in _excused_sources(item.body, terms).items():
                sums[source] = sums.get(source, ZERO) + minutes
        return sums

    before, last = total(window[:QUARTER]), total(window[QUARTER:])
    growth = {s: last[s] - before.get(s, ZERO) for s in last}
    best = max(growth, key=lambda s: (growth[s], s), default=None)
    return best if best is not None and growth[best] > 0 else None


def data_gaps(
    history: Sequence[SettledPeriod], terms: ContractTerms, cfg: DetectorSettings
) -> list[Finding]:
    """Some device's missing minutes exceeded ``data_gap_share`` (2 %) of a period."""
    window = _last(history, cfg.window)
    if window is None:
        return []
    evidence = []
    with decimal_context():
        for item in window:
            for d in item.body.devices:
                share = d.missing_min / d.period_min if d.period_min > 0 else ZERO
                if share > cfg.data_gap_share:
                    evidence.append(
                        {
                            "period": str(item.period),
                            "device_id": d.device_id,
                            "missing_min": _num(d.missing_min),
                            "period_min": _num(d.period_min),
                            "share": _num(round_kpi(share)),
                        }
                    )
    if not evidence:
        return []
    periods = tuple(i.period for i in window)
    devices = sorted({str(e["device_id"]) for e in evidence})
    return [
        Finding(
            "data_gaps",
            "missing_data",
            "missing_data",
            periods,
            evidence,
            None,
            {"devices": devices},
        )
    ]


def unfair_split(
    splits: Sequence[ValueSplit], terms: ContractTerms, cfg: DetectorSettings
) -> list[Finding]:
    """The provider's realised share left agreed ± tolerance every period, or a party lost
    money in ``negative_gain_periods`` (2) or more periods."""
    if terms.value_model is None or len(splits) < cfg.window:
        return []
    window = list(splits[-cfg.window :])
    if not all(s.cost_recorded for s in window):
        return []  # a margin without the cost to serve would be invented
    outside = all(s.within_agreed is False for s in window)
    customer_losses = sum(1 for s in window if s.customer_gain is not None and s.customer_gain < 0)
    provider_losses = sum(1 for s in window if s.provider_margin < 0)
    reasons = [
        *(["share_outside_agreed"] if outside else []),
        *(["customer_losing"] if customer_losses >= cfg.negative_gain_periods else []),
        *(["provider_losing"] if provider_losses >= cfg.negative_gain_periods else []),
    ]
    if not reasons:
        return []
    periods = tuple(Period.parse(s.period) for s in window)
    evidence = [provider_view(s) for s in window]
    return [
        Finding(
            "unfair_split", "fixed_fee", "fixed_fee", periods, evidence, None, {"reasons": reasons}
        )
    ]


HistoryDetector = Callable[
    [Sequence[SettledPeriod], ContractTerms, DetectorSettings], list[Finding]
]
HISTORY_DETECTORS: tuple[HistoryDetector, ...] = (
    chronic_penalty,
    unreachable_bonus,
    slack_target,
    cap_binding,
    commitment_mismatch,
    excused_creep,
    data_gaps,
)


def detect_all(
    history: Sequence[SettledPeriod],
    splits: Sequence[ValueSplit],
    terms: ContractTerms,
    cfg: DetectorSettings,
) -> list[Finding]:
    """Every finding over one contract's history, in the spec's order of kinds."""
    findings = [f for detector in HISTORY_DETECTORS for f in detector(history, terms, cfg)]
    return findings + unfair_split(splits, terms, cfg)
