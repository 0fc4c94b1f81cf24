"""The seeded generator: device profile → samples of a time range (pure, no I/O)."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from random import Random
from typing import Any, Literal

from schemas.periods import local_date, zone
from services.ingest import jsonx

DAY = timedelta(days=1)
OffShift = Literal["stop", "idle"]


# ---------------------------------------------------------------- profiles


@dataclass(frozen=True)
class DeviceProfile:
    """How one machine behaves. Rates are per week / month of calendar time.

    ``off_shift="stop"``: outside shift hours and on non-work days the machine
    is stopped as planned non-production time (excused by default);
    ``"idle"``: it runs around the clock, at ``idle_load`` outside shifts.
    """

    timezone: str = "UTC"
    rated_capacity_per_hour: float = 100.0
    performance: float = 0.92
    noise: float = 0.04
    shift_hours: tuple[int, int] = (6, 22)
    work_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    off_shift: OffShift = "stop"
    idle_load: float = 0.5
    breakdowns_per_week: float = 0.5
    breakdown_hours: float = 3.0
    maintenance_every_weeks: int = 4
    maintenance_hours: float = 6.0
    customer_stops_per_week: float = 0.5
    customer_stop_hours: float = 2.0
    quality: float = 0.985
    quality_dip_chance: float = 0.03
    quality_dip: float = 0.9
    gaps_per_month: float = 0.0
    gap_hours: float = 8.0

    def running_days(self) -> tuple[int, ...]:
        return self.work_days if self.off_shift == "stop" else tuple(range(7))


@dataclass(frozen=True)
class SimDevice:
    """A device and its behaviour over time: ``changes`` switch profiles from a local day on."""

    device_id: str
    profile: DeviceProfile = field(default_factory=DeviceProfile)
    changes: tuple[tuple[date, DeviceProfile], ...] = ()

    @property
    def timezone(self) -> str:
        return self.profile.timezone

    def profile_on(self, day: date) -> DeviceProfile:
        current = self.profile
        for since, later in sorted(self.changes, key=lambda c: c[0]):
            if day >= since:
                current = later
        return current


@dataclass(frozen=True)
class SimSample:
    """One generated sample; numbers are exact decimals with three places."""

    device_id: str
    ts: int
    interval_s: int
    uptime_min: Decimal
    quality_min: Decimal
    throughput: Decimal
    downtime_cause: str | None
    seq: int

    def body(self, skew_s: int = 0) -> dict[str, Any]:
        """The §1.2 JSON object, its ``ts`` shifted by a device clock's skew."""
        out: dict[str, Any] = {
            "ts": jsonx.iso(datetime.fromtimestamp(self.ts + skew_s, UTC)),
            "interval_s": self.interval_s,
            "uptime_min": self.uptime_min,
            "quality_min": self.quality_min,
            "throughput": self.throughput,
            "seq": self.seq,
        }
        if self.downtime_cause is not None:
            out["downtime_cause"] = self.downtime_cause
        return out


# ---------------------------------------------------------------- one day's events

CAUSE = {"off_shift": "planned", "maintenance": "planned", "breakdown": "unplanned"}
CAUSE["customer_stop"] = "customer"
RANK = {"off_shift": 4, "maintenance": 3, "breakdown": 2, "customer_stop": 1}
"""When stops overlap, the minute goes to the highest rank (a breakdown at night is no loss)."""


@dataclass(frozen=True)
class Event:
    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class DayPlan:
    """What happens to one device on one local day; times are epoch seconds."""

    start: int
    end: int
    shift: tuple[int, int] | None
    events: tuple[Event, ...]
    gaps: tuple[Event, ...]
    quality: float


def _at(day: date, hour: int, tz: str) -> int:
    """Epoch seconds of local wall-clock ``hour`` (0 to 24) on ``day``; DST days stay right."""
    if hour >= 24:
        day, hour = day + DAY, hour - 24
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=zone(tz)).timestamp())


def _poisson(rng: Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, count, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _spells(
    rng: Random, lam: float, window: tuple[int, int], hours: float, kind: str
) -> list[Event]:
    """Stops starting at random in ``window``, lasting 0.5 to 1.5 times ``hours``."""
    out = []
    for _ in range(_poisson(rng, lam)):
        start = int(window[0] + rng.random() * (window[1] - window[0]))
        out.append(Event(start, start + int(hours * 3600 * rng.uniform(0.5, 1.5)), kind))
    return out


def _maintenance(profile: DeviceProfile, day: date, start: int) -> list[Event]:
    """Planned maintenance on the first running day of every n-th ISO week."""
    every = profile.maintenance_every_weeks
    running = sorted(profile.running_days())
    if every <= 0 or not running or day.weekday() != running[0]:
        return []
    if day.isocalendar().week % every:
        return []
    return [Event(start, start + int(profile.maintenance_hours * 3600), "maintenance")]


def day_plan(device: SimDevice, day: date, seed: int | str) -> DayPlan:
    """The day's shift, stops, data gaps and quality; its own random stream."""
    profile, tz = device.profile_on(day), device.timezone
    rng = Random(f"{seed}/{device.device_id}/{day.isoformat()}/events")
    start, end = _at(day, 0, tz), _at(day, 24, tz)
    working = day.weekday() in profile.work_days
    shift = (_at(day, profile.shift_hours[0], tz), _at(day, profile.shift_hours[1], tz))
    shift_or_none = shift if working else None
    events: list[Event] = []
    window = (start, end)
    if profile.off_shift == "stop":
        window = shift if working else (start, start)
        bounds = [(start, shift[0]), (shift[1], end)] if working else [(start, end)]
        events += [Event(a, b, "off_shift") for a, b in bounds if b > a]
    running = day.weekday() in profile.running_days() and window[1] > window[0]
    per_day = 1 / max(len(profile.running_days()), 1)
    if running:
        events += _maintenance(profile, day, window[0])
    lam = profile.breakdowns_per_week * per_day if running else 0.0
    events += _spells(rng, lam, window, profile.breakdown_hours, "breakdown")
    lam = profile.customer_stops_per_week * per_day if running else 0.0
    events += _spells(rng, lam, window, profile.customer_stop_hours, "customer_stop")
    gaps = _spells(rng, profile.gaps_per_month / 30, (start, end), profile.gap_hours, "gap")
    dip = rng.random() < profile.quality_dip_chance
    quality = profile.quality_dip if dip else profile.quality
    return DayPlan(start, end, shift_or_none, tuple(events), tuple(gaps), quality)


def down_seconds(a: int, b: int, events: Sequence[Event]) -> dict[str, int]:
    """Seconds of ``[a, b)`` stopped, by cause; overlapping stops resolved by rank."""
    hits = [e for e in events if e.start < b and e.end > a]
    if not hits:
        return {}
    cuts = sorted({a, b, *(max(a, e.start) for e in hits), *(min(b, e.end) for e in hits)})
    down: dict[str, int] = {}
    for lo, hi in pairwise(cuts):
        covering = [e for e in hits if e.start <= lo and e.end >= hi]
        if covering:
            cause = CAUSE[max(covering, key=lambda e: RANK[e.kind]).kind]
            down[cause] = down.get(cause, 0) + hi - lo
    return down


# ---------------------------------------------------------------- the generator


class _Plans:
    """Day plans of one device, each computed once per generation."""

    def __init__(self, device: SimDevice, seed: int | str) -> None:
        self.device, self.seed = device, seed
        self._cache: dict[date, DayPlan] = {}

    def __getitem__(self, day: date) -> DayPlan:
        if day not in self._cache:
            self._cache[day] = day_plan(self.device, day, self.seed)
            self._cache.pop(day - 3 * DAY, None)
        return self._cache[day]


def _milli(value: float) -> Decimal:
    return Decimal(int(value * 1000)).scaleb(-3)


def _sample(
    device_id: str,
    profile: DeviceProfile,
    plan: DayPlan,
    span: tuple[int, int],
    down: dict[str, int],
    draws: tuple[float, float],
) -> SimSample:
    (ts, interval_s), (noise, quality_noise) = span, draws
    up_milli = (interval_s - sum(down.values())) * 1000 // 60
    in_shift = plan.shift is not None and plan.shift[0] <= ts < plan.shift[1]
    load = 1.0 if in_shift or profile.off_shift == "stop" else profile.idle_load
    factor = min(max(profile.performance * load * (1 + profile.noise * noise), 0.0), 1.1)
    throughput = up_milli / 1000 / 60 * profile.rated_capacity_per_hour * factor
    quality = min(max(plan.quality + 0.004 * quality_noise, 0.0), 1.0)
    cause = max(down, key=lambda c: (down[c], c)) if down else None
    return SimSample(
        device_id=device_id,
        ts=ts,
        interval_s=interval_s,
        uptime_min=Decimal(up_milli).scaleb(-3),
        quality_min=Decimal(min(up_milli, int(up_milli * quality))).scaleb(-3),
        throughput=_milli(throughput),
        downtime_cause=cause,
        seq=ts // interval_s,
    )


def _day_samples(
    device: SimDevice, day: date, plans: _Plans, seed: int | str, interval_s: int
) -> Iterator[SimSample]:
    plan, before, after = plans[day], plans[day - DAY], plans[day + DAY]
    profile = device.profile_on(day)
    events = before.events + plan.events + after.events
    gaps = before.gaps + plan.gaps
    rng = Random(f"{seed}/{device.device_id}/{day.isoformat()}/samples/{interval_s}")
    first = -(-plan.start // interval_s) * interval_s
    for ts in range(first, plan.end, interval_s):
        draws = (rng.gauss(0, 1), rng.gauss(0, 1))  # drawn even in a gap: streams stay aligned
        if any(g.start <= ts < g.end for g in gaps):
            continue
        down = down_seconds(ts, ts + interval_s, events)
        yield _sample(device.device_id, profile, plan, (ts, interval_s), down, draws)


def generate(
    device: SimDevice, start: datetime, end: datetime, *, seed: int | str, interval_s: int
) -> Iterator[SimSample]:
    """Samples of ``device`` whose ``ts`` lies in ``[start, end)``, on an epoch-aligned grid."""
    lo, hi = int(start.timestamp()), int(end.timestamp())
    if hi <= lo:
        return
    plans = _Plans(device, seed)
    day = local_date(start, device.timezone)
    last = local_date(end - timedelta(microseconds=1), device.timezone)
    while day <= last:
        for s in _day_samples(device, day, plans, seed, interval_s):
            if lo <= s.ts < hi:
                yield s
        day += DAY


def fleet(
    devices: Sequence[SimDevice],
    span: Callable[[SimDevice], tuple[datetime, datetime]],
    *,
    seed: int | str,
    interval_s: int,
) -> Iterator[SimSample]:
    """All devices' samples merged in the order they complete (``ts + interval_s``)."""
    streams = [generate(d, *span(d), seed=seed, interval_s=interval_s) for d in devices]
    return heapq.merge(*streams, key=lambda s: (s.ts + s.interval_s, s.device_id))
