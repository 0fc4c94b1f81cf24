"""`viu simulate`: registered devices, options, and the live or backfill run."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, select

from schemas.db import devices as devices_table
from schemas.periods import Period, period_bounds
from services.config import Settings
from services.embedded import remembered_broker
from services.errors import Invalid, NotFound
from services.ingest import jsonx
from services.settlement import contracts
from services.simulator.faults import FaultInjector, Faults, Sent
from services.simulator.generator import DeviceProfile, SimDevice, SimSample, fleet
from services.simulator.sparkplug import SparkplugSink
from services.simulator.transport import (
    MqttSink,
    backfill,
    progress_bar,
    publish_live,
)

SIM_EDGE_NODE = "viu-sim"  # the simulator's Sparkplug B edge node id

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
    faults: Faults = field(default_factory=Faults)
    backfill: bool = False
    span_from: str | None = None
    span_to: str | None = None
    batch: int = 5000
    progress: bool = True
    format: str = "json"  # or "sparkplug": one Sparkplug B edge node (SIM_EDGE_NODE)


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


def _start(text: str | None, option: str = "--start") -> datetime | None:
    if text is None or text == "now":
        return None
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{option} {text!r}: expected YYYY-MM or ISO 8601 with an offset") from None
    if ts.tzinfo is None:
        raise Invalid(f"{option} needs a UTC offset, e.g. 2026-10-01T00:00:00+00:00")
    return ts.astimezone(UTC)


def _check_span(text: str | None, option: str) -> None:
    """A month or an instant; checked before anything connects to the database."""
    if text is None:
        return
    try:
        Period.parse(text)
    except ValueError:
        _start(text, option)


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
    if getattr(args, "format", "json") == "sparkplug" and args.backfill:
        raise Invalid("--format sparkplug is for live runs (a backfill writes to the database)")
    if args.backfill and not (args.span_from and args.span_to):
        raise Invalid("--backfill needs --from and --to (e.g. --from 2026-05 --to 2026-10)")
    if not 1 <= args.batch <= 10_000:
        raise Invalid("--batch must be between 1 and 10000 samples")
    _check_span(args.span_from, "--from")
    _check_span(args.span_to, "--to")
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
        format=getattr(args, "format", "json"),
    )


def span_of(text_from: str, text_to: str) -> Callable[[SimDevice], tuple[datetime, datetime]]:
    """``--from``/``--to`` as months (inclusive, in each device's time zone) or instants."""

    def bound(text: str, tz: str, end: bool) -> datetime:
        try:
            period = Period.parse(text)
        except ValueError:
            stamp = _start(text, "--from/--to")
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
    url = (
        settings.mqtt_url
        or remembered_broker(settings.data_dir)
        or f"mqtt://127.0.0.1:{settings.embedded_mqtt_port}"
    )
    sink: MqttSink | SparkplugSink
    if opts.format == "sparkplug":
        group = settings.sparkplug_group if settings.sparkplug_group not in ("", "+") else "viu"
        sink = SparkplugSink(url, settings, group, SIM_EDGE_NODE)
        mqtt = sink.mqtt
        topic: Callable[[str], str] = lambda d: d  # noqa: E731 (the sink names the topic)
    else:
        sink = mqtt = MqttSink(url, settings)
        prefix = settings.mqtt_topic_prefix
        topic = lambda d: f"{prefix}/{d}/telemetry"  # noqa: E731
    sink.connect()
    injector = FaultInjector(opts.faults, opts.seed, avoid)
    try:
        interrupted = publish_live(
            sink,
            fleet(chosen, lambda _: (start, end), seed=opts.seed, interval_s=opts.interval_s),
            injector,
            topic=topic,
            start=int(start.timestamp()),
            speedup=opts.speedup,
        )
    finally:
        sink.close()
    print_summary(chosen, start, end, opts, injector.sent, mqtt, say)
    if interrupted:
        say("interrupted: the counts above are what was sent before Ctrl-C")
        return 130
    return 0 if mqtt.in_flight == 0 and mqtt.refused == 0 else 1


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
