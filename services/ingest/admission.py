"""Which decoded samples may be stored: a registered device, inside the accepted time window.

The window (``Window``) keeps a broken device clock or a hostile payload from
writing decades of history or future: a sample is accepted from the start of
its device's first contract period (in the contract's time zone, optionally
some days earlier for baselines) up to a day (configurable) ahead of now.
Outside it the sample is dead-lettered with the reason, and because monthly
partitions are created only for accepted samples, no input can make viu
create partitions outside the window.

One query answers both questions (is the device registered, when does its
first contract period start). The writer sends it in the round trip that also
takes the batch's device locks (``writer.write_decoded``), so screening adds no
round trip, and only about the devices whose answers it does not hold already
(``ScreenCache``, exact: kept answers are dropped whenever what they were read
from changes).
"""

from __future__ import annotations

import functools
import json
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from operator import attrgetter
from typing import Any, NamedTuple

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Engine

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


# Changes, in the changing transaction, with every change to devices or
# contract_versions (migration 0011); no row (the table was emptied): keep nothing.
SCREEN_EPOCH = "SELECT epoch FROM screen_epoch"


class Taken(NamedTuple):
    """What ``ScreenCache.take`` found for a batch's device ids."""

    epoch: Any  # the epoch the kept answers were read under
    kept: dict[str, Any]  # device id -> its kept DEVICES row (None: not registered)
    asked: list[str]  # the ids without a kept answer: to ask DEVICES about


class ScreenCache:
    """Answers of ``DEVICES`` kept between batches, exact because they are kept per epoch.

    ``screen_epoch`` gets a new random value in every transaction that
    changes ``devices`` or ``contract_versions``. A writer reads the epoch and
    then asks ``DEVICES`` about the devices it holds no answer for, in one
    round trip (``take``, then ``answer``). The epoch read first and the rows
    read after it make a pair that is never stale: a change committed before
    the epoch was read is in the rows too, and one committed later changes the
    epoch that the next batch reads. If the epoch is the one the kept answers
    were read under, nothing they depend on has changed since, and they answer
    as a fresh query would; otherwise they are dropped and the batch asks about
    all its devices. Unregistered devices are kept too (a flood of them stays
    within ``limit`` answers: beyond it the cache starts over). Thread-safe:
    the API's HTTP ingest threads share their engine's cache.
    """

    def __init__(self, limit: int = 1 << 16) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._epoch: Any = None
        self._rows: dict[str, Any] = {}  # device id -> its DEVICES row, None: not registered

    def take(self, ids: Sequence[str]) -> Taken:
        with self._lock:
            rows = self._rows
            kept = {i: rows[i] for i in ids if i in rows}
            return Taken(self._epoch, kept, [i for i in ids if i not in kept])

    def answer(self, taken: Taken, epoch: Any, rows: Sequence[Any]) -> Devices | None:
        """Keep ``rows`` (the answer about the ids ``take`` gave to ask) read after ``epoch``.

        Returns the batch's ``Devices``, or None when kept answers were used
        that ``epoch`` shows to be out of date: ask about those ids again.
        """
        held, kept, asked = taken
        found = {r.device_id: r for r in rows}
        with self._lock:
            if epoch is None or epoch != self._epoch:
                self._rows = {}
                self._epoch = epoch
            if epoch is not None:
                if len(self._rows) + len(asked) > self.limit:
                    self._rows = {}
                self._rows.update((i, found.get(i)) for i in asked)
        if kept and (epoch is None or held != epoch):
            return None
        found.update((i, r) for i, r in kept.items() if r is not None)
        return found


_caches: weakref.WeakKeyDictionary[Engine, ScreenCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def screen_cache(conn: Connection) -> ScreenCache:
    """The cache of ``conn``'s engine (one per database a process writes to)."""
    with _caches_lock:
        cache = _caches.get(conn.engine)
        if cache is None:
            cache = _caches[conn.engine] = ScreenCache()
        return cache


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


def admit(batch: Sequence[Decoded], known: Devices, window: Window = DEFAULT_WINDOW) -> bool:
    """``screen`` with the answer of ``DEVICES`` for the batch's devices in hand.

    Per payload only a lookup and a comparison: a device's lower bound is
    worked out once per batch, and a payload inside the window goes no further.
    Returns whether any payload's samples changed.
    """
    changed = False
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
                changed = True
                continue
            # In UTC, as every sample's ts is: comparing datetimes of two time
            # zones (PostgreSQL's answer carries the session's) asks each for its
            # offset, which cost more than the rest of the payload's screening.
            lowest = lowest_of[device_id] = _earliest_utc_of_starts(
                device.starts, window.before_contract
            )
        if len(samples) == 1:  # the usual MQTT message
            if lowest <= samples[0].ts <= latest:
                continue
        else:
            stamps = list(map(_TS, samples))  # the usual case, all inside, stays in C
            if lowest <= min(stamps) and max(stamps) <= latest:
                continue
        _admit(d, known[device_id], latest, window)
        changed = True
    return changed


@functools.lru_cache(maxsize=1 << 12)
def _lowest(starts: datetime | None, zone: tzinfo | None, before_contract: timedelta) -> datetime:
    """``_in_utc(_earliest(...))`` of a device's contract start, remembered.

    A batch of single-sample messages names hundreds of devices once each,
    while their contracts start on a few dozen instants: the subtraction and
    the conversion to UTC cost more than the rest of a payload's screening.
    ``zone`` (``starts``' own) is part of the key: the subtraction counts on
    the clock of that zone, and equal instants of two zones are equal keys.
    """
    return _in_utc(None if starts is None else starts - before_contract)


def _earliest_utc_of_starts(starts: datetime | None, before_contract: timedelta) -> datetime:
    """A device's lower bound in UTC from its first contract start (``_lowest``, remembered)."""
    return _lowest(starts, None if starts is None else starts.tzinfo, before_contract)


def _in_utc(earliest: datetime | None) -> datetime:
    """A device's lower bound in UTC; as it is where UTC cannot hold it (year 1 east of UTC)."""
    if earliest is None:
        return TS_MIN
    try:
        return earliest.astimezone(UTC)
    except OverflowError:  # compared as it is: slower, the same answer
        return earliest


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
