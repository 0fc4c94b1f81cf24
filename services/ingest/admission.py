"""Which decoded samples may be stored: a registered device, inside the accepted time window.

The window (``Window``) keeps a broken device clock or a hostile payload from
writing decades of history or future: a sample is accepted from the start of
its device's first contract period (in the contract's time zone, optionally
some days earlier for baselines) up to a day (configurable) ahead of now.
Outside it the sample is dead-lettered with the reason, and because monthly
partitions are created only for accepted samples, no input can make viu
create partitions outside the window.

One query per batch answers both questions (is the device registered, when
does its first contract period start). The writer sends it in the round trip
that also takes the batch's device locks (``writer.write_decoded``), so
screening adds no round trip.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection

from schemas.telemetry import TS_MIN
from services.config import Settings
from services.db import driver_connection
from services.ingest import jsonx
from services.ingest.decode import Decoded, Reject, sample_payload


@dataclass(frozen=True)
class Window:
    """How far ahead of now, and how far before the first contract period, samples are accepted."""

    ahead: timedelta = timedelta(days=1)
    before_contract: timedelta = timedelta(0)

    @classmethod
    def of(cls, settings: Settings) -> Window:
        return cls(
            ahead=timedelta(seconds=settings.ingest_max_ahead_s),
            before_contract=timedelta(days=settings.ingest_days_before_contract),
        )


DEFAULT_WINDOW = Window()
_TS = attrgetter("ts")

# A join, not "= ANY(:ids)": with a parameter array PostgreSQL compares every
# device with every element (milliseconds per batch). The first period starts
# at local midnight of its first day in the contract's time zone. The ids come
# as one JSON array (``id_list``).
DEVICES = """
    SELECT d.device_id, f.effective_from, f.starts
    FROM json_array_elements_text(CAST(%(ids)s AS json)) AS u(id)
    JOIN devices d ON d.device_id = u.id
    LEFT JOIN LATERAL (
      SELECT v.effective_from,
             CAST(v.effective_from || '-01' AS timestamp)
               AT TIME ZONE coalesce(v.body->>'timezone', 'UTC') AS starts
      FROM contract_versions v WHERE v.contract_id = d.contract_id
      ORDER BY v.effective_from LIMIT 1) f ON true
    """
Devices = dict[str, Any]
"""The rows of ``DEVICES`` by device id (named tuples: device_id, effective_from, starts)."""


def wanted(batch: Sequence[Decoded]) -> list[str]:
    """The devices whose samples ``screen`` asks about, sorted."""
    return sorted({d.device_id for d in batch if d.samples and d.device_id})


def id_list(ids: Sequence[str]) -> str:
    """Device ids as one parameter: a JSON array, read by ``json_array_elements_text``.

    psycopg dumps a list parameter element by element in Python (about 2 µs
    an id here, and a batch sends its ids in three statements); ``json.dumps``
    does it in C, and any string comes back unchanged.
    """
    return json.dumps(ids, ensure_ascii=False)


def devices_cursor(conn: Connection) -> psycopg.Cursor[Any]:
    return driver_connection(conn).cursor(row_factory=namedtuple_row)


def screen(conn: Connection, batch: Sequence[Decoded], window: Window = DEFAULT_WINDOW) -> None:
    """Move what may not be stored from ``samples`` to ``rejects``, in place.

    A payload for a device nobody registered is dead-lettered whole
    (replayable once the device is registered); a sample outside the window
    is dead-lettered on its own. Applying it twice changes nothing.
    """
    ids = wanted(batch)
    if not ids:
        return
    with devices_cursor(conn) as cur:
        cur.execute(DEVICES, {"ids": id_list(ids)})
        admit(batch, {r.device_id: r for r in cur.fetchall()}, window)


def admit(batch: Sequence[Decoded], known: Devices, window: Window = DEFAULT_WINDOW) -> None:
    """``screen`` with the answer of ``DEVICES`` for the batch's devices in hand.

    Per payload only a lookup and a comparison: a device's lower bound is
    worked out once per batch, and a payload inside the window goes no further.
    """
    latest = datetime.now(UTC) + window.ahead
    lowest_of: dict[str, datetime] = {}
    for d in batch:
        samples = d.samples
        if not samples:
            continue
        device_id = d.device_id or ""  # a payload without a device is from no known device
        lowest = lowest_of.get(device_id)
        if lowest is None:
            device = known.get(device_id)
            if device is None:
                d.reject_all(f"unknown device '{d.device_id}'")
                continue
            lowest = lowest_of[device_id] = _earliest(device, window) or TS_MIN
        if len(samples) == 1:  # the usual MQTT message
            if lowest <= samples[0].ts <= latest:
                continue
        else:
            stamps = list(map(_TS, samples))  # the usual case, all inside, stays in C
            if lowest <= min(stamps) and max(stamps) <= latest:
                continue
        _admit(d, known[device_id], latest, window)


def _earliest(device: Any, window: Window) -> datetime | None:
    """The device's first accepted time (None: no contract, any time back to ``TS_MIN``)."""
    return None if device.starts is None else device.starts - window.before_contract


def _admit(d: Decoded, device: Any, latest: datetime, window: Window) -> None:
    """Dead-letter what of ``d`` is outside the window (some of it is)."""
    earliest = _earliest(device, window)
    lowest = TS_MIN if earliest is None else earliest
    outside = [s for s in d.samples if not lowest <= s.ts <= latest]
    if not d.batch:
        d.reject_all(_why(outside[0].ts, earliest, latest, device, window))
        return
    out = set(map(id, outside))
    d.samples = [s for s in d.samples if id(s) not in out]
    d.staged = None
    topic, device_id = d.message.topic, d.device_id
    for s in outside:
        why = _why(s.ts, earliest, latest, device, window)
        d.rejects.append(Reject(topic, device_id, sample_payload(s), why))


def _why(
    ts: datetime, earliest: datetime | None, latest: datetime, device: Any, window: Window
) -> str:
    if ts > latest:
        return (
            f"ts {jsonx.iso(ts)} is more than {_span(window.ahead)} in the future "
            f"(accepted up to {jsonx.iso(latest)})"
        )
    assert earliest is not None
    return (
        f"ts {jsonx.iso(ts)} is before the device's first contract period "
        f"{device.effective_from} (accepted from {jsonx.iso(earliest)})"
    )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86_400)
    if seconds and not rest:
        return f"{days} day" if days == 1 else f"{days} days"
    return f"{seconds} s"
