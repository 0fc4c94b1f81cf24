"""Contract terms in plain language (spec §8): what a plant manager reads on a page.

Every sentence is derived from the validated ``ContractTerms``; nothing here
interprets terms differently from the engine, it only says them in words.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from schemas.contract import ContractTerms, CreditsPenalty, KpiRule, PerPointPenalty, Usage
from schemas.vocabulary import CUSTOMER_VALUE, RATIO_KPIS
from services.api.formatting import kpi_name, kpi_value, money, number, percent, points

BASIS_WORDS = {
    "throughput": "throughput",
    "utilised_capacity_hours": "utilised capacity hours",
    "uptime_hours": "uptime hours",
}
MISSING_WORDS = {
    "downtime": "count as downtime",
    "excused": "are excused (neither uptime nor downtime)",
    "uptime": "count as uptime",
}


def _per_unit(kpi: str) -> str:
    return "per percentage point" if kpi in RATIO_KPIS else "per unit"


def _usage(u: Usage, currency: str, unit: str) -> list[str]:
    what = unit if u.basis == "throughput" else "h"
    basis = BASIS_WORDS[u.basis]
    tiers = []
    low = None
    for t in u.tiers:
        price = f"{money(t.price, currency)} per {what}"
        if t.up_to is None:
            span = "above that" if low is not None else "every unit"
            tiers.append(f"{span}: {price}")
        else:
            span = "up to" if low is None else f"from {number(low)} up to"
            tiers.append(f"{span} {number(t.up_to)} {what}: {price}")
        low = t.up_to
    how = (
        "each slice at its own price (graduated)"
        if u.mode == "graduated"
        else "all units at the price of the tier reached (volume)"
    )
    if len(u.tiers) == 1:
        only = f"{money(u.tiers[0].price, currency)} per {what}"
        lines = [f"Usage is billed on {basis} at {only}."]
    else:
        lines = [f"Usage is billed on {basis}, {how}: " + "; ".join(tiers) + "."]
    if u.minimum_commitment:
        lines.append(f"Minimum commitment: {number(u.minimum_commitment)} {what} per month.")
    return lines


def _kpi(rule: KpiRule, currency: str, unit: str) -> str:
    name = kpi_name(rule.kpi)
    target = kpi_value(rule.kpi, rule.target, unit)
    parts = [f"{name} target {target}"]
    if rule.deadband:
        band = points(rule.deadband) if rule.kpi in RATIO_KPIS else number(rule.deadband)
        parts.append(f"no penalty within {band} below it")
    if isinstance(rule.penalty, PerPointPenalty):
        parts.append(
            f"penalty {money(rule.penalty.per_point, currency)} {_per_unit(rule.kpi)} short"
        )
    elif isinstance(rule.penalty, CreditsPenalty):
        credits = ", ".join(
            f"{percent(c.pct, 0)} below {kpi_value(rule.kpi, c.below, unit)}"
            for c in rule.penalty.credits
        )
        parts.append(
            f"service credit of the charges (fixed fee + usage): {credits} (the largest applies)"
        )
    if rule.bonus is not None:
        parts.append(
            f"bonus {money(rule.bonus.per_point, currency)} {_per_unit(rule.kpi)} above "
            f"{kpi_value(rule.kpi, rule.bonus.above, unit)}"
        )
    return "; ".join(parts) + "."


def describe(terms: ContractTerms) -> dict[str, list[str]]:
    """Sections of sentences: charges, KPIs, limits and sharing, measurement."""
    t, cur, unit = terms.terms, terms.currency, terms.unit
    charges = [f"Fixed fee {money(t.fixed_fee, cur)} per month."]
    if t.usage is not None:
        charges += _usage(t.usage, cur, unit)
    kpis = [_kpi(rule, cur, unit) for rule in t.kpis] or ["No KPI carries money."]
    limits = []
    if t.penalty_cap_pct is not None:
        limits.append(
            f"Penalties are capped at {percent(t.penalty_cap_pct, 0)} of fixed fee + usage."
        )
    if t.bonus_cap_pct is not None:
        limits.append(f"Bonuses are capped at {percent(t.bonus_cap_pct, 0)} of fixed fee + usage.")
    if t.gain_share is not None:
        g = t.gain_share
        below = (
            "the same share of a shortfall is deducted"
            if g.symmetric
            else "a shortfall costs nothing"
        )
        limits.append(
            f"Gain share: the provider receives {percent(g.provider_share, 0)} of the value "
            f"above a baseline of {kpi_value(g.kpi, g.baseline, unit)} "
            f"({kpi_name(g.kpi).lower()}), valued at {money(g.value_per_unit, cur)} per unit; "
            f"{below}."
        )
    if terms.value_model is not None:
        v = terms.value_model
        limits.append(
            f"Agreed value split: one {unit} is worth {money(v.customer_value_per_unit, cur)} "
            f"to the customer; the provider's agreed share is "
            f"{percent(v.agreed_provider_share, 0)} (± {percent(v.tolerance, 0)})."
        )
    excused = ", ".join(terms.excused_causes) or "none"
    measurement = [
        f"Devices: {', '.join(terms.devices)}; rated capacity "
        f"{number(terms.rated_capacity_per_hour)} {unit} per hour.",
        f"Months are calendar months in {terms.timezone}; amounts in {cur}.",
        f"Excused downtime: {excused}. Minutes without data {MISSING_WORDS[terms.missing_data]}.",
    ]
    return {
        "Charges": charges,
        "KPIs": kpis,
        "Limits and sharing": limits,
        "Measurement": measurement,
    }


# --- proposals (spec §5): a term change as the meeting reads it

CAP_WORDS = {"penalty_cap_pct": "penalty cap", "bonus_cap_pct": "bonus cap"}
PROMISE_PREFIX = "value_promise.promised."


def figure_value(figure: str, value: Any, unit: str, currency: str) -> str:
    """A promised figure: customer value is money, the others are KPIs."""
    return money(value, currency) if figure == CUSTOMER_VALUE else kpi_value(figure, value, unit)


def _credits(kpi: str, credits: Any, unit: str) -> str:
    return ", ".join(
        f"{percent(c.get('pct'), 0)} below {kpi_value(kpi, c.get('below'), unit)}"
        for c in credits or []
    )


def _moved(what: str, old: Any, new: Any, show: Callable[[Any], str]) -> list[str]:
    return [] if old == new else [f"{what} {show(old)} → {show(new)}"]


def _rule_change(
    current: dict[str, Any], proposed: dict[str, Any], unit: str, cur: str
) -> list[str]:
    """The fields of one KPI rule that change, each as "what old → new"."""
    kpi = str(proposed.get("kpi") or current.get("kpi"))
    name = kpi_name(kpi)
    value = partial(kpi_value, kpi, unit=unit)
    cash = partial(money, currency=cur)
    band = points if kpi in RATIO_KPIS else number
    old_bonus, new_bonus = current.get("bonus") or {}, proposed.get("bonus") or {}
    old_pen, new_pen = current.get("penalty") or {}, proposed.get("penalty") or {}
    return [
        *_moved(f"{name} target", current.get("target"), proposed.get("target"), value),
        *_moved(f"{name} deadband", current.get("deadband"), proposed.get("deadband"), band),
        *_moved(f"{name} bonus threshold", old_bonus.get("above"), new_bonus.get("above"), value),
        *_moved(
            f"{name} bonus per point", old_bonus.get("per_point"), new_bonus.get("per_point"), cash
        ),
        *_moved(
            f"{name} penalty per point", old_pen.get("per_point"), new_pen.get("per_point"), cash
        ),
        *_moved(
            f"{name} service credits",
            old_pen.get("credits"),
            new_pen.get("credits"),
            lambda c: _credits(kpi, c, unit),
        ),
    ]


def _listing(values: Any) -> str:
    return ", ".join(str(v) for v in values) if values else "none"


def _scalar_change(p: dict[str, Any], unit: str, cur: str) -> str:
    term, current, proposed = str(p.get("term")), p.get("current"), p.get("proposed")
    if term in CAP_WORDS:
        return (
            f"{CAP_WORDS[term].capitalize()} {percent(current, 0)} → {percent(proposed, 0)} "
            "of fixed fee + usage"
        )
    if term == "usage.minimum_commitment":
        usage = ((p.get("proposed_terms") or {}).get("terms") or {}).get("usage") or {}
        basis = usage.get("basis", "throughput")
        what = unit if basis == "throughput" else "h"
        return f"Minimum commitment {number(current)} {what} → {number(proposed)} {what} per month"
    if term == "fixed_fee":
        return f"Fixed fee {money(current, cur)} → {money(proposed, cur)} per month"
    if term == "missing_data":
        return (
            f"Minutes without data {MISSING_WORDS.get(str(current), current)} → "
            f"{MISSING_WORDS.get(str(proposed), proposed)}"
        )
    if term == "excused_causes":
        return f"Excused downtime causes {_listing(current)} → {_listing(proposed)}"
    if term.startswith(PROMISE_PREFIX):
        figure = term.removeprefix(PROMISE_PREFIX)
        return (
            f"Promised {figure.replace('_', ' ')} {figure_value(figure, current, unit, cur)} → "
            f"{figure_value(figure, proposed, unit, cur)}"
        )
    return f"{term.replace('_', ' ').capitalize()} {current} → {proposed}"


def term_change(p: dict[str, Any], unit: str, currency: str) -> list[str]:
    """What accepting a proposal changes, as sentences: "Availability target 95.0 % → 92.5 %
    from 2027-01"; for a corrective action, the work and who owes it."""
    if p.get("remedy") == "corrective_action":
        action = p.get("proposed") or {}
        title, devices = str(action.get("title")), action.get("devices") or []
        on = "" if all(d in title for d in devices) else f" (devices {', '.join(devices)})"
        return [f"Work for the {action.get('owner', 'provider')}: {title}{on}"]
    current, proposed = p.get("current"), p.get("proposed")
    if isinstance(current, dict) and isinstance(proposed, dict):
        changes = _rule_change(current, proposed, unit, currency)
    else:
        changes = [_scalar_change(p, unit, currency)]
    effective = (p.get("impact") or {}).get("effective_from")
    when = f" from {effective}" if effective else " from the next month"
    return [c + when for c in changes] or ["No term changes"]
