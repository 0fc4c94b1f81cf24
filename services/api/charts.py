"""Server-side SVG charts for printable pages: no script, no font or file from the internet.

Two shapes cover the review pack: bars (grouped or stacked, negatives below
zero) and lines with markers (KPI against target). Values are floats here
because they only become pixel positions; the tables beside each chart carry
the exact decimal amounts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from schemas.vocabulary import DOWNTIME_CAUSES, LINE_LABELS, MISSING, RATIO_KPIS

WIDTH, HEIGHT = 560, 230
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 28, 62
PALETTE = ("#0969da", "#1a7f37", "#bf8700", "#cf222e", "#8250df", "#57606a", "#1b7c83")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str
    dashed: bool = False


@dataclass(frozen=True)
class _Frame:
    lo: float
    hi: float
    count: int

    def y(self, value: float) -> float:
        span = (self.hi - self.lo) or 1.0
        return TOP + (HEIGHT - TOP - BOTTOM) * (self.hi - value) / span

    def slot(self) -> float:
        return (WIDTH - LEFT - RIGHT) / max(self.count, 1)

    def x(self, index: int) -> float:
        return LEFT + self.slot() * (index + 0.5)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[lo, hi]`` (1, 2, 2.5 or 5 times a power of ten)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


def _label(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.4g}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _axes(frame: _Frame, ticks: Sequence[float], categories: Sequence[str], percent: bool) -> str:
    parts = []
    for t in ticks:
        y = frame.y(t)
        parts.append(
            f"<line x1='{LEFT}' x2='{WIDTH - RIGHT}' y1='{y:.1f}' y2='{y:.1f}' "
            f"stroke='{'#57606a' if t == 0 else '#d0d7de'}' stroke-width='1'/>"
            f"<text x='{LEFT - 6}' y='{y + 4:.1f}' text-anchor='end'>{_label(t, percent)}</text>"
        )
    for i, name in enumerate(categories):
        parts.append(
            f"<text x='{frame.x(i):.1f}' y='{HEIGHT - BOTTOM + 15}' text-anchor='middle'>"
            f"{escape(name)}</text>"
        )
    return "".join(parts)


def _legend(series: Sequence[Series]) -> str:
    """Legend entries left to right, wrapping onto a second row when the first is full."""
    parts, x, y = [], LEFT, HEIGHT - 24
    for s in series:
        width = 26 + 6 * len(s.name)
        if x + width > WIDTH - RIGHT and x > LEFT:
            x, y = LEFT, y + 15
        dash = " stroke-dasharray='4 3'" if s.dashed else ""
        parts.append(
            f"<line x1='{x}' x2='{x + 14}' y1='{y - 4}' y2='{y - 4}' stroke='{s.color}' "
            f"stroke-width='6'{dash}/><text x='{x + 18}' y='{y}'>{escape(s.name)}</text>"
        )
        x += width
    return "".join(parts)


def _svg(title: str, inner: str) -> str:
    return (
        f"<svg class='chart' viewBox='0 0 {WIDTH} {HEIGHT}' role='img' "
        f"aria-label='{escape(title)}' font-size='11' font-family='system-ui,sans-serif'>"
        f"<title>{escape(title)}</title>"
        f"<text x='{LEFT}' y='16' font-size='13' font-weight='600'>{escape(title)}</text>"
        f"{inner}</svg>"
    )


def _range(values: Sequence[float], include_zero: bool) -> tuple[float, float]:
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        pad = abs(hi) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    elif not include_zero:
        pad = (hi - lo) * 0.15
        lo, hi = lo - pad, hi + pad
    return lo, hi


def _stack_extent(series: Sequence[Series], count: int) -> list[float]:
    ends = []
    for i in range(count):
        column = [s.values[i] or 0.0 for s in series]
        ends += [sum(v for v in column if v > 0), sum(v for v in column if v < 0)]
    return ends


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = False,
    overlays: Sequence[Series] = (),
    percent: bool = False,
) -> str:
    """Bars per category: side by side, or stacked with negatives below the zero line."""
    values = [v for s in [*series, *overlays] for v in s.values if v is not None]
    if stacked:
        values += _stack_extent(series, len(categories))
    lo, hi = _range(values, include_zero=True)
    ticks = nice_ticks(lo, hi)
    frame = _Frame(min(ticks), max(ticks), len(categories))
    bars = _stacked_bars(frame, series) if stacked else _grouped_bars(frame, series)
    inner = _axes(frame, ticks, categories, percent) + bars + _lines(frame, overlays)
    return _svg(title, inner + _legend([*series, *overlays]))


def _rect(x: float, width: float, y0: float, y1: float, color: str, tip: str) -> str:
    top, height = min(y0, y1), abs(y1 - y0)
    return (
        f"<rect x='{x:.1f}' y='{top:.1f}' width='{width:.1f}' height='{max(height, 0.5):.1f}' "
        f"fill='{color}'><title>{escape(tip)}</title></rect>"
    )


def _grouped_bars(frame: _Frame, series: Sequence[Series]) -> str:
    width = frame.slot() * 0.7 / max(len(series), 1)
    parts = []
    for k, s in enumerate(series):
        for i, v in enumerate(s.values):
            if v is None:
                continue
            x = frame.x(i) - frame.slot() * 0.35 + k * width
            parts.append(
                _rect(x, width * 0.92, frame.y(0), frame.y(v), s.color, f"{s.name}: {v:g}")
            )
    return "".join(parts)


def _stacked_bars(frame: _Frame, series: Sequence[Series]) -> str:
    width = frame.slot() * 0.55
    parts = []
    for i in range(frame.count):
        up = down = 0.0
        for s in series:
            v = s.values[i] or 0.0
            if v == 0:
                continue
            base = up if v > 0 else down
            end = base + v
            x = frame.x(i) - width / 2
            parts.append(_rect(x, width, frame.y(base), frame.y(end), s.color, f"{s.name}: {v:g}"))
            up, down = (end, down) if v > 0 else (up, end)
    return "".join(parts)


def _lines(frame: _Frame, series: Sequence[Series]) -> str:
    parts = []
    for s in series:
        points = [(frame.x(i), frame.y(v)) for i, v in enumerate(s.values) if v is not None]
        dash = " stroke-dasharray='5 4'" if s.dashed else ""
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f"<polyline points='{path}' fill='none' stroke='{s.color}' stroke-width='2'{dash}/>"
            )
        for (x, y), v in zip(points, [v for v in s.values if v is not None], strict=True):
            parts.append(
                f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{2.5 if s.dashed else 4}' fill='{s.color}'>"
                f"<title>{escape(s.name)}: {v:g}</title></circle>"
            )
    return "".join(parts)


def line_chart(
    title: str, categories: Sequence[str], series: Sequence[Series], *, percent: bool = False
) -> str:
    """Lines with markers on a tight axis: small differences around a target stay visible."""
    values = [v for s in series for v in s.values if v is not None]
    lo, hi = _range(values, include_zero=False)
    ticks = nice_ticks(lo, hi)
    frame = _Frame(min(ticks), max(ticks), len(categories))
    inner = _axes(frame, ticks, categories, percent) + _lines(frame, series)
    return _svg(title, inner + _legend(series))


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


# --- the quarterly review pack's charts (spec §5)

MONEY_KINDS = tuple(LINE_LABELS.items())
CAUSES = (*DOWNTIME_CAUSES, MISSING)


def _settled(pack: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pack["months"])


def _get(month: dict[str, Any], *path: str) -> float | None:
    node: Any = month
    for key in path:
        if not isinstance(node, dict) or node.get(key) is None:
            return None
        node = node[key]
    return float(node)


def kpi_charts(pack: dict[str, Any]) -> list[str]:
    """One chart per KPI rule: achieved value, target and bonus threshold per month."""
    months = _settled(pack)
    labels = [m["period"] for m in months]
    rules: dict[str, dict[str, list[float | None]]] = {}
    for i, m in enumerate(months):
        for t in m.get("targets", []):
            rule = rules.setdefault(
                t["kpi"], {k: [None] * len(months) for k in ("value", "target", "bonus_above")}
            )
            for key in rule:
                rule[key][i] = None if t.get(key) is None else float(t[key])
    charts = []
    for kpi, data in rules.items():
        series = [
            Series("achieved", data["value"], PALETTE[0]),
            Series("target", data["target"], PALETTE[3], dashed=True),
        ]
        if any(v is not None for v in data["bonus_above"]):
            series.append(Series("bonus above", data["bonus_above"], PALETTE[1], dashed=True))
        charts.append(line_chart(f"{kpi} vs target", labels, series, percent=_is_ratio(kpi)))
    return charts


def _is_ratio(kpi: str) -> bool:
    return kpi in {"availability", "quality_rate", "performance", "utilisation", "oee"}


def money_chart(pack: dict[str, Any]) -> str:
    months = _settled(pack)
    series = [
        Series(name, [_get(m, "money", kind) for m in months], color(i))
        for i, (kind, name) in enumerate(MONEY_KINDS)
        if any(_get(m, "money", kind) for m in months)
    ]
    net = Series("net", [_get(m, "money", "net") for m in months], "#1b1f24")
    title = f"Money flows ({pack['currency']})"
    return bar_chart(title, [m["period"] for m in months], series, stacked=True, overlays=[net])


def downtime_chart(pack: dict[str, Any]) -> str:
    months = _settled(pack)
    series = []
    for i, cause in enumerate(CAUSES):
        minutes = [_get(m, "downtime_min", cause) for m in months]
        hours = [None if v is None else v / 60 for v in minutes]
        name = "no data" if cause == MISSING else cause
        series.append(Series(name, hours, color(i + 2) if cause != MISSING else "#8c959f"))
    return bar_chart(
        "Downtime by cause (hours)", [m["period"] for m in months], series, stacked=True
    )


def completeness_chart(pack: dict[str, Any], threshold: float = 0.98) -> str:
    months = _settled(pack)
    shares = [_get(m, "completeness", "share") for m in months]
    reference = Series(
        f"{threshold:.0%} reported",
        [threshold if s is not None else None for s in shares],
        PALETTE[3],
        dashed=True,
    )
    return bar_chart(
        "Data completeness (share of minutes reported)",
        [m["period"] for m in months],
        [Series("reported", shares, PALETTE[0])],
        overlays=[reference],
        percent=True,
    )


def value_chart(pack: dict[str, Any]) -> str | None:
    """Value delivered and how it divided; cost and margin only in the provider's view."""
    months = _settled(pack)
    keys = [
        ("value_to_customer", "value to customer"),
        ("net", "net paid"),
        ("customer_gain", "customer gain"),
    ]
    if pack.get("view") == "provider":
        keys += [("cost", "cost to serve"), ("provider_margin", "provider margin")]
    series = [
        Series(name, [_get(m, "value", key) for m in months], color(i))
        for i, (key, name) in enumerate(keys)
        if any(_get(m, "value", key) is not None for m in months)
    ]
    if not series:
        return None
    title = f"Value delivered ({pack['currency']})"
    return bar_chart(title, [m["period"] for m in months], series)


def pack_charts(pack: dict[str, Any]) -> dict[str, list[str]]:
    """The page's SVG charts, by section."""
    value = value_chart(pack)
    return {
        "kpis": kpi_charts(pack),
        "money": [money_chart(pack)],
        "operations": [downtime_chart(pack), completeness_chart(pack)],
        "value": [value] if value else [],
        "promise": promise_charts(pack),
    }


def promise_charts(pack: dict[str, Any]) -> list[str]:
    """Per promised figure: delivered per month against the promise and the baseline."""
    promise = pack.get("promise")
    if not promise or not promise["periods"]:
        return []
    labels = [p["period"] for p in promise["periods"]]
    out = []
    for figure in promise["promised"]:
        rows = [p["figures"].get(figure, {}) for p in promise["periods"]]

        def series(key: str, rows: list[dict[str, Any]] = rows) -> list[float | None]:
            return [None if r.get(key) is None else float(r[key]) for r in rows]

        lines = [
            Series("delivered", series("realised"), PALETTE[0]),
            Series("promised", series("promised"), PALETTE[1], dashed=True),
        ]
        if any(v is not None for v in series("baseline")):
            lines.append(Series("at signing", series("baseline"), PALETTE[5], dashed=True))
        ratio = figure in RATIO_KPIS
        out.append(line_chart(f"{figure}: promised vs delivered", labels, lines, percent=ratio))
    return out
