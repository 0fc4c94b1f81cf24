"""Fleet simulator: realistic telemetry for registered devices, live over MQTT or as backfill.

Three layers, so that each can be tested on its own:

- a pure, seeded **generator** (device profile → samples of a time range).
  Every local day draws from its own random streams, so a seed gives the same
  sample for the same instant whatever range was asked for: a backfill and a
  later live run agree, and a test can regenerate what was sent;
- **fault injection** (duplicates, out-of-order and late samples, malformed
  payloads, unknown devices, clock skew) that counts exactly what it sent, so
  the ingester's counters can be checked against it;
- **transports**: MQTT at QoS 1 counting the broker's PUBACKs, and backfill
  through the one ingest write path (``services.ingest.pipeline``), batched
  per transaction.
"""

from __future__ import annotations

import argparse
import heapq
import math
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from random import Random
from typing import Any, Literal
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Connection, Engine, select

from schemas.db import devices as devices_table
from services.config import Settings
from services.embedded import remembered_broker
from services.errors import Invalid, NotFound, Unavailable
from services.ingest import jsonx, pipeline
from services.ingest.decode import Message, http_topic
from services.ingest.stats import Outcome
from services.settlement import contracts
from services.settlement.periods import Period, local_date, period_bounds, zone

DAY = timedelta(days=1)
DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
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


# ---------------------------------------------------------------- fault injection


@dataclass(frozen=True)
class Faults:
    """Chances per generated sample, and the largest device clock skew in seconds."""

    duplicates: float = 0.0
    out_of_order: float = 0.0
    late: float = 0.0
    malformed: float = 0.0
    unknown_devices: float = 0.0
    clock_skew_s: int = 0


@dataclass
class Sent:
    """Exactly what went out, by kind (the summary printed at the end)."""

    samples: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    late: int = 0
    malformed: int = 0
    unknown_devices: int = 0
    clock_skewed: int = 0

    def counts(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}

    def expected_ingest(self) -> dict[str, int]:
        """The ingester's counter deltas these messages cause, if the samples were new."""
        return {
            "stored": self.samples,
            "duplicates": self.duplicates,
            "dead_lettered": self.malformed + self.unknown_devices,
        }


@dataclass(frozen=True)
class Outgoing:
    device_id: str
    payload: bytes
    kind: Literal["sample", "duplicate", "malformed", "unknown_device"]


MALFORMED: tuple[Callable[[dict[str, Any]], bytes], ...] = (
    lambda b: jsonx.dumps(b).encode()[:-7],  # truncated JSON
    lambda b: jsonx.dumps(b | {"uptime_min": b["interval_s"] / 60 + 1}).encode(),
    lambda b: jsonx.dumps(b | {"quality_min": b["uptime_min"] + 1}).encode(),
    lambda b: jsonx.dumps(b | {"throughput": -1}).encode(),
    lambda b: jsonx.dumps({k: v for k, v in b.items() if k != "ts"}).encode(),
    lambda b: b"\xff\xfe not utf-8",
)
"""Each is refused by the decoder on its own: one dead letter per malformed message."""


class FaultInjector:
    """Turns the sample stream into messages, injecting faults; pure and seeded."""

    def __init__(self, faults: Faults, seed: int | str, avoid: Collection[str] = ()) -> None:
        self.faults = faults
        self.seed = seed
        self.rng = Random(f"{seed}/faults")
        self.sent = Sent()
        self._held: dict[str, list[Outgoing]] = {}
        self._late: list[Outgoing] = []
        self._skew: dict[str, int] = {}
        self._ghosts = [g for g in (f"ghost-{n:02d}" for n in range(1, 40)) if g not in avoid]

    def skew(self, device_id: str) -> int:
        """A device clock's constant offset, drawn once per device."""
        if device_id not in self._skew:
            bound = self.faults.clock_skew_s
            rng = Random(f"{self.seed}/{device_id}/clock")
            self._skew[device_id] = rng.randint(-bound, bound) if bound else 0
        return self._skew[device_id]

    def feed(self, s: SimSample) -> list[Outgoing]:
        """Messages to send now for one generated sample (held ones may come later)."""
        f = self.faults
        roll, dup = self.rng.random(), self.rng.random() < f.duplicates
        item = self._encode(s, dup)
        held = self._held.pop(s.device_id, None)
        out: list[Outgoing] = []
        if roll < f.late:
            self._late += item
            self.sent.late += 1
        elif roll < f.late + f.out_of_order and held is None:
            self._held[s.device_id] = item
            self.sent.out_of_order += 1
        else:
            out += item
        out += held or []  # a held sample goes after a later one of its device
        return out + self._extras(s)

    def finish(self) -> list[Outgoing]:
        """What is still held: out-of-order samples without a successor, then the late ones."""
        out = [o for item in self._held.values() for o in item] + self._late
        self._held, self._late = {}, []
        return out

    def _encode(self, s: SimSample, dup: bool) -> list[Outgoing]:
        skew = self.skew(s.device_id)
        raw = jsonx.dumps(s.body(skew)).encode()
        self.sent.samples += 1
        self.sent.clock_skewed += skew != 0
        item = [Outgoing(s.device_id, raw, "sample")]
        if dup:
            self.sent.duplicates += 1
            item.append(Outgoing(s.device_id, raw, "duplicate"))
        return item

    def _extras(self, s: SimSample) -> list[Outgoing]:
        out: list[Outgoing] = []
        if self.rng.random() < self.faults.malformed:
            spoil = MALFORMED[self.sent.malformed % len(MALFORMED)]
            out.append(Outgoing(s.device_id, spoil(s.body()), "malformed"))
            self.sent.malformed += 1
        if self.rng.random() < self.faults.unknown_devices and self._ghosts:
            ghost = self._ghosts[self.sent.unknown_devices % len(self._ghosts)]
            out.append(Outgoing(ghost, jsonx.dumps(s.body()).encode(), "unknown_device"))
            self.sent.unknown_devices += 1
        return out


# ---------------------------------------------------------------- MQTT transport


class MqttSink:
    """Publishes at QoS 1 and counts PUBACKs: what the broker took responsibility for."""

    def __init__(self, url: str, settings: Settings, window: int = 500) -> None:
        parts = urlsplit(url)
        self.url, self.host, self.port = url, parts.hostname or "127.0.0.1", parts.port or 1883
        self.settings, self.window = settings, window
        self.published = self.acknowledged = self.refused = 0
        self._done = threading.Condition()
        self._connack: Any = None
        self.client = self._client(paho.MQTTv5)

    def _client(self, protocol: Any) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"viu-sim-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
        )
        if self.settings.mqtt_username:
            secret = self.settings.mqtt_password
            client.username_pw_set(
                self.settings.mqtt_username, secret.get_secret_value() if secret else None
            )
        client.max_inflight_messages_set(100)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        return client

    def connect(self, timeout: float = 10.0) -> None:
        """Connect (MQTT 5, else 3.1.1); ``Unavailable`` with the reason when that fails."""
        if self._try(timeout):
            return
        refusal = self._connack
        self.client = self._client(paho.MQTTv311)
        if not self._try(timeout):
            why = refusal or self._connack or "no answer"
            raise Unavailable(f"MQTT broker at {self.url} refused the simulator: {why}")

    def _try(self, timeout: float) -> bool:
        self._connack = None
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise Unavailable(
                f"MQTT broker unreachable at {self.url} ({exc}); start `viu up` "
                "or point VIU_MQTT_URL at the broker the ingester uses"
            ) from None
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while self._connack is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._connack is not None and not self._connack.is_failure:
            return True
        self.client.loop_stop()
        self.client.disconnect()
        return False

    def _on_connect(self, client: paho.Client, _: Any, flags: Any, rc: Any, props: Any) -> None:
        self._connack = rc

    def _on_publish(self, client: paho.Client, _: Any, mid: int, rc: Any, props: Any) -> None:
        with self._done:
            if rc.is_failure:
                self.refused += 1
            else:
                self.acknowledged += 1
            self._done.notify_all()

    def send(self, topic: str, payload: bytes) -> None:
        """Publish, waiting while ``window`` messages are still unacknowledged."""
        with self._done:
            self._done.wait_for(lambda: self.in_flight < self.window, timeout=60)
            self.published += 1
        self.client.publish(topic, payload, qos=1)

    @property
    def in_flight(self) -> int:
        return self.published - self.acknowledged - self.refused

    def drain(self, timeout: float = 60.0) -> None:
        with self._done:
            self._done.wait_for(lambda: self.in_flight == 0, timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_live(
    sink: MqttSink,
    stream: Iterable[SimSample],
    injector: FaultInjector,
    *,
    topic: Callable[[str], str],
    start: int,
    speedup: float,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Send each sample when its interval closes on the simulated clock, faults included.

    Returns whether Ctrl-C cut the run short; even then the held (late,
    out-of-order) samples are sent, so the printed counts stay exact.
    """
    t0, interrupted = time.monotonic(), False
    try:
        for s in stream:
            wait = t0 + (s.ts + s.interval_s - start) / speedup - time.monotonic()
            if wait > 0:
                sleep(wait)
            for o in injector.feed(s):
                sink.send(topic(o.device_id), o.payload)
    except KeyboardInterrupt:
        interrupted = True
    for o in injector.finish():
        sink.send(topic(o.device_id), o.payload)
    sink.drain()
    return interrupted


# ---------------------------------------------------------------- backfill


OnBatch = Callable[[SimSample, int], None]
"""Called after each committed batch with its last sample and the samples written so far."""


def backfill(
    engine: Engine,
    stream: Iterable[SimSample],
    *,
    batch: int = 5000,
    on_batch: OnBatch | None = None,
) -> Outcome:
    """Write samples through the ingest pipeline, ``batch`` samples per transaction.

    One message per device and batch (``{"samples": [...]}``), exactly what a
    gateway would POST, so backfilled history is indistinguishable from live data.
    """
    total, count = Outcome(), 0
    pending: dict[str, list[SimSample]] = {}
    last: SimSample | None = None
    for last in stream:
        pending.setdefault(last.device_id, []).append(last)
        count += 1
        if count % batch == 0:
            total += pipeline.ingest(engine, _messages(pending))
            pending = {}
            if on_batch is not None:
                on_batch(last, count)
    if pending:
        total += pipeline.ingest(engine, _messages(pending))
    if on_batch is not None and last is not None:
        on_batch(last, count)
    return total


def _messages(pending: dict[str, list[SimSample]]) -> list[Message]:
    now = datetime.now(UTC)
    return [
        Message(http_topic(d), jsonx.dumps({"samples": [s.body() for s in items]}).encode(), now)
        for d, items in pending.items()
    ]


def progress_bar(
    fraction: float, count: int, *, started: float | None = None, done: bool = False
) -> None:
    """One redrawn line on stderr: bar, percent, samples written, rate."""
    width = 30
    filled = int(width * min(fraction, 1.0))
    elapsed = time.monotonic() - started if started is not None else 0.0
    rate = f"  {count / elapsed:,.0f}/s" if elapsed > 0 else ""
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}  {count:,} samples{rate}"
    )
    if done:
        sys.stderr.write("\n")
    sys.stderr.flush()


# ---------------------------------------------------------------- registered devices


def registered(
    conn: Connection, *, limit: int | None = None, ids: Sequence[str] | None = None
) -> list[SimDevice]:
    """The first ``limit`` registered devices (or exactly ``ids``), profiled from their contract."""
    query = select(devices_table.c.device_id, devices_table.c.contract_id).order_by(
        devices_table.c.device_id
    )
    if ids:
        query = query.where(devices_table.c.device_id.in_(list(ids)))
    rows = list(conn.execute(query))
    if ids:
        unknown = sorted(set(ids) - {r.device_id for r in rows})
        if unknown:
            raise Invalid(f"not registered: {', '.join(unknown)} (devices come with a contract)")
    rows = rows[:limit] if limit is not None else rows
    return [SimDevice(r.device_id, _profile(conn, r.contract_id)) for r in rows]


def _profile(conn: Connection, contract_id: str | None) -> DeviceProfile:
    """Time zone and rated capacity from the contract: shifts are local, output is per its unit."""
    if contract_id is None:
        return DeviceProfile()
    try:
        terms = contracts.latest_version(conn, contract_id).terms
    except NotFound:
        return DeviceProfile()
    return DeviceProfile(
        timezone=terms.timezone, rated_capacity_per_hour=float(terms.rated_capacity_per_hour)
    )


def all_device_ids(conn: Connection) -> set[str]:
    return set(conn.execute(select(devices_table.c.device_id)).scalars())


# ---------------------------------------------------------------- the command


@dataclass(frozen=True)
class Options:
    """``viu simulate`` arguments after validation."""

    devices: int | None = None
    device_ids: tuple[str, ...] = ()
    interval_s: int = 60
    duration_s: int = 3600
    start: datetime | None = None
    speedup: float = 1.0
    seed: str = "1"
    faults: Faults = Faults()
    backfill: bool = False
    span_from: str | None = None
    span_to: str | None = None
    batch: int = 5000
    progress: bool = True


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``2h``, ``7d`` → seconds of simulated time."""
    match = _DURATION.match(text)
    if match is None or float(match[1]) <= 0:
        raise Invalid(f"--duration {text!r}: expected e.g. 90s, 15m, 2h or 7d")
    return int(float(match[1]) * _UNITS[match[2]])


def interval_for(rate: float) -> int:
    """``--rate`` samples per device per simulated minute → the samples' interval_s."""
    if not rate > 0:
        raise Invalid("--rate must be above 0 (samples per device per minute)")
    interval = round(60 / rate)
    if not 1 <= interval <= 86_400:
        raise Invalid(f"--rate {rate}: interval_s {interval} is outside 1..86400")
    return interval


def _fraction(name: str, value: float) -> float:
    if not 0 <= value <= 1:
        raise Invalid(f"--{name.replace('_', '-')} must be a fraction between 0 and 1")
    return value


def _start(text: str | None) -> datetime | None:
    if text is None or text == "now":
        return None
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"--start {text!r}: expected ISO 8601 with an offset") from None
    if ts.tzinfo is None:
        raise Invalid("--start needs a UTC offset, e.g. 2026-10-01T00:00:00+00:00")
    return ts.astimezone(UTC)


def options_from(args: argparse.Namespace) -> Options:
    """Validate the parsed command line; ``Invalid`` names the offending option."""
    faults = Faults(
        **{
            name: _fraction(name, getattr(args, name))
            for name in ("duplicates", "out_of_order", "late", "malformed", "unknown_devices")
        },
        clock_skew_s=int(args.clock_skew),
    )
    if faults.clock_skew_s < 0:
        raise Invalid("--clock-skew is a number of seconds ≥ 0")
    if args.devices is not None and args.devices < 1:
        raise Invalid("--devices must be at least 1")
    if not args.speedup > 0:
        raise Invalid("--speedup must be above 0")
    if args.backfill and not (args.span_from and args.span_to):
        raise Invalid("--backfill needs --from and --to (e.g. --from 2026-05 --to 2026-10)")
    if not 1 <= args.batch <= 10_000:
        raise Invalid("--batch must be between 1 and 10000 samples")
    default_rate = 1 / 15 if args.backfill else 1.0
    return Options(
        devices=args.devices,
        device_ids=tuple(i.strip() for i in (args.device_ids or "").split(",") if i.strip()),
        interval_s=interval_for(args.rate if args.rate is not None else default_rate),
        duration_s=parse_duration(args.duration),
        start=_start(args.start),
        speedup=float(args.speedup),
        seed=str(args.seed),
        faults=faults,
        backfill=bool(args.backfill),
        span_from=args.span_from,
        span_to=args.span_to,
        batch=int(args.batch),
        progress=not args.quiet,
    )


def span_of(text_from: str, text_to: str) -> Callable[[SimDevice], tuple[datetime, datetime]]:
    """``--from``/``--to`` as months (inclusive, in each device's time zone) or instants."""

    def bound(text: str, tz: str, end: bool) -> datetime:
        try:
            period = Period.parse(text)
        except ValueError:
            stamp = _start(text)
            assert stamp is not None
            return stamp
        return period_bounds(period, tz)[1 if end else 0]

    def span(device: SimDevice) -> tuple[datetime, datetime]:
        return bound(text_from, device.timezone, False), bound(text_to, device.timezone, True)

    return span


def simulate(
    engine: Engine, settings: Settings, opts: Options, say: Callable[[str], None] = print
) -> int:
    """``viu simulate``: pick the devices, then run live over MQTT or backfill the database."""
    with engine.connect() as conn:
        chosen = registered(conn, limit=opts.devices, ids=opts.device_ids or None)
        avoid = all_device_ids(conn)
    if not chosen:
        raise NotFound(
            "no registered devices: create a contract first (POST /v1/contracts) or run `viu demo`"
        )
    if opts.backfill:
        return _backfill(engine, chosen, opts, say)
    return _live(settings, chosen, opts, avoid, say)


def _backfill(
    engine: Engine, chosen: list[SimDevice], opts: Options, say: Callable[[str], None]
) -> int:
    assert opts.span_from is not None and opts.span_to is not None
    span = span_of(opts.span_from, opts.span_to)
    spans = [span(d) for d in chosen]
    lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
    if hi <= lo:
        raise Invalid("--to must not be before --from")
    started = time.monotonic()
    first, width = lo.timestamp(), max((hi - lo).total_seconds(), 1.0)

    def bar(last: SimSample, count: int) -> None:
        progress_bar((last.ts + last.interval_s - first) / width, count, started=started)

    show = opts.progress and sys.stderr.isatty()
    outcome = backfill(
        engine,
        fleet(chosen, span, seed=opts.seed, interval_s=opts.interval_s),
        batch=opts.batch,
        on_batch=bar if show else None,
    )
    if show:
        progress_bar(1.0, outcome.received, started=started, done=True)
    elapsed = time.monotonic() - started
    say(
        f"backfilled {len(chosen)} device(s) from {jsonx.iso(lo)} to {jsonx.iso(hi)} "
        f"(one sample per {opts.interval_s} s) in {elapsed:.1f}s"
    )
    for name, value in outcome.counts().items():
        say(f"  {name:<16}{value:>10}")
    return 0


def _live(
    settings: Settings,
    chosen: list[SimDevice],
    opts: Options,
    avoid: set[str],
    say: Callable[[str], None],
) -> int:
    now = datetime.now(UTC)
    # Unless told otherwise, the run ends now: simulated time never runs ahead of the clock.
    start = opts.start or now - timedelta(seconds=opts.duration_s * (1 - 1 / opts.speedup))
    start = datetime.fromtimestamp(int(start.timestamp()) // opts.interval_s * opts.interval_s, UTC)
    end = start + timedelta(seconds=opts.duration_s)
    url = settings.mqtt_url or remembered_broker(settings.data_dir) or DEFAULT_BROKER
    sink = MqttSink(url, settings)
    sink.connect()
    injector = FaultInjector(opts.faults, opts.seed, avoid)
    prefix = settings.mqtt_topic_prefix
    try:
        interrupted = publish_live(
            sink,
            fleet(chosen, lambda _: (start, end), seed=opts.seed, interval_s=opts.interval_s),
            injector,
            topic=lambda d: f"{prefix}/{d}/telemetry",
            start=int(start.timestamp()),
            speedup=opts.speedup,
        )
    finally:
        sink.close()
    print_summary(chosen, start, end, opts, injector.sent, sink, say)
    if interrupted:
        say("interrupted: the counts above are what was sent before Ctrl-C")
        return 130
    return 0 if sink.in_flight == 0 and sink.refused == 0 else 1


def print_summary(
    chosen: Sequence[SimDevice],
    start: datetime,
    end: datetime,
    opts: Options,
    sent: Sent,
    sink: MqttSink,
    say: Callable[[str], None],
) -> None:
    """The counts a test (or a person) checks the ingester's counters against."""
    say(
        f"simulated {len(chosen)} device(s) from {jsonx.iso(start)} to {jsonx.iso(end)}, "
        f"one sample per {opts.interval_s} s, {opts.speedup:g}x real time"
    )
    for name, value in sent.counts().items():
        say(f"  {name:<16}{value:>10}")
    say(
        f"  published {sink.published}, acknowledged by the broker {sink.acknowledged}, "
        f"refused {sink.refused}, unacknowledged {sink.in_flight}"
    )
    expected = ", ".join(f"{k} +{v}" for k, v in sent.expected_ingest().items())
    say(f"expected ingest counters (new samples): {expected}")
