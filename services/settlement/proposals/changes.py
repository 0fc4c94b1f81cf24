"""Applying an accepted proposal's change to the contract's latest terms.

A proposal changes one term (or, for a KPI rule, a few fields of it). On
acceptance the change is applied to the *latest* version rather than to the
version the proposal was computed from, so several proposals from one review
can be accepted one after another — provided the term each one changes still
has the value it had when the proposal was made (optimistic concurrency).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from schemas.contract import ContractTerms, KpiRule
from services.errors import Conflict

TOP_LEVEL = ("excused_causes", "missing_data")
MONEY_TERMS = ("fixed_fee", "penalty_cap_pct", "bonus_cap_pct")
PROMISED = "value_promise.promised."


def _stale(term: str) -> Conflict:
    return Conflict(
        f"{term} changed since this proposal was made; run detection again for a fresh one"
    )


def _rule_change(terms: ContractTerms, kpi: str, current: Any, proposed: Any) -> dict[str, Any]:
    """The latest terms as JSON with only the fields the proposal changes replaced."""
    rule = next((r for r in terms.terms.kpis if r.kpi == kpi), None)
    if rule is None:
        raise _stale(f"kpis[{kpi}]")
    latest = rule.model_dump(mode="json", exclude_none=True)
    changed = {k for k in {*current, *proposed} if current.get(k) != proposed.get(k)}
    if any(latest.get(k) != current.get(k) for k in changed):
        raise _stale(f"kpis[{kpi}]")
    merged = {k: v for k, v in latest.items() if k not in changed}
    merged |= {k: proposed[k] for k in changed if k in proposed}
    body = terms.model_dump(mode="json")
    body["terms"]["kpis"] = [merged if r["kpi"] == kpi else r for r in body["terms"]["kpis"]]
    return body


def _term_change(terms: ContractTerms, subject: str, current: Any, proposed: Any) -> dict[str, Any]:
    body = terms.model_dump(mode="json")
    if subject in TOP_LEVEL:
        holder = body
        key = subject
    elif subject in MONEY_TERMS:
        holder, key = body["terms"], subject
    elif subject == "usage.minimum_commitment" and body["terms"].get("usage"):
        holder, key = body["terms"]["usage"], "minimum_commitment"
    elif subject.startswith(PROMISED) and body.get("value_promise"):
        holder, key = body["value_promise"]["promised"], subject.removeprefix(PROMISED)
    else:
        raise _stale(subject)
    if _normal(holder.get(key)) != _normal(current):
        raise _stale(subject)
    holder[key] = proposed
    return body


def _normal(value: Any) -> Any:
    """Compare money text and numbers by value ("12000.00" == "12000")."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return value
    return value


def apply_change(
    terms: ContractTerms,
    *,
    kpi: str | None,
    subject: str,
    current: Any,
    proposed: Any,
    effective_from: str,
) -> ContractTerms:
    """The latest ``terms`` with the proposal's change, effective from ``effective_from``."""
    if kpi is not None:
        KpiRule.model_validate(proposed)
        body = _rule_change(terms, kpi, current, proposed)
    else:
        body = _term_change(terms, subject, current, proposed)
    body["effective_from"] = effective_from
    try:
        return ContractTerms.model_validate(body)
    except ValidationError as exc:
        raise Conflict(
            f"the proposed change no longer fits the latest terms: {exc.errors()[0]['msg']}"
        ) from None
