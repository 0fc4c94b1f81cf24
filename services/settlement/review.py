"""The quarterly review pack (spec §5): one shared truth for provider and customer.

Per month: KPIs against targets, the money by line kind, downtime by cause,
data completeness and the value delivered — all read from the statement that
stands for the month, so the pack agrees with what finance filed. Both
parties get the same KPI and money data; only the provider's view adds cost,
margin and the value-split proposals derived from them.

It closes the loop (``loop``): the value promised against delivered, the
corrective actions with their measured effect (overdue ones flagged), the
disputes and pending annotations, every decision of the quarter per party,
and what the decisions taken since the previous review changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from schemas.contract import ContractTerms, json_number
from schemas.money import decimal_context, format_money, round_kpi
from schemas.periods import Quarter
from schemas.statement import StatementBody
from schemas.vocabulary import DOWNTIME_CAUSES, LINE_KINDS, MISSING
from services import decisions
from services.settlement import actions, connectivity, contracts, loop, promise
from services.settlement.connectivity import MissingSplit, unexplained
from services.settlement.proposals import repository as proposals_repo
from services.settlement.proposals.history import SettledPeriod, settled_periods
from services.settlement.proposals.registry import PROVIDER_ONLY_KINDS, deciding_parties
from services.settlement.value import ValueSplit, customer_view, provider_view, splits_for

ZERO = Decimal(0)


def _money(body: StatementBody) -> dict[str, str]:
    amounts: dict[str, Decimal] = {kind: ZERO for kind in LINE_KINDS}
    for line in body.lines:
        amounts[line.kind] += line.amount
    amounts["net"] = body.net
    return {k: format_money(v, body.currency) for k, v in amounts.items()}


def _targets(body: StatementBody) -> list[dict[str, Any]]:
    return [
        {
            "kpi": e.kpi,
            "value": None if e.value is None else json_number(e.value),
            "target": json_number(e.target),
            "deadband": json_number(e.deadband),
            "bonus_above": None if e.bonus_above is None else json_number(e.bonus_above),
            "status": e.status,
            "penalty": format(e.penalty, "f"),
            "bonus": format(e.bonus, "f"),
        }
        for e in body.evaluations
    ]


def downtime_by_cause(body: StatementBody, terms: ContractTerms) -> dict[str, Decimal]:
    """Reported downtime per cause, and unreported minutes apart (not folded into unplanned)."""
    out = {cause: ZERO for cause in (*DOWNTIME_CAUSES, MISSING)}
    for d in body.devices:
        for cause in DOWNTIME_CAUSES:
            out[cause] += d.down_min.get(cause, ZERO)
        out[MISSING] += d.missing_min
        if terms.missing_data == "downtime":
            out["unplanned"] -= d.missing_min
    return out


def completeness(
    body: StatementBody, missing: Mapping[str, MissingSplit] | None = None
) -> dict[str, Any]:
    """The share of period minutes each device (and the fleet) reported.

    ``missing`` splits each device's unreported minutes by connection state
    (``services.settlement.connectivity``): offline, silent while connected,
    unknown; without it every missing minute is unknown.
    """
    known = missing or {}
    with decimal_context():
        devices = []
        fleet = MissingSplit()
        for d in body.devices:
            split = known.get(d.device_id) or unexplained(d.missing_min)
            fleet += split
            if d.period_min > 0:
                part = round_kpi(min(d.reported_min, d.period_min) / d.period_min)
                devices.append(
                    {"device_id": d.device_id, "share": json_number(part)} | _split(split)
                )
        reported = sum((min(d.reported_min, d.period_min) for d in body.devices), ZERO)
        minutes = sum((d.period_min for d in body.devices), ZERO)
        share = round_kpi(reported / minutes) if minutes > 0 else None
    return {
        "share": None if share is None else json_number(share),
        "reported_min": json_number(round_kpi(reported)),
        "period_min": json_number(minutes),
        **_split(fleet),
        "devices": devices,
    }


def _split(split: MissingSplit) -> dict[str, Any]:
    return {
        "offline_minutes": json_number(round_kpi(split.offline_min)),
        "silent_minutes": json_number(round_kpi(split.silent_min)),
        "unknown_minutes": json_number(round_kpi(split.unknown_min)),
    }


def _month(
    item: SettledPeriod,
    terms: ContractTerms,
    split: ValueSplit | None,
    provider: bool,
    missing: Mapping[str, MissingSplit] | None = None,
) -> dict[str, Any]:
    body = item.body
    value = None
    if split is not None:
        value = provider_view(split) if provider else customer_view(split)
    return {
        "period": str(item.period),
        "status": item.status,
        "adjusted": item.adjusted,
        "contract_version": item.contract_version,
        "kpis": {k: None if v is None else json_number(v) for k, v in body.kpis.items()},
        "targets": _targets(body),
        "money": _money(body),
        "downtime_min": {k: json_number(v) for k, v in downtime_by_cause(body, terms).items()},
        "completeness": completeness(body, missing),
        "value": value,
        "warnings": body.warnings,
    }


def _empty(period: str) -> dict[str, Any]:
    return {"period": period, "status": "not_settled"}


def _totals(months: list[dict[str, Any]], provider: bool, currency: str) -> dict[str, Any]:
    settled = [m for m in months if m["status"] != "not_settled"]
    money = {
        k: format_money(sum((Decimal(m["money"][k]) for m in settled), ZERO), currency)
        for k in (*LINE_KINDS, "net")
    }
    keys = ["value_to_customer", "customer_gain"]
    if provider:
        keys += ["cost", "provider_margin"]
    value = {
        k: format_money(sum((Decimal(m["value"][k]) for m in settled), ZERO), currency)
        for k in keys
        if settled and all(m["value"] and m["value"].get(k) is not None for m in settled)
    }
    return {"money": money, "value": value or None}


def review(
    conn: Connection, contract_id: str, quarter: Quarter, *, provider: bool
) -> dict[str, Any]:
    """The pack's data; ``provider`` adds cost, margin and provider-only proposals."""
    latest = contracts.latest_version(conn, contract_id)
    first, _, last = quarter.months()
    settled = settled_periods(conn, contract_id, first, last)
    items = list(settled.values())
    splits = {s.period: s for s in splits_for(conn, contract_id, items)}
    months = []
    for period in quarter.months():
        item = settled.get(period)
        if item is None:
            months.append(_empty(str(period)))
            continue
        terms = contracts.get_version(conn, contract_id, item.contract_version).terms
        split = splits.get(str(period))
        show = split if terms.value_model is not None or provider else None
        missing = {d.device_id: d.missing_min for d in item.body.devices}
        gaps = connectivity.split_missing(conn, period, terms.timezone, missing)
        months.append(_month(item, terms, show, provider, gaps))
    now = datetime.now(UTC)
    span = loop.quarter_span(conn, contract_id, quarter)
    open_rows = [
        r
        for r in proposals_repo.open_for(conn, contract_id)
        if provider or r.kind not in PROVIDER_ONLY_KINDS
    ]
    hidden = set() if provider else _hidden_proposals(conn, contract_id)
    return {
        "contract_id": contract_id,
        "quarter": str(quarter),
        "view": "provider" if provider else "customer",
        "provider": latest.provider,
        "customer": latest.customer,
        "currency": latest.terms.currency,
        "unit": latest.terms.unit,
        "generated_at": datetime.now(UTC).isoformat(),
        "months": months,
        "totals": _totals(months, provider, latest.terms.currency),
        "proposals": _with_decisions(conn, open_rows),
        "promise": promise.report(conn, contract_id, first, last),
        "actions": loop.actions_for(conn, contract_id, span, now),
        "overdue_actions": actions.overdue_for(conn, contract_id, now),
        "disputes": loop.disputes_for(conn, contract_id, quarter),
        "pending_annotations": loop.pending_annotations(conn, contract_id),
        "decisions": loop.decisions_by_party(conn, contract_id, span, hidden),
        "decided_proposals": loop.decided_proposals(
            conn, contract_id, span, provider, PROVIDER_ONLY_KINDS, now
        ),
    }


def _hidden_proposals(conn: Connection, contract_id: str) -> set[int]:
    """Provider-side proposals a customer's pack must not mention, even by decision."""
    return {
        r.id for r in proposals_repo.list_for(conn, contract_id) if r.kind in PROVIDER_ONLY_KINDS
    }


def _with_decisions(conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
    """Open proposals with each party's decision so far and who has yet to decide."""
    taken = decisions.listing(conn, "proposal", [r.id for r in rows])
    out = []
    for r in rows:
        decided = {d["party"] for d in taken[r.id]}
        awaiting = [p for p in deciding_parties(r.kind) if p not in decided]
        out.append({**proposals_repo.as_json(r), "decisions": taken[r.id], "awaiting": awaiting})
    return out
