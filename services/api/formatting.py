"""Numbers as people read them (spec §8): one place for every page and printout.

Ratio KPIs are percentages ("95.0 %"), money carries its currency and
thousands separators ("EUR 12,000.00", at the currency's minor unit), other
quantities get separators and their unit ("35,000 t"). Times are shown in the
contract's time zone. Values arrive as Decimal, int, float or decimal text
(statements are JSON); all go through Decimal so nothing is rounded twice.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.money import minor_unit, round_money
from schemas.periods import Period, zone
from schemas.vocabulary import KPIS, RATIO_KPIS

DASH = "—"
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def number(value: Any, places: int | None = None) -> str:
    """``35000`` → "35,000"; ``places`` fixes the decimals, else trailing zeros go."""
    d = _decimal(value)
    if d is None:
        return DASH
    if places is not None:
        return f"{round(d, places):,.{places}f}"
    text = format(d.normalize(), ",f")
    return "0" if text in ("-0", "0") else text


def percent(ratio: Any, places: int = 1) -> str:
    """``0.95`` → "95.0 %"."""
    d = _decimal(ratio)
    return DASH if d is None else f"{number(d * 100, places)} %"


def points(ratio: Any) -> str:
    """A ratio difference in percentage points: ``0.005`` → "0.5 points"."""
    d = _decimal(ratio)
    if d is None:
        return DASH
    n = number(d * 100)
    return f"{n} point" if n == "1" else f"{n} points"


def money(amount: Any, currency: str, *, sign: bool = False) -> str:
    """``"12000"``, EUR → "EUR 12,000.00", "EUR -50.00"; JPY has no decimals;
    ``sign`` shows "+" on amounts above zero."""
    d = _decimal(amount)
    if d is None:
        return DASH
    places = minor_unit(currency)
    rounded = round_money(d, currency)
    text = f"{abs(rounded):,.{places}f}"
    prefix = "-" if rounded < 0 else "+" if sign and rounded > 0 else ""
    return f"{currency} {prefix}{text}"


_LABELS: dict[str, str] = {name: k.label for name, k in KPIS.items()}


def kpi_name(kpi: str) -> str:
    """ "quality_rate" → "Quality rate" (the vocabulary's label, capitalised)."""
    label = _LABELS.get(kpi, kpi.replace("_", " "))
    return label[:1].upper() + label[1:]


def kpi_value(kpi: str, value: Any, unit: str | None = None) -> str:
    """A KPI as read: a percentage for ratio KPIs, else a quantity with its unit."""
    if kpi in RATIO_KPIS:
        return percent(value)
    if value is None:
        return DASH
    suffix = {"throughput": f" {unit}" if unit else "", "utilised_capacity_hours": " h"}.get(
        kpi, " h" if kpi.endswith("_hours") else ""
    )
    return f"{number(value, 0 if kpi != 'throughput' else None)}{suffix}"


def local_time(ts: Any, tz: str, *, seconds: bool = False) -> str:
    """An instant in the contract's zone: "2026-11-03 14:05 (Europe/Stockholm)"."""
    if ts is None:
        return DASH
    moment = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        return str(ts)
    shape = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return f"{moment.astimezone(zone(tz)).strftime(shape)} ({tz})"


def day(value: Any) -> str:
    """ISO dates stay ISO (finance's unambiguous form); ``None`` is a dash."""
    if value is None:
        return DASH
    return value.isoformat() if isinstance(value, date) else str(value)


def month_name(period: Any) -> str:
    """``"2026-10"`` → "October 2026"."""
    p = period if isinstance(period, Period) else Period.parse(str(period))
    return f"{MONTHS[p.month - 1]} {p.year}"


FILTERS = {
    "number": number,
    "percent": percent,
    "points": points,
    "money": money,
    "kpi_name": kpi_name,
    "kpi_value": kpi_value,
    "local_time": local_time,
    "day": day,
    "month_name": month_name,
}
"""Registered as Jinja2 filters under these names."""
