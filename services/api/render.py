"""Printable HTML pages, rendered server-side with nothing loaded from the internet."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from schemas.vocabulary import LINE_KINDS
from services.api.templating import html

PAGE_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1b1f24;margin:2rem auto;
max-width:60rem;padding:0 1rem}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.6rem 0 .4rem}
.meta{color:#57606a}table{border-collapse:collapse;width:100%}
th,td{padding:.35rem .5rem;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tfoot td{font-weight:600;border-top:2px solid #1b1f24}
.status{display:inline-block;padding:.1rem .5rem;border-radius:1rem;background:#eaeef2}
.issued{background:#dafbe1}.warn{color:#9a6700}
@media print{body{margin:0;max-width:none}a{color:inherit;text-decoration:none}}
"""


def page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{PAGE_CSS}</style></head>"
        f"<body>{body}</body></html>"
    )


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

REVIEW_CSS = """
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(24rem,1fr));gap:1rem;
margin-bottom:.6rem}
svg.chart{width:100%;height:auto;border:1px solid #d0d7de;border-radius:6px;background:#fff}
section{break-inside:avoid;page-break-inside:avoid}
.pos{color:#1a7f37}.neg{color:#cf222e}.muted{color:#57606a}
code{font-size:.85em;background:#f6f8fa;padding:.05rem .3rem;border-radius:4px;word-break:break-word}
@media print{.charts{grid-template-columns:1fr 1fr}h2{break-after:avoid}}
"""


def _cell(value: Any) -> str:
    return (
        "<td class='num muted'>—</td>"
        if value is None
        else f"<td class='num'>{escape(str(value))}</td>"
    )


def _kpi_table(months: list[dict[str, Any]]) -> str:
    kpis = list(dict.fromkeys(t["kpi"] for m in months for t in m.get("targets", [])))
    head = "".join(f"<th class='num'>{escape(m['period'])}</th>" for m in months)
    rows = []
    for kpi in kpis:
        cells = []
        for m in months:
            t = next((t for t in m.get("targets", []) if t["kpi"] == kpi), None)
            cells.append(
                "<td class='num muted'>—</td>"
                if t is None
                else f"<td class='num'>{escape(str(t['value']))} / {escape(str(t['target']))}"
                f"<br><span class='muted'>{escape(t['status'])}</span></td>"
            )
        rows.append(f"<tr><td>{escape(kpi)} (achieved / target)</td>{''.join(cells)}</tr>")
    return (
        f"<table><thead><tr><th>KPI</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _money_table(pack: dict[str, Any]) -> str:
    months = pack["months"]
    kinds = [*LINE_KINDS, "net"]
    head = "".join(f"<th class='num'>{escape(m['period'])}</th>" for m in months)
    rows = "".join(
        f"<tr><td>{escape(kind)}</td>"
        + "".join(_cell((m.get("money") or {}).get(kind)) for m in months)
        + _cell(pack["totals"]["money"][kind])
        + "</tr>"
        for kind in kinds
    )
    return (
        f"<table><thead><tr><th>{escape(pack['currency'])}</th>{head}<th class='num'>quarter</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _value_table(pack: dict[str, Any]) -> str:
    months = pack["months"]
    keys = ["value_to_customer", "net", "customer_gain"]
    if pack["view"] == "provider":
        keys += ["cost", "provider_margin", "provider_share", "within_agreed"]
    head = "".join(f"<th class='num'>{escape(m['period'])}</th>" for m in months)
    rows = "".join(
        f"<tr><td>{escape(key)}</td>"
        + "".join(_cell((m.get("value") or {}).get(key)) for m in months)
        + "</tr>"
        for key in keys
    )
    return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _compact(value: Any) -> str:
    return "—" if value is None else escape(json.dumps(value, separators=(", ", ": ")))


def _change(current: Any, proposed: Any) -> str:
    """Current → proposed; for a KPI rule only the fields that change."""
    if isinstance(current, dict) and isinstance(proposed, dict):
        keys = [k for k in {**current, **proposed} if current.get(k) != proposed.get(k)]
        return "<br>".join(
            f"{escape(k)}: <code>{_compact(current.get(k))}</code> → "
            f"<code>{_compact(proposed.get(k))}</code>"
            for k in keys
        )
    return f"<code>{_compact(current)}</code> → <code>{_compact(proposed)}</code>"


def _proposal_rows(proposals: list[dict[str, Any]]) -> str:
    rows = []
    for p in proposals:
        parties = (p.get("impact") or {}).get("parties") or {}
        provider, customer = parties.get("provider"), parties.get("customer")
        impact = (
            "no term change"
            if provider is None
            else f"provider {escape(provider)} · customer {escape(str(customer))}"
        )
        rows.append(
            f"<tr><td>{escape(p['kind'])}<br><span class='muted'>{escape(p.get('kpi') or p['term'])}"
            f"</span></td><td>{_change(p['current'], p['proposed'])}</td>"
            f"<td>{escape(p['rationale'])}</td>"
            f"<td class='num'>{impact}<br><span class='muted'>{escape(p['window']['from'])} to "
            f"{escape(p['window']['to'])}</span></td></tr>"
        )
    return "".join(rows)


def review_html(pack: dict[str, Any], charts: dict[str, list[str]]) -> str:
    """The review pack as one printable page; ``charts`` are ready-made SVG per section."""

    def figures(name: str) -> str:
        return f"<div class='charts'>{''.join(charts.get(name, []))}</div>"

    proposals = pack["proposals"]
    body = (
        f"<style>{REVIEW_CSS}</style>"
        f"<h1>Quarterly review {escape(pack['contract_id'])} — {escape(pack['quarter'])}</h1>"
        f"<p class='meta'>{escape(pack['provider'])} (provider) · {escape(pack['customer'])} "
        f"(customer) · {escape(pack['currency'])} · {escape(pack['view'])} view · generated "
        f"{escape(pack['generated_at'][:16].replace('T', ' '))} UTC</p>"
        "<p class='meta'>Months: "
        + ", ".join(f"{escape(m['period'])} ({escape(m['status'])})" for m in pack["months"])
        + "</p>"
        f"<section><h2>KPIs against targets</h2>{figures('kpis')}{_kpi_table(pack['months'])}"
        "</section>"
        f"<section><h2>Money flows</h2>{figures('money')}{_money_table(pack)}</section>"
        f"<section><h2>Downtime and data completeness</h2>{figures('operations')}</section>"
        f"<section><h2>Value delivered</h2>{figures('value')}{_value_table(pack)}</section>"
        f"<section><h2>Open proposals ({len(proposals)})</h2>"
        + (
            "<table><thead><tr><th>Kind</th><th>Current → proposed</th><th>Why</th>"
            f"<th class='num'>Impact over window</th></tr></thead><tbody>"
            f"{_proposal_rows(proposals)}</tbody></table>"
            if proposals
            else "<p class='muted'>No open proposals.</p>"
        )
        + "</section>"
    )
    return page(f"Review {pack['contract_id']} {pack['quarter']}", body)
