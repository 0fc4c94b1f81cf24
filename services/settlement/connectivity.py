"""Why minutes are missing: the device was offline, silent while connected, or nobody knows.

A Sparkplug B device's births and deaths (``device_connectivity``, written
by ingest) say when it was connected. A device's missing minutes in a period
(``missing_min`` of its statement) split into:

- ``offline_min``: unreported minutes between a death (DDEATH, or its edge
  node's NDEATH or new NBIRTH) and the next DBIRTH: the link or the gateway
  was down;
- ``silent_min``: unreported minutes while it was connected (after a
  DBIRTH): the device had nothing to say, or its data went astray;
- ``unknown_min``: the rest: minutes before its first birth, and every
  missing minute of a device that speaks viu's JSON (no connection state).

Offline and silent minutes are the interval's length less the minutes that
samples cover in it; the three always add up to ``missing_min`` (offline
first, then silent, are capped by it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from schemas.money import round_kpi
from schemas.periods import Period, period_bounds
from services.settlement.proposals.history import SettledPeriod

ZERO = Decimal(0)
OFFLINE, SILENT, UNKNOWN = "offline", "silent", "unknown"

# The state a device was in when the period began, then every change within it.
CHANGES = text(
    """
    SELECT device_id, ts, online, received_at FROM (
      SELECT DISTINCT ON (device_id) device_id, ts, online, received_at
      FROM device_connectivity
      WHERE device_id = ANY(CAST(:ids AS text[])) AND ts < :start
      ORDER BY device_id, ts DESC, received_at DESC) before
    UNION ALL
    SELECT device_id, ts, online, received_at FROM device_connectivity
    WHERE device_id = ANY(CAST(:ids AS text[])) AND ts >= :start AND ts < :end
    ORDER BY device_id, ts, received_at
    """
)
# Minutes of [a, b) that the device's samples cover (a sample lasts at most a day).
COVERED = text(
    """
    SELECT coalesce(sum(GREATEST(0, EXTRACT(EPOCH FROM
             LEAST(ts + make_interval(secs => interval_s), :b) - GREATEST(ts, :a)))), 0) / 60
    FROM samples
    WHERE device_id = :d AND ts < :b AND ts >= :a - interval '1 day'
    """
)


@dataclass(frozen=True)
class MissingSplit:
    offline_min: Decimal = ZERO
    silent_min: Decimal = ZERO
    unknown_min: Decimal = ZERO

    def __add__(self, other: MissingSplit) -> MissingSplit:
        return MissingSplit(
            self.offline_min + other.offline_min,
            self.silent_min + other.silent_min,
            self.unknown_min + other.unknown_min,
        )

    @property
    def known(self) -> bool:
        """Whether connection state explains any of the missing minutes."""
        return self.offline_min > 0 or self.silent_min > 0

    @property
    def mostly(self) -> str:
        """offline, silent or unknown: where most missing minutes fell (ties: that order)."""
        parts = {OFFLINE: self.offline_min, SILENT: self.silent_min, UNKNOWN: self.unknown_min}
        return max(parts, key=lambda k: parts[k])


def unexplained(missing_min: Decimal) -> MissingSplit:
    """The split of a device without connection state: every missing minute is unknown."""
    return MissingSplit(unknown_min=missing_min)


def split_missing(
    conn: Connection, period: Period, tz: str, missing: Mapping[str, Decimal]
) -> dict[str, MissingSplit]:
    """Each device's missing minutes of ``period`` split by its connection state."""
    start, end = period_bounds(period, tz)
    timelines: dict[str, list[tuple[datetime, bool]]] = {}
    params = {"ids": sorted(missing), "start": start, "end": end}
    for row in conn.execute(CHANGES, params):
        timelines.setdefault(row.device_id, []).append((max(row.ts, start), row.online))
    out = {}
    for device_id, minutes in missing.items():
        changes = timelines.get(device_id)
        if not changes or minutes <= 0:
            out[device_id] = unexplained(max(minutes, ZERO))
            continue
        offline = silent = ZERO
        for a, b, online in _intervals(changes, end):
            gap = _minutes(a, b) - _covered(conn, device_id, a, b)
            if online:
                silent += max(gap, ZERO)
            else:
                offline += max(gap, ZERO)
        offline = min(offline, minutes)
        silent = min(silent, minutes - offline)
        out[device_id] = MissingSplit(
            round_kpi(offline), round_kpi(silent), round_kpi(minutes - offline - silent)
        )
    return out


def _intervals(
    changes: Sequence[tuple[datetime, bool]], end: datetime
) -> list[tuple[datetime, datetime, bool]]:
    """Consecutive (from, to, online) intervals from the first known state to ``end``."""
    out = []
    for (a, online), (b, _) in zip(changes, [*changes[1:], (end, False)], strict=True):
        if b > a:
            out.append((a, b, online))
    return out


def _minutes(a: datetime, b: datetime) -> Decimal:
    return Decimal((b - a).total_seconds()) / 60


def _covered(conn: Connection, device_id: str, a: datetime, b: datetime) -> Decimal:
    value: Any = conn.execute(COVERED, {"d": device_id, "a": a, "b": b}).scalar()
    return Decimal(value or 0)


def for_periods(
    conn: Connection, items: Sequence[SettledPeriod], timezone: Mapping[int, str]
) -> dict[tuple[str, str], MissingSplit]:
    """The splits of every device of settled periods, by (period, device_id).

    ``timezone``: the contract's time zone per contract version.
    """
    out: dict[tuple[str, str], MissingSplit] = {}
    for item in items:
        tz = timezone[item.contract_version]
        missing = {d.device_id: d.missing_min for d in item.body.devices}
        for device_id, split in split_missing(conn, item.period, tz, missing).items():
            out[(str(item.period), device_id)] = split
    return out
