"""KPI time series for charts: the same quantities and formulas as settlement, per day or month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import Connection

from schemas.periods import (
    InvalidPeriod,
    Period,
    day_bounds,
    minutes_between,
    period_bounds,
)
from schemas.vocabulary import KpiName
from services.errors import Invalid
from services.settlement.contracts import Version, version_in_force
from services.settlement.kpis import device_quantities, fleet_kpis
from services.settlement.ownership import owned_terms
from services.settlement.usage import usage_between

Granularity = Literal["day", "month"]
MAX_POINTS = 400


@dataclass(frozen=True)
class Point:
    start: datetime
    label: str
    kpis: dict[KpiName, Decimal | None]
    contract_version: int


def _windows(
    first: date, last: date, granularity: Granularity, tz: str
) -> list[tuple[str, datetime, datetime, Period]]:
    if _points(first, last, granularity) > MAX_POINTS:  # before computing any: no CPU burnt
        raise Invalid(f"at most {MAX_POINTS} points per request; narrow from/to", field="from")
    try:
        return _bounds(first, last, granularity, tz)
    except (OverflowError, InvalidPeriod):  # year 1 or 9999 pushed across by the zone
        raise Invalid(
            "from/to reach past the dates viu can compute with (years 1 to 9999)", field="from"
        ) from None


def _points(first: date, last: date, granularity: Granularity) -> int:
    if granularity == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    return (last - first).days + 1


def _bounds(
    first: date, last: date, granularity: Granularity, tz: str
) -> list[tuple[str, datetime, datetime, Period]]:
    out = []
    if granularity == "month":
        p, end = Period(first.year, first.month), Period(last.year, last.month)
        while p <= end:
            s, e = period_bounds(p, tz)
            out.append((str(p), s, e, p))
            p = p.next()
    else:
        d = first
        while d <= last:
            s, e = day_bounds(d, tz)
            out.append((d.isoformat(), s, e, Period(d.year, d.month)))
            d = date.fromordinal(d.toordinal() + 1)
    return out


def kpi_series(
    conn: Connection, contract_id: str, first: date, last: date, granularity: Granularity, tz: str
) -> list[Point]:
    """KPIs per day or month in the contract's zone, each under the version then in force."""
    if last < first:
        raise Invalid("'to' must not be before 'from'", field="to")
    points = []
    for label, start, end, period in _windows(first, last, granularity, tz):
        version: Version | None = version_in_force(conn, contract_id, period)
        if version is None:
            continue
        terms = owned_terms(conn, contract_id, version.terms, period)
        usage, _ = usage_between(conn, terms.devices, start, end)
        minutes = minutes_between(start, end)
        quantities = [
            device_quantities(u, minutes, terms.missing_data, terms.excused_causes) for u in usage
        ]
        kpis = fleet_kpis(quantities, Decimal(terms.rated_capacity_per_hour))
        points.append(Point(start, label, kpis, version.version))
    return points
