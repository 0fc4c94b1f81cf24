"""The fleet simulator: a seeded generator of valid, realistic samples; faults the ingester sees.

Generator tests are pure. The transport tests use the real PostgreSQL and
broker: a backfill goes through the ingest write path, and a live run with
injected faults must move the ingester's counters by exactly what the
simulator says it sent.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from sqlalchemy import Engine

from schemas.telemetry import Sample
from schemas.vocabulary import DOWNTIME_CAUSES as CAUSES
from services.cli import main
from services.config import Settings
from services.embedded import free_port
from services.ingest import jsonx, stats
from services.ingest.decode import Message, decode
from services.ingest.service import IngestService
from services.simulator import (
    DeviceProfile,
    FaultInjector,
    Faults,
    SimDevice,
    SimSample,
    fleet,
    generate,
    span_of,
)
from tests.ingest.conftest import register, rows
from tests.ingest.mqtt_helpers import wait_subscribed, wait_until

OCT = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
SHIFTS = SimDevice(
    "line-1",
    DeviceProfile(timezone="Europe/Stockholm", rated_capacity_per_hour=600, gaps_per_month=2),
)
AROUND_THE_CLOCK = SimDevice(
    "crusher-1",
    DeviceProfile(
        timezone="Europe/Stockholm",
        rated_capacity_per_hour=250,
        off_shift="idle",
        idle_load=0.5,
        breakdowns_per_week=3,
        customer_stops_per_week=2,
    ),
)


def _local(ts: int, tz: str = "Europe/Stockholm") -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(ts, ZoneInfo(tz))


# ---------------------------------------------------------------- the generator


def test_same_seed_gives_the_same_samples_whatever_the_range() -> None:
    start, end = OCT
    middle = datetime(2026, 10, 14, 13, 7, tzinfo=UTC)
    whole = list(generate(SHIFTS, start, end, seed=7, interval_s=900))
    parts = list(generate(SHIFTS, start, middle, seed=7, interval_s=900)) + list(
        generate(SHIFTS, middle, end, seed=7, interval_s=900)
    )
    assert whole == parts
    assert whole == list(generate(SHIFTS, start, end, seed=7, interval_s=900))
    assert whole != list(generate(SHIFTS, start, end, seed=8, interval_s=900))


@pytest.mark.parametrize("device", [SHIFTS, AROUND_THE_CLOCK], ids=["shifts", "24/7"])
@pytest.mark.parametrize("interval_s", [60, 900, 3600])
def test_every_generated_sample_is_valid_per_spec(device: SimDevice, interval_s: int) -> None:
    start, end = OCT if interval_s > 60 else (OCT[0], OCT[0] + timedelta(days=3))
    for s in generate(device, start, end, seed=1, interval_s=interval_s):
        sample = Sample.model_validate(s.body(skew_s=-45))
        assert sample.uptime_min * 60 <= sample.interval_s
        assert sample.quality_min <= sample.uptime_min
        assert sample.throughput >= 0
        assert s.downtime_cause is None or s.downtime_cause in CAUSES
        assert start.timestamp() <= s.ts < end.timestamp() and s.ts % interval_s == 0


def test_weekends_and_nights_are_planned_stops_and_shifts_run() -> None:
    samples = list(generate(SHIFTS, *OCT, seed=3, interval_s=900))
    weekend = [s for s in samples if _local(s.ts).weekday() >= 5]
    nights = [s for s in samples if _local(s.ts).hour < 6 or _local(s.ts).hour >= 22]
    for s in weekend + nights:
        assert s.uptime_min == 0 and s.downtime_cause == "planned" and s.throughput == 0
    shift = [s for s in samples if _local(s.ts).weekday() < 5 and 6 <= _local(s.ts).hour < 22]
    running = sum(1 for s in shift if s.uptime_min == 15)
    assert running / len(shift) > 0.85


def test_around_the_clock_runs_nights_at_lower_load_with_every_kind_of_stop() -> None:
    samples = list(generate(AROUND_THE_CLOCK, *OCT, seed=3, interval_s=900))
    full = [s for s in samples if s.uptime_min == 15]

    def rate(items: list[SimSample]) -> Decimal:
        return sum((s.throughput for s in items), Decimal(0)) / len(items)

    day = [s for s in full if _local(s.ts).weekday() < 5 and 8 <= _local(s.ts).hour < 20]
    night = [s for s in full if _local(s.ts).hour < 5]
    assert rate(night) < Decimal("0.6") * rate(day)
    causes = Counter(s.downtime_cause for s in samples if s.downtime_cause)
    assert {"unplanned", "planned", "customer"} <= set(causes)


def test_throughput_is_near_rated_capacity_with_noise() -> None:
    samples = list(generate(SHIFTS, *OCT, seed=5, interval_s=3600))
    ratios = [float(s.throughput) / 600 for s in samples if s.uptime_min == 60]
    mean = sum(ratios) / len(ratios)
    assert 0.88 < mean < 0.96  # performance 0.92 by default
    assert max(ratios) - min(ratios) > 0.05  # noisy, not a constant


def test_data_gaps_leave_intervals_unreported() -> None:
    gappy = SimDevice("gappy", DeviceProfile(gaps_per_month=4, gap_hours=12))
    samples = list(generate(gappy, *OCT, seed=2, interval_s=3600))
    assert 24 * 31 - len(samples) >= 12


def test_profile_changes_take_effect_from_their_day() -> None:
    worn = DeviceProfile(breakdowns_per_week=40, breakdown_hours=3)
    device = SimDevice("m", DeviceProfile(breakdowns_per_week=0), ((date(2026, 10, 16), worn),))
    samples = list(generate(device, *OCT, seed=1, interval_s=3600))
    unplanned = [s for s in samples if s.downtime_cause == "unplanned"]
    assert unplanned and all(_local(s.ts, "UTC").day >= 16 for s in unplanned)


# ---------------------------------------------------------------- fault injection (pure)


def _stream(n_devices: int = 3) -> Iterator[SimSample]:
    devices = [SimDevice(f"d{i}") for i in range(n_devices)]
    span = (OCT[0], OCT[0] + timedelta(hours=12))
    return fleet(devices, lambda _: span, seed=1, interval_s=300)


def test_fault_injector_sends_every_sample_once_and_counts_each_fault() -> None:
    faults = Faults(0.05, 0.05, 0.05, 0.03, 0.03, clock_skew_s=90)
    injector = FaultInjector(faults, seed=4, avoid={"ghost-01"})
    out = [o for s in _stream() for o in injector.feed(s)] + injector.finish()
    sent = injector.sent
    kinds = Counter(o.kind for o in out)
    assert kinds == {
        "sample": sent.samples,
        "duplicate": sent.duplicates,
        "malformed": sent.malformed,
        "unknown_device": sent.unknown_devices,
    }
    assert sent.samples == 3 * 144
    assert min(sent.duplicates, sent.late, sent.out_of_order, sent.malformed) > 0
    assert sent.unknown_devices > 0 and sent.clock_skewed > 0
    originals = [o for o in out if o.kind == "sample"]
    assert len({(o.device_id, o.payload) for o in originals}) == sent.samples
    for dup in (o for o in out if o.kind == "duplicate"):
        assert out.index(dup) > out.index(next(o for o in originals if o.payload == dup.payload))
    assert all(o.device_id != "ghost-01" for o in out)


def test_every_malformed_payload_is_rejected_by_the_decoder() -> None:
    injector = FaultInjector(Faults(malformed=1.0), seed=1)
    bad = [o for s in _stream(1) for o in injector.feed(s) if o.kind == "malformed"]
    for o in bad:
        decoded = decode(Message(f"viu/{o.device_id}/telemetry", o.payload, datetime.now(UTC)))
        assert decoded.samples == [] and decoded.received == 1 and len(decoded.rejects) == 1


def test_out_of_order_and_late_samples_arrive_after_later_ones() -> None:
    injector = FaultInjector(Faults(out_of_order=0.1, late=0.1), seed=9)
    out = [o for s in _stream(1) for o in injector.feed(s)] + injector.finish()
    seqs = [Sample.model_validate(jsonx.loads(o.payload)).seq for o in out]
    inversions = sum(1 for a, b in pairwise(seqs) if a is not None and b is not None and b < a)
    assert sorted(seqs) == sorted(set(seqs))  # each once
    assert inversions >= injector.sent.out_of_order
    assert injector.sent.late > 0


# ---------------------------------------------------------------- the command, for real


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "VIU_DATABASE_URL": str(settings.database_url),
        "VIU_MQTT_URL": str(settings.mqtt_url),
        "VIU_DATA_DIR": str(settings.data_dir),
        "VIU_MQTT_TOPIC_PREFIX": f"sim{uuid.uuid4().hex[:8]}",
        "VIU_LOG_LEVEL": "WARNING",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VIU_BOOTSTRAP_TOKEN", raising=False)
    return values


def _counts(text: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^\s+(\w+)\s+(\d+)$", text, re.M)}


def test_backfill_writes_exactly_the_generated_samples(
    db: Engine, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    register(db, "bf-1", "bf-2", "bf-3")
    args = ["simulate", "--backfill", "--from", "2026-09", "--to", "2026-10", "--rate", "0.05"]
    args += ["--devices", "2", "--seed", "42", "--batch", "1000"]
    with db.connect() as conn:
        before = stats.totals(conn)
    assert main(args) == 0
    devices = [SimDevice("bf-1"), SimDevice("bf-2")]  # the first two; UTC without a contract
    expected = sum(
        1 for _ in fleet(devices, span_of("2026-09", "2026-10"), seed="42", interval_s=1200)
    )
    with db.connect() as conn:
        after = stats.totals(conn)
    assert after["stored"] - before["stored"] == expected
    assert _counts(capsys.readouterr().out)["stored"] == expected
    assert main(args) == 0  # again: every sample is a duplicate, nothing changes
    with db.connect() as conn:
        again = stats.totals(conn)
    assert again["duplicates"] - after["duplicates"] == expected
    assert again["stored"] == after["stored"]


@pytest.fixture
def ingester(settings: Settings, db: Engine, env: dict[str, str]) -> Iterator[IngestService]:
    own = settings.model_copy(
        update={
            "mqtt_client_id": f"sim-{uuid.uuid4().hex[:8]}",
            "mqtt_topic_prefix": env["VIU_MQTT_TOPIC_PREFIX"],
            "ingest_flush_ms": 50,
        }
    )
    svc = IngestService(own, db, str(settings.mqtt_url))
    svc.start()
    wait_until(svc.is_connected, 10, "the broker connection")
    yield svc
    svc.stop()


def _quiet_totals(engine: Engine) -> dict[str, int]:
    """The counters once they stop moving (a second subscription probe may still be in flight)."""
    previous: dict[str, int] = {}
    while True:
        with engine.connect() as conn:
            current = stats.totals(conn)
        if current == previous:
            return current
        previous = current
        time.sleep(0.5)


def _assert_counted(db: Engine, before: dict[str, int], sent: dict[str, int]) -> None:
    """The ingester's counters moved by exactly what the simulator says it sent."""
    total = sent["samples"] + sent["duplicates"] + sent["malformed"] + sent["unknown_devices"]

    def delta() -> dict[str, int]:
        with db.connect() as conn:
            now = stats.totals(conn)
        return {k: now[k] - before[k] for k in now}

    wait_until(lambda: delta()["received"] >= total, 30, f"{total} samples ingested")
    assert delta() == {
        "received": total,
        "stored": sent["samples"],
        "duplicates": sent["duplicates"],
        "corrections": 0,
        "dead_lettered": sent["malformed"] + sent["unknown_devices"],
    }


def test_fault_injection_is_detected_exactly_by_the_ingesters_counters(
    ingester: IngestService,
    db: Engine,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    register(db, "probe", "sim-a", "sim-b", "sim-c")
    wait_subscribed(db, env["VIU_MQTT_URL"], env["VIU_MQTT_TOPIC_PREFIX"])
    before = _quiet_totals(db)
    args = ["simulate", "--device-ids", "sim-a,sim-b,sim-c", "--rate", "1", "--duration", "3h"]
    args += ["--speedup", "1000000", "--seed", "11", "--duplicates", "0.03"]
    args += ["--out-of-order", "0.03", "--late", "0.03", "--malformed", "0.02"]
    args += ["--unknown-devices", "0.02", "--clock-skew", "120"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    sent = _counts(printed)
    assert sent["samples"] == 3 * 180
    assert min(sent["duplicates"], sent["malformed"], sent["unknown_devices"], sent["late"]) > 0
    assert "unacknowledged 0" in printed and "refused 0" in printed
    _assert_counted(db, before, sent)


def test_no_registered_devices_is_a_clear_error(
    db: Engine, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--duration", "5m"]) == 1
    assert "no registered devices" in capsys.readouterr().err


def test_unreachable_broker_is_a_clear_error(
    db: Engine,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    register(db, "lonely")
    monkeypatch.setenv("VIU_MQTT_URL", f"mqtt://127.0.0.1:{free_port()}")
    assert main(["simulate", "--duration", "5m", "--speedup", "1000"]) == 1
    assert "MQTT broker unreachable" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--rate", "0"], "--rate"),
        (["--duplicates", "1.5"], "--duplicates"),
        (["--duration", "soon"], "--duration"),
        (["--backfill"], "--from and --to"),
        (["--start", "2026-10-01T00:00:00"], "--start"),
    ],
)
def test_bad_arguments_are_refused_naming_the_option(
    env: dict[str, str], args: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", *args]) == 1
    assert complaint in capsys.readouterr().err


def test_sparkplug_format_births_data_with_seq_and_deaths_on_stop(
    settings: Settings,
    db: Engine,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--format sparkplug``: one edge node; the ingester's counters match what was sent."""
    group = f"sim{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("VIU_SPARKPLUG_GROUP", group)
    own = settings.model_copy(
        update={
            "mqtt_client_id": f"sim-{uuid.uuid4().hex[:8]}",
            "mqtt_topic_prefix": env["VIU_MQTT_TOPIC_PREFIX"],
            "ingest_flush_ms": 50,
            "sparkplug_group": group,
        }
    )
    svc = IngestService(own, db, str(settings.mqtt_url))
    svc.start()
    try:
        wait_until(svc.is_connected, 10, "the broker connection")
        register(db, "probe", "spb-a", "spb-b")
        wait_subscribed(db, env["VIU_MQTT_URL"], env["VIU_MQTT_TOPIC_PREFIX"])
        before = _quiet_totals(db)
        args = ["simulate", "--device-ids", "spb-a,spb-b", "--rate", "1", "--duration", "2h"]
        args += ["--speedup", "1000000", "--seed", "5", "--format", "sparkplug"]
        args += ["--duplicates", "0.03", "--malformed", "0.03", "--unknown-devices", "0.02"]
        assert main(args) == 0
        sent = _counts(capsys.readouterr().out)
        assert min(sent["duplicates"], sent["malformed"], sent["unknown_devices"]) > 0
        _assert_counted(db, before, sent)
        wait_until(
            lambda: bool(rows(db, "SELECT 1 FROM sparkplug_events WHERE kind = 'NDEATH'")),
            10,
            "the NDEATH on stop",
        )
        kinds = rows(
            db,
            "SELECT device_id, kind FROM sparkplug_events WHERE group_id = :g "
            "AND device_id IN ('spb-a', 'spb-b') ORDER BY id",
            g=group,
        )
        assert [(r["device_id"], r["kind"]) for r in kinds if r["device_id"] == "spb-a"] == [
            ("spb-a", "DBIRTH"),
            ("spb-a", "DDEATH"),
        ]
        assert not rows(db, "SELECT 1 FROM sparkplug_events WHERE kind = 'REBIRTH_REQUEST'")
    finally:
        svc.stop()
