"""Per-device period quantities, read from the 15-minute rollups (never raw samples).

The rollups are read with the deltas that writes appended since the last
fold (``services.ingest.rollups``), as the view ``rollup_totals`` has them: a
figure read here does not depend on when the fold ran.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from schemas.contract import ContractTerms
from schemas.db import down_column, rollups
from schemas.periods import Period, period_bounds
from schemas.vocabulary import DOWNTIME_CAUSES
from services.settlement.kpis import DeviceUsage

SIXTY = Decimal(60)

_COLUMNS = ", ".join(c.name for c in rollups.columns)  # rollup_deltas has the same
# rollup_totals without its sums per bucket: summed per device here anyway,
# and a month of a fleet is millions of buckets to group for nothing.
_ROLLUPS_AND_DELTAS = (
    f"(SELECT {_COLUMNS} FROM rollups UNION ALL SELECT {_COLUMNS} FROM rollup_deltas) r"
)
USAGE_SQL = text(
    f"""
    SELECT device_id,
           sum(reported_s)  AS reported_s,
           sum(uptime_min)  AS uptime_min,
           sum(quality_min) AS quality_min,
           sum(throughput)  AS throughput,
           {", ".join(f"sum({down_column(c)}) AS {down_column(c)}" for c in DOWNTIME_CAUSES)},
           max(last_received_at) AS watermark
      FROM {_ROLLUPS_AND_DELTAS}
     WHERE device_id = ANY(:devices) AND bucket >= :start AND bucket < :end
     GROUP BY device_id
    """
)


def load_usage(
    conn: Connection, terms: ContractTerms, period: Period, *, until: datetime | None = None
) -> tuple[list[DeviceUsage], datetime | None]:
    """Usage of every contract device in ``period`` (up to ``until``) and the data watermark.

    Devices without any data still appear (all their minutes are missing).
    """
    start, end = period_bounds(period, terms.timezone)
    if until is not None:
        end = min(end, until)
    return usage_between(conn, terms.devices, start, end)


def usage_between(
    conn: Connection, devices: list[str], start: datetime, end: datetime
) -> tuple[list[DeviceUsage], datetime | None]:
    """Per-device usage in ``[start, end)``; both ends must fall on 15-minute buckets."""
    rows = {
        r.device_id: r
        for r in conn.execute(USAGE_SQL, {"devices": devices, "start": start, "end": end})
    }
    usage = [device_usage(d, rows.get(d)) for d in devices]
    marks = [r.watermark for r in rows.values() if r.watermark is not None]
    return usage, max(marks) if marks else None


def device_usage(device_id: str, r: Any) -> DeviceUsage:
    """§3.1 quantities of one device from a row of summed rollup columns (None: no data)."""
    if r is None:
        return DeviceUsage(device_id=device_id)
    return DeviceUsage(
        device_id=device_id,
        reported_min=Decimal(r.reported_s) / SIXTY,
        uptime_min=Decimal(r.uptime_min),
        quality_min=Decimal(r.quality_min),
        throughput=Decimal(r.throughput),
        down_min={c: Decimal(getattr(r, down_column(c))) for c in DOWNTIME_CAUSES},
    )
