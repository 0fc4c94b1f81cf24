"""Printable HTML pages, rendered server-side with nothing loaded from the internet."""

from __future__ import annotations

from html import escape
from typing import Any

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


def _kpi_rows(kpis: dict[str, Any]) -> str:
    return "".join(
        f"<tr><td>{escape(k)}</td><td class='num'>{'undefined' if v is None else escape(str(v))}"
        "</td></tr>"
        for k, v in kpis.items()
    )


def _line_rows(lines: list[dict[str, Any]]) -> str:
    return "".join(
        f"<tr><td>{escape(ln['kind'])}{' · ' + escape(ln['kpi']) if ln.get('kpi') else ''}</td>"
        f"<td>{escape(ln.get('explanation', ''))}</td>"
        f"<td class='num'>{escape(str(ln['amount']))}</td></tr>"
        for ln in lines
    )


def statement_html(s: dict[str, Any]) -> str:
    """A statement finance can file: lines with explanations, KPIs, warnings."""
    kind = "Adjustment" if s.get("seq") else "Statement"
    status = escape(s["status"])
    warnings = "".join(f"<li class='warn'>{escape(w)}</li>" for w in s.get("warnings", []))
    issued = (
        f" · issued {escape(s['issued_at'])} by {escape(s['issued_by'] or '')}"
        if s.get("issued_at")
        else ""
    )
    body = (
        f"<h1>{kind} {escape(s['contract_id'])} — {escape(s['period'])}</h1>"
        f"<p class='meta'><span class='status {status}'>{status}</span> · contract version "
        f"{s['contract_version']} · {escape(s['currency'])}{issued}</p>"
        "<h2>Lines</h2><table><thead><tr><th>Item</th><th>Explanation</th>"
        f"<th class='num'>Amount ({escape(s['currency'])})</th></tr></thead>"
        f"<tbody>{_line_rows(s['lines'])}</tbody>"
        f"<tfoot><tr><td>Net</td><td></td><td class='num'>{escape(str(s['net']))}</td></tr>"
        "</tfoot></table>"
        "<h2>KPIs</h2><table><tbody>"
        f"{_kpi_rows(s.get('kpis', {}))}</tbody></table>"
        + (f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else "")
        + f"<p class='meta'>Data up to {escape(str(s.get('watermark')))} · inputs digest "
        f"<code>{escape(s.get('inputs_digest', ''))}</code></p>"
    )
    return page(f"{kind} {s['contract_id']} {s['period']}", body)
