"""Printable HTML pages, rendered server-side with nothing loaded from the internet."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schemas.vocabulary import DOWNTIME_CAUSES, MISSING
from services.api.templating import html
from services.api.wording import figure_value, term_change


def statement_html(s: dict[str, Any]) -> str:
    """A statement finance can file, as one self-contained page (``format=html``): the
    same template as the signed-in page, without navigation or buttons."""
    return html(
        "statement.html",
        s=s,
        me=None,
        nav=None,
        standalone=True,
        just_issued=False,
        can_issue=False,
        pending_seq=None,
    )


# --- quarterly review pack (spec §5)

LINE_NAMES = {
    "fixed_fee": "Fixed fee",
    "usage": "Usage",
    "penalty": "Penalties",
    "bonus": "Bonuses",
    "penalty_cap": "Penalty cap",
    "bonus_cap": "Bonus cap",
    "gain_share": "Gain share",
}
OUTCOME = {
    "penalty": "penalty charged",
    "within_deadband": "below target, within the deadband",
    "below_target": "below target",
    "on_target": "on target",
    "bonus": "bonus earned",
    "undefined": "no data",
}
CAUSES = [(c, c.capitalize() + " downtime") for c in DOWNTIME_CAUSES] + [(MISSING, "No data")]
VALUE_ROWS = [
    ("value_to_customer", "Value to the customer"),
    ("net", "Net paid"),
    ("customer_gain", "Customer gain"),
]
PROVIDER_ROWS = [
    ("cost", "Cost to serve"),
    ("provider_margin", "Provider margin"),
    ("provider_share", "Provider share of the value created"),
    ("within_agreed", "Within the agreed split"),
]


def review_context(pack: dict[str, Any], charts: dict[str, list[str]]) -> dict[str, Any]:
    """What the review template needs besides the pack: KPI rows, the line kinds that carry
    money, the rows of the value table (cost and margin in the provider's view only)."""
    months = pack["months"]
    kpis = list(dict.fromkeys(t["kpi"] for m in months for t in m.get("targets", [])))
    kpi_rows = [
        (kpi, [next((t for t in m.get("targets", []) if t["kpi"] == kpi), None) for m in months])
        for kpi in kpis
    ]
    lines = [
        (k, name)
        for k, name in LINE_NAMES.items()
        if any(m.get("money") and Decimal(m["money"][k]) != 0 for m in months)
    ]
    provider = pack["view"] == "provider"
    return {
        "pack": pack,
        "charts": charts,
        "kpi_rows": kpi_rows,
        "lines": lines,
        "outcome": OUTCOME,
        "causes": CAUSES,
        "value_rows": VALUE_ROWS + (PROVIDER_ROWS if provider else []),
        "settled": [m for m in months if m["status"] != "not_settled"],
        "figure": figure_value,
        "actions": pack["actions"],
        "disputes": pack["disputes"],
        "pending": pack["pending_annotations"],
        "view": "provider" if provider else "joint",
    }


def read_proposals(pack: dict[str, Any]) -> list[dict[str, Any]]:
    """Open proposals with their change in sentences, for a page without decision controls."""
    return [
        {**p, "changes": term_change(p, pack["unit"], pack["currency"]), "can_decide": []}
        for p in pack["proposals"]
    ]


def review_html(pack: dict[str, Any], charts: dict[str, list[str]]) -> str:
    """The review pack as one self-contained printable page (``format=html``): the people's
    template without navigation or forms."""
    return html(
        "review.html",
        **review_context(pack, charts),
        proposals=read_proposals(pack),
        me=None,
        nav=None,
        standalone=True,
        notice=None,
        views=[],
        back="",
    )
