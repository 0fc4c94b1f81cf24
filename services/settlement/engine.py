"""The settlement engine: one pure function from terms and usage to a statement.

``settle`` implements spec §3.3. The scheduler, the API, the what-if simulator
and the proposal impact calculator all call it, so no formula lives anywhere
else. It reads no clock and no database: the same inputs give the same
statement, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from schemas.contract import ContractTerms, KpiRule, Tier, Usage
from schemas.money import decimal_context, format_money, plain, round_kpi, round_money
from schemas.periods import Period, period_minutes
from schemas.statement import (
    DeviceSummary,
    EvaluationStatus,
    KpiEvaluation,
    StatementBody,
    StatementLine,
)
from schemas.vocabulary import KPI_NAMES, KpiName, LineKind, point_of
from services.settlement.kpis import (
    ZERO,
    DeviceQuantities,
    DeviceUsage,
    device_quantities,
    fleet_kpis,
)
from services.settlement.penalties import PenaltyBasis, form_of
from services.settlement.wording import MINUS, TIMES, points_word


class SettlementError(ValueError):
    """Inputs the engine cannot settle, such as two usages for one device."""


@dataclass(frozen=True)
class UsageCharge:
    """The usage charge before rounding, with the slices that explain it."""

    quantity: Decimal
    billable: Decimal
    slices: tuple[tuple[Decimal, Decimal], ...]
    beyond_last_tier: bool

    @property
    def amount(self) -> Decimal:
        """The sum of quantity * price over the slices, unrounded."""
        with decimal_context():
            return sum((quantity * price for quantity, price in self.slices), ZERO)


@dataclass(frozen=True)
class _Ctx:
    """What every line of one statement shares."""

    currency: str
    unit: str
    charges_base: Decimal

    def line(
        self, kind: LineKind, amount: Decimal, explanation: str, kpi: str | None = None
    ) -> StatementLine:
        return StatementLine(
            kind=kind,
            kpi=kpi,
            amount=round_money(amount, self.currency),
            explanation=explanation,
        )

    def money(self, amount: Decimal) -> str:
        return format_money(amount, self.currency)


def settle(terms: ContractTerms, period: Period, usage: Sequence[DeviceUsage]) -> StatementBody:
    """The statement for ``period`` under ``terms`` given each device's usage.

    Devices of the contract without usage count as reporting nothing; usage of
    devices outside the contract is ignored with a warning.
    """
    with decimal_context():
        warnings: list[str] = []
        notes: list[str] = []
        quantities = _quantities(terms, period, usage, warnings)
        kpis = fleet_kpis(quantities, terms.rated_capacity_per_hour)
        warnings += _undefined_warnings(kpis)
        lines = _charge_lines(terms, kpis, notes)
        ctx = _Ctx(terms.currency, terms.unit, sum((ln.amount for ln in lines), ZERO))
        evaluations: list[KpiEvaluation] = []
        for rule in terms.terms.kpis:
            rule_lines, evaluation = _evaluate_rule(rule, kpis[rule.kpi], ctx)
            lines += rule_lines
            evaluations.append(evaluation)
        lines += _cap_lines(terms, lines, ctx, notes)
        lines += _gain_share_lines(terms, kpis, ctx, notes)
        return StatementBody(
            period=str(period),
            currency=terms.currency,
            kpis=dict(kpis),
            lines=lines,
            charges_base=ctx.charges_base,
            net=sum((ln.amount for ln in lines), ZERO),
            warnings=warnings,
            notes=notes,
            evaluations=evaluations,
            devices=[_summary(q) for q in quantities],
        )


def _quantities(
    terms: ContractTerms, period: Period, usage: Sequence[DeviceUsage], warnings: list[str]
) -> list[DeviceQuantities]:
    """§3.1 for every contract device, in the contract's device order."""
    by_device: dict[str, DeviceUsage] = {}
    for item in usage:
        if item.device_id in by_device:
            raise SettlementError(f"two usages for device {item.device_id!r}")
        by_device[item.device_id] = item
    for device_id in sorted(set(by_device) - set(terms.devices)):
        warnings.append(f"usage of device {device_id} ignored: not a device of this contract")
    period_min = period_minutes(period, terms.timezone)
    result = []
    for device_id in terms.devices:
        item = by_device.get(device_id) or DeviceUsage(device_id)
        warnings += _data_warnings(item, period, period_min, terms.missing_data)
        result.append(device_quantities(item, period_min, terms.missing_data, terms.excused_causes))
    return result


def _data_warnings(item: DeviceUsage, period: Period, period_min: int, policy: str) -> list[str]:
    """Data that would make both parties distrust the statement."""
    if item.reported_min == 0:
        return [
            f"device {item.device_id} reported no data in {period}: all {period_min} minutes "
            f"are missing (missing_data: {policy})"
        ]
    if item.reported_min > period_min:
        return [
            f"device {item.device_id} reported {plain(item.reported_min)} minutes, more than "
            f"the {period_min} minutes of {period}: overlapping samples?"
        ]
    return []


def _undefined_warnings(kpis: dict[KpiName, Decimal | None]) -> list[str]:
    return [
        f"{name} is undefined (zero denominator): no penalty, bonus or gain share uses it"
        for name in KPI_NAMES
        if kpis[name] is None
    ]


def _charge_lines(
    terms: ContractTerms, kpis: dict[KpiName, Decimal | None], notes: list[str]
) -> list[StatementLine]:
    """The fixed fee and the usage charge, which together form charges_base."""
    ctx = _Ctx(terms.currency, terms.unit, ZERO)
    fee = terms.terms.fixed_fee
    lines = [ctx.line("fixed_fee", fee, f"fixed fee {ctx.money(fee)} {terms.currency}")]
    usage = terms.terms.usage
    if usage is not None:
        quantity = kpis[usage.basis] or ZERO
        charge = usage_charge(usage, quantity)
        unit = terms.unit if usage.basis == "throughput" else "h"
        lines.append(ctx.line("usage", charge.amount, _usage_text(usage, charge, unit)))
        if charge.beyond_last_tier:
            notes.append(
                f"billable {plain(charge.billable)} exceeds the last tier's up_to: "
                "the excess is priced at the last tier's price"
            )
    return lines


def usage_charge(usage: Usage, quantity: Decimal) -> UsageCharge:
    """Price ``quantity`` under the usage terms (§3.3 step 2), unrounded.

    A last tier with a finite ``up_to`` keeps pricing beyond it: billing nothing
    for the excess would reward exceeding the contract.
    """
    with decimal_context():
        billable = max(quantity, usage.minimum_commitment)
        last = usage.tiers[-1].up_to
        beyond = last is not None and billable > last
        if usage.mode == "volume":
            price = _volume_price(usage.tiers, billable)
            slices: tuple[tuple[Decimal, Decimal], ...] = ((billable, price),)
        else:
            slices = _graduated_slices(usage.tiers, billable)
        return UsageCharge(quantity, billable, slices, beyond)


def _volume_price(tiers: Sequence[Tier], billable: Decimal) -> Decimal:
    for tier in tiers:
        if tier.up_to is None or billable <= tier.up_to:
            return tier.price
    return tiers[-1].price


def _graduated_slices(
    tiers: Sequence[Tier], billable: Decimal
) -> tuple[tuple[Decimal, Decimal], ...]:
    """Tier i prices the part of billable in (up_to[i-1], up_to[i]]."""
    slices = []
    lower = ZERO
    for index, tier in enumerate(tiers):
        upper = None if index == len(tiers) - 1 else tier.up_to
        top = billable if upper is None else min(billable, upper)
        if top > lower:
            slices.append((top - lower, tier.price))
        if upper is None or billable <= upper:
            break
        lower = upper
    return tuple(slices)


def _usage_text(usage: Usage, charge: UsageCharge, unit: str) -> str:
    parts = " + ".join(f"{plain(q)} {TIMES} {format(p, 'f')}" for q, p in charge.slices)
    quantity, billable = plain(charge.quantity), plain(charge.billable)
    if usage.minimum_commitment:
        minimum = plain(usage.minimum_commitment)
        billable = f"max({quantity}, minimum_commitment {minimum}) = {billable}"
    return (
        f"{usage.basis} {quantity} {unit}; billable = {billable}; "
        f"{usage.mode}: {parts or 'nothing billable'}"
    )


def _evaluate_rule(
    rule: KpiRule, value: Decimal | None, ctx: _Ctx
) -> tuple[list[StatementLine], KpiEvaluation]:
    """Penalty and bonus of one KPI rule, and the verdict that explains them."""
    if value is None:
        evaluation = _evaluation(
            rule, None, "undefined", [], f"{rule.kpi} is undefined", ctx.currency
        )
        return [], evaluation
    penalty = _penalty(rule, value, ctx)
    bonus = _bonus(rule, value, ctx)
    status = _status(rule, value, penalty is not None, bonus is not None)
    lines = []
    if penalty is not None:
        lines.append(ctx.line("penalty", penalty[0], penalty[1], rule.kpi))
    if bonus is not None:
        lines.append(ctx.line("bonus", bonus[0], bonus[1], rule.kpi))
    explanation = "; ".join([line.explanation for line in lines] + _verdict(rule, value, status))
    evaluation = _evaluation(rule, value, status, lines, explanation, ctx.currency)
    return [line for line in lines if line.amount != 0], evaluation


def _penalty(rule: KpiRule, value: Decimal, ctx: _Ctx) -> tuple[Decimal, str] | None:
    """The (negative) penalty and its explanation, or ``None`` if none applies."""
    if rule.penalty is None:
        return None
    basis = PenaltyBasis(ctx.currency, ctx.unit, ctx.charges_base)
    return form_of(rule.penalty).charge(rule, value, basis)


def _bonus(rule: KpiRule, value: Decimal, ctx: _Ctx) -> tuple[Decimal, str] | None:
    bonus = rule.bonus
    if bonus is None or value <= bonus.above:
        return None
    points = (value - bonus.above) / point_of(rule.kpi)
    return bonus.per_point * points, (
        f"{rule.kpi} {plain(value)} > above {plain(bonus.above)}: "
        f"{plain(points)} {points_word(rule.kpi, ctx.unit)} {TIMES} {format(bonus.per_point, 'f')}"
    )


def _status(rule: KpiRule, value: Decimal, penalised: bool, rewarded: bool) -> EvaluationStatus:
    if penalised:
        return "penalty"
    if rewarded:
        return "bonus"
    if value >= rule.target:
        return "on_target"
    if rule.deadband and value >= rule.target - rule.deadband:
        return "within_deadband"
    return "below_target"


_VERDICTS: dict[EvaluationStatus, str] = {
    "on_target": "meets target, no penalty",
    "within_deadband": "below target but within the deadband, no penalty",
    "below_target": "below target, but no penalty term applies",
}


def _verdict(rule: KpiRule, value: Decimal, status: EvaluationStatus) -> list[str]:
    """Why a rule cost nothing, in words finance can check."""
    parts = []
    if status in _VERDICTS:
        parts.append(
            f"{rule.kpi} {plain(value)} vs target {plain(rule.target)}: {_VERDICTS[status]}"
        )
    if rule.bonus is not None and value <= rule.bonus.above:
        parts.append(f"no bonus: {plain(value)} is not above {plain(rule.bonus.above)}")
    return parts


def _evaluation(
    rule: KpiRule,
    value: Decimal | None,
    status: EvaluationStatus,
    lines: Sequence[StatementLine],
    explanation: str,
    currency: str,
) -> KpiEvaluation:
    return KpiEvaluation(
        kpi=rule.kpi,
        value=value,
        target=rule.target,
        deadband=rule.deadband,
        point=point_of(rule.kpi),
        bonus_above=rule.bonus.above if rule.bonus else None,
        status=status,
        penalty=round_money(
            sum((ln.amount for ln in lines if ln.kind == "penalty"), ZERO), currency
        ),
        bonus=round_money(sum((ln.amount for ln in lines if ln.kind == "bonus"), ZERO), currency),
        explanation=explanation,
    )


def _cap_lines(
    terms: ContractTerms, lines: Sequence[StatementLine], ctx: _Ctx, notes: list[str]
) -> list[StatementLine]:
    """§3.3 step 5: give back penalties, take back bonuses beyond their caps."""
    penalties = -sum((ln.amount for ln in lines if ln.kind == "penalty"), ZERO)
    bonuses = sum((ln.amount for ln in lines if ln.kind == "bonus"), ZERO)
    capped = [
        _cap_line("penalty_cap", penalties, terms.terms.penalty_cap_pct, ctx, notes),
        _cap_line("bonus_cap", bonuses, terms.terms.bonus_cap_pct, ctx, notes),
    ]
    return [line for line in capped if line is not None]


def _cap_line(
    kind: LineKind, total: Decimal, pct: Decimal | None, ctx: _Ctx, notes: list[str]
) -> StatementLine | None:
    """The line returning the part of ``total`` (penalties or bonuses) above its cap."""
    if pct is None or total == 0:
        return None
    cap = pct * ctx.charges_base
    adjusted = "penalties" if kind == "penalty_cap" else "bonuses"
    text = (
        f"{adjusted} {ctx.money(total)} vs {kind}_pct {plain(pct)} {TIMES} charges_base "
        f"{ctx.money(ctx.charges_base)} = {ctx.money(cap)}"
    )
    excess = round_money(total - cap, ctx.currency)
    if excess <= 0:
        notes.append(f"{text}: cap not reached")
        return None
    returned = "given back" if kind == "penalty_cap" else "taken back"
    amount = excess if kind == "penalty_cap" else -excess
    return ctx.line(kind, amount, f"{text}: excess {ctx.money(excess)} {returned}")


def _gain_share_lines(
    terms: ContractTerms, kpis: dict[KpiName, Decimal | None], ctx: _Ctx, notes: list[str]
) -> list[StatementLine]:
    """§3.3 step 6: the provider's share of value created above baseline."""
    share = terms.terms.gain_share
    if share is None:
        return []
    value = kpis[share.kpi]
    if value is None:
        notes.append(f"gain share: {share.kpi} is undefined, no gain share")
        return []
    delta = value - share.baseline
    text = (
        f"{share.kpi} {plain(value)} {MINUS} baseline {plain(share.baseline)} = {plain(delta)}; "
        f"{TIMES} value_per_unit {format(share.value_per_unit, 'f')} {TIMES} provider_share "
        f"{plain(share.provider_share)}"
    )
    if delta > 0 or (delta < 0 and share.symmetric):
        line = ctx.line("gain_share", delta * share.value_per_unit * share.provider_share, text)
        if line.amount != 0:
            return [line]
    notes.append(f"gain share: {text}: 0 ({'not symmetric' if delta < 0 else 'no gain'})")
    return []


def _summary(q: DeviceQuantities) -> DeviceSummary:
    return DeviceSummary(
        device_id=q.device_id,
        period_min=q.period_min,
        reported_min=round_kpi(q.reported_min),
        missing_min=round_kpi(q.missing_min),
        uptime_min=round_kpi(q.uptime_min),
        quality_min=round_kpi(q.quality_min),
        throughput=round_kpi(q.throughput),
        down_min={cause: round_kpi(minutes) for cause, minutes in q.down_min.items()},
        excused_min=round_kpi(q.excused_min),
        base_min=round_kpi(q.base_min),
    )


SETTLED_FIELDS = set(ContractTerms.model_fields) - {"annotation_approval", "value_promise"}
"""Terms fields a digest covers: those added later that settlement never reads are left
out, so statements settled before they existed keep their digest (and get no empty
adjustment)."""


def inputs_digest(terms: ContractTerms, period: Period, usage: Sequence[DeviceUsage]) -> str:
    """sha256 of the canonical JSON of everything ``settle`` reads.

    Decimals are written without trailing zeros and usages sorted by device, so
    equal inputs always digest equally however they were loaded.
    """
    document = {
        "terms": terms.model_dump(mode="json", include=SETTLED_FIELDS),
        "period": str(period),
        "usage": [_usage_document(item) for item in sorted(usage, key=lambda u: u.device_id)],
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _usage_document(item: DeviceUsage) -> dict[str, object]:
    return {
        "device_id": item.device_id,
        "reported_min": plain(item.reported_min),
        "uptime_min": plain(item.uptime_min),
        "quality_min": plain(item.quality_min),
        "throughput": plain(item.throughput),
        "down_min": {c: plain(m) for c, m in item.down_min.items()},
    }
