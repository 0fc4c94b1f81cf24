"""Settlement benchmark: settle one month for a whole fleet from 15-minute rollups.

Why it exists: the spec promises that settlement never scans raw samples, so its
cost depends on the number of devices and buckets, not on how often devices
report. This script checks the issue's targets on real PostgreSQL:

1. settle a month of 1-minute samples (1,000 devices, 100 contracts) through the
   real path (``runs.run_period``, statements stored) in at most 10 s;
2. compare, in the same run, with a raw-scan settlement that aggregates the same
   per-device quantities straight from ``samples``, and prove both give the same
   statements (equal bodies and equal input digests);
3. load a subset again at 10-second resolution and show the rollup path costs the
   same while the raw scan grows with the sample count.

It owns its database (default ``viu_bench_settlement``): dropped, recreated and
dropped again at the end unless ``--keep``. No other database name is accepted.

    python bench/settlement.py --devices 1000 --contracts 100 --period 2026-10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache, partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import backends as bk
import psycopg
from psycopg import sql
from sqlalchemy import Engine, text

from schemas.contract import ContractIn, ContractTerms
from schemas.db import samples as samples_table
from schemas.periods import Period, period_bounds
from schemas.timeseries import PARTITIONED, ensure_partitions, samples_backend
from services.config import load_settings
from services.db import libpq_url, make_engine, upgrade
from services.ingest.rollups import rebuild_rollups
from services.settlement import contracts, runs
from services.settlement.engine import inputs_digest, settle
from services.settlement.kpis import DeviceUsage
from services.settlement.statements import Computed
from services.settlement.usage import device_usage, load_usage

DB_NAME_RE = re.compile(r"^viu_bench_settlement[a-z0-9_]*$")
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"
TARGET_S = 10
ZONES = ("UTC", "Europe/Stockholm", "America/New_York", "Asia/Kathmandu")
CURRENCIES = ("EUR", "SEK", "USD", "JPY", "KWD")
PRICE_SCALE = {
    "EUR": Decimal(1),
    "SEK": Decimal(11),
    "USD": Decimal("1.1"),
    "JPY": Decimal(160),
    "KWD": Decimal("0.33"),
}
CAPACITIES = (600, 900, 1200)
DOWN_MULTIPLIERS = (0.3, 0.7, 1.0, 1.6, 2.5)
BASE_DOWN_RATE = 1 / 1500
"""Downtime episodes start with this probability per running minute (times the contract's
multiplier): with a mean episode of ~73 minutes, availability lands between ~0.93 and
~0.99, so some contracts earn bonuses and others pay penalties."""
GAP_RATE = 1 / 30000
"""Missing-data gaps (device offline, nothing sent), so missing_data policies matter."""
COPY_COLUMNS = tuple(c.name for c in samples_table.columns)
REF_TABLE = "bench_ref_samples"
REF_HYPER = "bench_ref_hypertable"
RAW_USAGE_SQL = text(
    """
    SELECT device_id,
           sum(interval_s)  AS reported_s,
           sum(uptime_min)  AS uptime_min,
           sum(quality_min) AS quality_min,
           sum(throughput)  AS throughput,
           coalesce(sum(interval_s / 60.0 - uptime_min)
                    FILTER (WHERE downtime_cause = 'unplanned'), 0) AS down_unplanned,
           coalesce(sum(interval_s / 60.0 - uptime_min)
                    FILTER (WHERE downtime_cause = 'planned'), 0)   AS down_planned,
           coalesce(sum(interval_s / 60.0 - uptime_min)
                    FILTER (WHERE downtime_cause = 'customer'), 0)  AS down_customer,
           coalesce(sum(interval_s / 60.0 - uptime_min)
                    FILTER (WHERE downtime_cause = 'external'), 0)  AS down_external,
           max(received_at) AS watermark
      FROM samples
     WHERE device_id = ANY(:devices) AND ts >= :start AND ts < :end
     GROUP BY device_id
    """
)
"""The baseline: the §3.1 sums straight from the raw rows, with the same per-row
expressions as the rollups so that both paths must agree to the last digit. It reads
the sample's own cause (no annotation lookup); the benchmark asserts there are no
annotations, so this is equivalent here and, if anything, flatters the baseline."""


def log(message: str) -> None:
    """Progress on stdout with a wall-clock stamp, flushed so ``nohup`` logs stay live."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the fleet: devices and contracts ------------------------------------------------


@dataclass(frozen=True)
class DeviceSpec:
    """One synthetic device: where its samples start and end, and how it behaves."""

    device_id: str
    seed: int
    start: datetime
    end: datetime
    capacity_per_hour: int
    down_rate: float
    scrap_prob: float


@dataclass(frozen=True)
class ContractSpec:
    contract_id: str
    body: ContractIn
    devices: tuple[DeviceSpec, ...]


def money(amount: Decimal | int | str, currency: str) -> str:
    """A price in ``currency`` as the decimal string the contract schema wants."""
    return format(Decimal(amount) * PRICE_SCALE[currency], "f")


def usage_terms(i: int, n: int, capacity: int, currency: str) -> dict[str, Any]:
    """Tiers sized to the fleet so that contracts land in different tiers."""
    basis = ("throughput", "utilised_capacity_hours", "uptime_hours")[i % 3]
    per_device = (capacity * 400, capacity * 650) if basis == "throughput" else (400, 650)
    prices = ("0.010", "0.008", "0.006") if basis == "throughput" else ("3.00", "2.50", "2.00")
    tiers = [
        {"up_to": n * per_device[0], "price": money(prices[0], currency)},
        {"up_to": n * per_device[1], "price": money(prices[1], currency)},
        {"up_to": None, "price": money(prices[2], currency)},
    ]
    usage: dict[str, Any] = {
        "basis": basis,
        "mode": "graduated" if i % 2 == 0 else "volume",
        "tiers": tiers,
    }
    if i % 7 == 3:  # a commitment above what the fleet produces: the floor binds
        usage["minimum_commitment"] = n * per_device[1] * 11 // 10
    return usage


def kpi_rules(i: int, n: int, capacity: int, currency: str) -> list[dict[str, Any]]:
    """Per-point penalties, credits and bonuses on several KPIs, varied by contract."""
    rules: list[dict[str, Any]] = [
        {
            "kpi": "availability",
            "target": 0.95,
            "deadband": 0.005,
            "penalty": {"per_point": money(800, currency)},
            **({"bonus": {"above": 0.98, "per_point": money(300, currency)}} if i % 2 == 0 else {}),
        },
        {
            "kpi": "quality_rate",
            "target": 0.99,
            "penalty": {"credits": [{"below": 0.99, "pct": 0.02}, {"below": 0.98, "pct": 0.05}]},
        },
    ]
    if i % 3 == 0:
        rules.append(
            {
                "kpi": "performance",
                "target": 0.95,
                "penalty": {"per_point": money(500, currency)},
                "bonus": {"above": 0.96, "per_point": money(200, currency)},
            }
        )
    if i % 5 == 2:
        rules.append(
            {
                "kpi": "oee",
                "target": 0.85,
                "bonus": {"above": 0.87, "per_point": money(400, currency)},
            }
        )
    if i % 6 == 5:
        target = n * capacity * 650
        rules.append(
            {
                "kpi": "throughput",
                "target": target,
                "penalty": {"per_point": money("0.01", currency)},
            }
        )
    return rules


def contract_body(i: int, devices: Sequence[DeviceSpec], period: Period) -> ContractIn:
    """Contract ``i``: zone, currency, policies and money terms all vary with ``i``."""
    tz = ZONES[i % len(ZONES)]
    currency = CURRENCIES[i % len(CURRENCIES)]
    capacity = devices[0].capacity_per_hour
    n = len(devices)
    terms: dict[str, Any] = {
        "fixed_fee": money(1500, currency),
        "usage": usage_terms(i, n, capacity, currency),
        "kpis": kpi_rules(i, n, capacity, currency),
    }
    if i % 2 == 1:
        terms["penalty_cap_pct"] = 0.10
    if i % 3 == 1:
        terms["bonus_cap_pct"] = 0.05
    if i % 4 == 3:
        terms["gain_share"] = {
            "kpi": "throughput",
            "baseline": n * capacity * 600,
            "value_per_unit": money("0.02", currency),
            "provider_share": 0.4,
            "symmetric": i % 8 == 7,
        }
    return ContractIn.model_validate(
        {
            "contract_id": f"bench-c{i + 1:03d}",
            "provider": "Bench Provider AB",
            "customer": f"Bench Customer {i + 1:03d}",
            "currency": currency,
            "timezone": tz,
            "devices": [d.device_id for d in devices],
            "effective_from": str(period),
            "unit": "units",
            "rated_capacity_per_hour": capacity,
            "missing_data": ("downtime", "excused", "uptime")[(i // 2) % 3],
            "excused_causes": ["planned", "customer", "external"] if i % 5 else ["planned"],
            "terms": terms,
        }
    )


def build_fleet(devices: int, contract_count: int, period: Period, seed: int) -> list[ContractSpec]:
    """``contract_count`` contracts sharing ``devices`` devices evenly, deterministically."""
    if devices % contract_count:
        raise SystemExit("--devices must be a multiple of --contracts")
    per_contract = devices // contract_count
    fleet = []
    for i in range(contract_count):
        start, end = period_bounds(period, ZONES[i % len(ZONES)])
        rng = random.Random(seed * 1_000_003 + i)
        multiplier = DOWN_MULTIPLIERS[(i // 2) % len(DOWN_MULTIPLIERS)]
        specs = tuple(
            DeviceSpec(
                device_id=f"dev-{i * per_contract + k + 1:04d}",
                seed=seed * 1_000_003 + 1000 + i * per_contract + k,
                start=start,
                end=end,
                capacity_per_hour=CAPACITIES[i % len(CAPACITIES)],
                down_rate=BASE_DOWN_RATE * multiplier * rng.uniform(0.7, 1.3),
                scrap_prob=0.1 + 0.5 * ((i * 7) % 10) / 10,
            )
            for k in range(per_contract)
        )
        fleet.append(ContractSpec(f"bench-c{i + 1:03d}", contract_body(i, specs, period), specs))
    return fleet


def ten_second_copy(spec: ContractSpec) -> ContractSpec:
    """The same contract over twins of its devices that report every 10 seconds."""
    devices = tuple(replace(d, device_id=f"dev10s-{d.device_id[4:]}") for d in spec.devices)
    body = spec.body.model_copy(
        update={
            "contract_id": f"{spec.contract_id}-10s",
            "devices": [d.device_id for d in devices],
        }
    )
    return ContractSpec(body.contract_id, body, devices)


# --- synthetic telemetry ---------------------------------------------------------------


@lru_cache(maxsize=8)
def value_table(step_s: int, size: int) -> tuple[Decimal, ...]:
    """Decimal values for per-minute hundredths, scaled to a ``step_s`` sample.

    Built once so the hot loop only indexes (constructing Decimals per row would
    dominate the load). Rounded down, so a 10-second sample never reports more
    uptime than its 10 seconds and quality never exceeds uptime.
    """
    if step_s == 60:
        return tuple(Decimal(n).scaleb(-2) for n in range(size))
    quantum = Decimal("0.000001")
    return tuple((Decimal(n) * step_s / 6000).quantize(quantum, ROUND_DOWN) for n in range(size))


@lru_cache(maxsize=16)
def slot_times(start: datetime, end: datetime, step_s: int) -> tuple[tuple[datetime, ...], ...]:
    """(ts, received_at) of every sample slot; shared by all devices of a zone."""
    step = timedelta(seconds=step_s)
    count = int((end - start).total_seconds()) // step_s
    ts = tuple(start + k * step for k in range(count))
    lag = step + timedelta(seconds=5)
    return ts, tuple(t + lag for t in ts)


def episode(rng: random.Random) -> tuple[int, str]:
    """Length (minutes) and cause of a downtime episode: mostly short and unplanned."""
    r = rng.random()
    minutes = 120 + int(rng.random() * 360) if r < 0.1 else 5 + int(rng.random() * 85)
    c = rng.random()
    cause = (
        "unplanned" if c < 0.5 else "planned" if c < 0.75 else "customer" if c < 0.9 else "external"
    )
    return minutes, cause


def minute_states(dev: DeviceSpec) -> Iterator[tuple[int, int, int, str] | None]:
    """Per minute: (uptime, quality, throughput) in hundredths and the cause, or None if
    the device sent nothing. Seeded per device, so every run and resolution agrees."""
    rng = random.Random(dev.seed)
    cap = dev.capacity_per_hour * 100 // 60
    down_left = gap_left = 0
    cause = "unplanned"
    for _ in range(int((dev.end - dev.start).total_seconds()) // 60):
        if gap_left:
            gap_left -= 1
            yield None
            continue
        if down_left:
            down_left -= 1
            yield 0, 0, 0, cause
            continue
        r = rng.random()
        if r < dev.down_rate:
            down_left, cause = episode(rng)
            up = int(rng.random() * 100)  # it stopped during this minute
        elif r < dev.down_rate + GAP_RATE:
            gap_left = int(rng.random() * 60)
            yield None
            continue
        else:
            up, cause = 100, "unplanned"
        scrap = 1 + int(rng.random() * 6) if rng.random() < dev.scrap_prob else 0
        perf = 88 + int(rng.random() * 13)
        yield up, max(0, up - scrap), cap * up * perf // 10000, cause


def device_rows(dev: DeviceSpec, step_s: int) -> Iterator[tuple[Any, ...]]:
    """The COPY rows of one device for the month; each minute splits into 60/step_s samples."""
    per_minute = 60 // step_s
    table = value_table(step_s, dev.capacity_per_hour * 100 // 60 + 1)
    times, received = slot_times(dev.start, dev.end, step_s)
    device_id = dev.device_id
    for minute, state in enumerate(minute_states(dev)):
        if state is None:
            continue
        up, quality, throughput, cause = state
        u, q, t = table[up], table[quality], table[throughput]
        first = minute * per_minute
        for slot in range(first, first + per_minute):
            yield device_id, times[slot], step_s, u, q, t, cause, slot, received[slot]


def generator_rate(dev: DeviceSpec, step_s: int) -> float:
    """Rows/s of the Python generator alone, to tell whether COPY or Python limits the load."""
    started = time.perf_counter()
    count = sum(1 for _ in device_rows(dev, step_s))
    return count / (time.perf_counter() - started)


def copy_samples(conn: psycopg.Connection[Any], devices: Sequence[DeviceSpec], step_s: int) -> int:
    """Binary COPY of the devices' samples in one transaction; returns the row count."""
    statement = sql.SQL("COPY samples ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
    )
    rows = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(list(bk.COPY_TYPES))
        for dev in devices:
            for row in device_rows(dev, step_s):
                copy.write_row(row)
                rows += 1
    conn.commit()
    return rows


def copy_reference(
    url: str, fleet: Sequence[ContractSpec], max_rows: int, repeats: int
) -> dict[str, Any]:
    """The backend's raw limit: binary COPY of the first ``max_rows`` 1-minute rows, generated
    into memory first, into a plain table with the samples primary key (and, on TimescaleDB,
    into a hypertable chunked like samples). Rows/s of each."""
    rows: list[tuple[Any, ...]] = []
    for dev in (d for spec in fleet for d in spec.devices):
        rows.extend(device_rows(dev, 60))
        if len(rows) >= max_rows:
            break
    del rows[max_rows:]
    out: dict[str, Any] = {"rows": float(len(rows))}
    with psycopg.connect(libpq_url(url)) as conn:
        bk.create_reference_table(conn, REF_TABLE)
        out["copy_rows_per_s"], out["copy_passes"] = bk.copy_rates(
            conn, REF_TABLE, COPY_COLUMNS, bk.COPY_TYPES, rows, repeats
        )
        if bk.create_reference_hypertable(conn, REF_HYPER, REF_TABLE) is not None:
            out["copy_hypertable_rows_per_s"], out["copy_hypertable_passes"] = bk.copy_rates(
                conn, REF_HYPER, COPY_COLUMNS, bk.COPY_TYPES, rows, repeats
            )
        for table in (REF_TABLE, REF_HYPER):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.commit()
    return out


def load_samples(url: str, fleet: Sequence[ContractSpec], step_s: int) -> tuple[int, float]:
    """Load every device of ``fleet``, one COPY (and commit) per contract."""
    started = time.perf_counter()
    total = 0
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("SET synchronous_commit = off")  # session only: fewer fsync waits
        for n, spec in enumerate(fleet, 1):
            total += copy_samples(conn, spec.devices, step_s)
            if n % max(1, len(fleet) // 10) == 0 or n == len(fleet):
                elapsed = time.perf_counter() - started
                rate = total / elapsed
                log(f"  loaded {n}/{len(fleet)} contracts: {total:,} rows, {rate:,.0f} rows/s")
    return total, time.perf_counter() - started


# --- database ------------------------------------------------------------------------------


def admin(server: str, statement: sql.Composed) -> None:
    """Run one statement on the maintenance database with autocommit (CREATE/DROP DATABASE)."""
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def recreate_database(server: str, name: str) -> str:
    """Drop and create the bench database; refuses any name the benchmark does not own."""
    if not DB_NAME_RE.match(name):
        raise SystemExit(
            f"refusing to touch database {name!r}: name must match {DB_NAME_RE.pattern}"
        )
    drop_database(server, name)
    admin(server, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{server}/{name}"


def drop_database(server: str, name: str) -> None:
    if not DB_NAME_RE.match(name):
        raise SystemExit(f"refusing to drop database {name!r}")
    admin(server, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def migrate(url: str, period: Period) -> Engine:
    """Schema via the product's migrations, plus the UTC-month partitions the period spans."""
    engine = make_engine(url, pool_size=2, application_name="viu-bench-settlement")
    upgrade(engine, load_settings(database_url=url))
    start, end = period_bounds(period, "UTC")
    day = timedelta(days=1)
    with engine.begin() as conn:  # every zone's month lies within a day of the UTC month
        if samples_backend(conn) == PARTITIONED:  # a hypertable makes its chunks itself
            ensure_partitions(conn, [start - day, start, end + day])
    return engine


def create_contracts(engine: Engine, fleet: Sequence[ContractSpec]) -> None:
    with engine.begin() as conn:
        for spec in fleet:
            contracts.create_contract(conn, spec.body, "bench")


def build_rollups(engine: Engine, fleet: Sequence[ContractSpec]) -> tuple[int, float]:
    """``rebuild_rollups`` per device, one transaction each, as a repair job would."""
    started = time.perf_counter()
    ids = []
    for spec in fleet:
        for dev in spec.devices:
            with engine.begin() as conn:
                rebuild_rollups(conn, dev.device_id, dev.start, dev.end)
            ids.append(dev.device_id)
    seconds = time.perf_counter() - started
    return count_rows(engine, "rollups", ids), seconds


def count_rows(engine: Engine, table: str, device_ids: list[str]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE device_id = ANY(:d)"), {"d": device_ids}
            ).scalar_one()
        )


def vacuum_analyze(engine: Engine) -> float:
    """VACUUM ANALYZE samples and rollups: fresh statistics and a visibility map."""
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE samples"))
        conn.execute(text("VACUUM ANALYZE rollups"))
    return time.perf_counter() - started


def samples_size_sql(conn: Any) -> str:
    """SQL for the bytes of samples: every partition, or every chunk of the hypertable
    (chunks are inheritance children, which ``pg_partition_tree`` does not list)."""
    if samples_backend(conn) == PARTITIONED:
        return "(SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('samples'))"
    return "hypertable_size('samples')"


def sizes(engine: Engine) -> str:
    """Database, samples (all partitions or chunks) and rollups sizes, human-readable."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT pg_size_pretty(pg_database_size(current_database())) AS db, "
                f"pg_size_pretty({samples_size_sql(conn)}) AS samples, "
                "pg_size_pretty(pg_total_relation_size('rollups')) AS rollups"
            )
        ).one()
    return f"database {row.db}, samples {row.samples}, rollups {row.rollups}"


def samples_bytes(engine: Engine) -> int:
    """On-disk bytes of samples (heap, TOAST, indexes of every partition or chunk)."""
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT {samples_size_sql(conn)}")).scalar_one())


def proc_field(path: str, name: str) -> str:
    """The value of the first ``name: value`` line of a /proc file ("" if absent)."""
    with open(path) as lines:
        for line in lines:
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    return ""


def machine(engine: Engine) -> str:
    """The facts a reader needs to compare this run with another machine's."""
    cpu = proc_field("/proc/cpuinfo", "model name") or platform.processor()
    mem_kb = int(proc_field("/proc/meminfo", "MemTotal").split()[0])
    with engine.connect() as conn:
        pg = conn.execute(text("SHOW server_version")).scalar_one()
        jit = conn.execute(text("SHOW jit")).scalar_one()
        buffers = conn.execute(text("SHOW shared_buffers")).scalar_one()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024**2:.1f} GiB RAM, PostgreSQL {pg} "
        f"(shared_buffers {buffers}, jit {jit}), Python {platform.python_version()}"
    )


def code_version() -> str:
    """The commit measured, and whether the working tree had uncommitted changes."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    dirty = f" + uncommitted changes in {len(changed)} tracked files" if changed else ""
    return f"commit {git('rev-parse', '--short', 'HEAD') or 'unknown'}{dirty}"


def load_average() -> str:
    """1/5/15-minute load: other engineers' tests share this machine."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


# --- settlement: the real path and the raw-scan baseline -----------------------------------


@dataclass(frozen=True)
class Timing:
    """Total and per-contract seconds of one pass over a list of contracts."""

    total: float
    per_contract: tuple[float, ...]
    outcomes: str = ""

    @property
    def p50(self) -> float:
        return statistics.median(self.per_contract)

    @property
    def worst(self) -> float:
        return max(self.per_contract)


def timing_text(t: Timing) -> str:
    ms = 1000
    return f"{t.total:.2f} s total; per contract p50 {t.p50 * ms:.0f} ms, max {t.worst * ms:.0f} ms"


def timed_each(ids: Sequence[str], work: Callable[[str], Any]) -> tuple[Timing, dict[str, Any]]:
    """Run ``work`` per contract, timing each call; returns the timing and the results."""
    results: dict[str, Any] = {}
    per = []
    started = time.perf_counter()
    for cid in ids:
        t0 = time.perf_counter()
        results[cid] = work(cid)
        per.append(time.perf_counter() - t0)
    return Timing(time.perf_counter() - started, tuple(per)), results


def settle_via_run_period(engine: Engine, period: Period, ids: list[str]) -> Timing:
    """The production path: ``run_period`` (lock, read rollups, settle, store) per contract."""
    marks = [time.perf_counter()]
    results = runs.run_period(
        engine, period, ids, on_progress=lambda done, total: marks.append(time.perf_counter())
    )
    errors = [r for r in results if r.error]
    if errors:
        raise SystemExit(f"run_period failed: {errors[:3]}")
    outcomes = Counter(str(r.outcome) for r in results)
    per = tuple(b - a for a, b in pairwise(marks))
    return Timing(
        marks[-1] - marks[0], per, ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    )


def compute_from_rollups(
    engine: Engine, period: Period, ids: list[str]
) -> tuple[Timing, dict[str, Any]]:
    """``runs.compute``: the same read and settle as run_period, without lock or store."""
    with engine.connect() as conn:
        return timed_each(ids, lambda cid: runs.compute(conn, cid, period))


def raw_usage(conn: Any, devices: list[str], start: datetime, end: datetime) -> list[DeviceUsage]:
    """§3.1 quantities from raw samples, converted exactly as ``usage.py`` converts rollups."""
    rows = {
        r.device_id: r
        for r in conn.execute(RAW_USAGE_SQL, {"devices": devices, "start": start, "end": end})
    }
    return [device_usage(d, rows.get(d)) for d in devices]


def terms_in_force(conn: Any, contract_id: str, period: Period) -> ContractTerms:
    version = contracts.version_in_force(conn, contract_id, period)
    if version is None:
        raise SystemExit(f"{contract_id} not in force in {period}")
    return version.terms


def raw_settle(conn: Any, contract_id: str, period: Period) -> tuple[dict[str, Any], str]:
    """The baseline statement: version in force, raw aggregation, the same pure engine."""
    terms = terms_in_force(conn, contract_id, period)
    start, end = period_bounds(period, terms.timezone)
    usage = raw_usage(conn, terms.devices, start, end)
    body = settle(terms, period, usage)
    return body.model_dump(mode="json"), inputs_digest(terms, period, usage)


def settle_from_raw(
    engine: Engine, period: Period, ids: list[str]
) -> tuple[Timing, dict[str, Any]]:
    with engine.connect() as conn:
        if conn.execute(text("SELECT count(*) FROM annotations")).scalar_one():
            raise SystemExit("the raw-scan baseline ignores annotations; there must be none")
        return timed_each(ids, lambda cid: raw_settle(conn, cid, period))


def stored_statements(engine: Engine, period: Period, ids: list[str]) -> dict[str, tuple[Any, str]]:
    """What ``run_period`` stored: (body, inputs digest) per contract."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT contract_id, body, inputs_digest FROM statements "
                "WHERE period = :p AND contract_id = ANY(:ids) AND seq = 0"
            ),
            {"p": str(period), "ids": ids},
        )
        return {r.contract_id: (r.body, r.inputs_digest) for r in rows}


def compare(
    expected: dict[str, tuple[Any, str]], raw: dict[str, tuple[dict[str, Any], str]]
) -> str:
    """Bodies (net, lines, KPIs, devices, warnings) and digests must match for every contract."""
    bodies = sum(1 for cid, (body, _) in raw.items() if expected[cid][0] == body)
    digests = sum(1 for cid, (_, digest) in raw.items() if expected[cid][1] == digest)
    nets = sum(1 for cid, (body, _) in raw.items() if expected[cid][0]["net"] == body["net"])
    if bodies != len(raw) or digests != len(raw):
        bad = next(cid for cid, (body, _) in raw.items() if expected[cid][0] != body)
        raise SystemExit(f"raw-scan and rollup statements differ (first: {bad})")
    n = len(raw)
    return f"{bodies}/{n} identical bodies, {digests}/{n} identical digests, {nets}/{n} equal nets"


def computed_as_expected(computed: dict[str, Computed]) -> dict[str, tuple[Any, str]]:
    return {cid: (c.body_json, c.digest) for cid, c in computed.items()}


# --- the experiments -----------------------------------------------------------------------


@dataclass
class Results:
    """Everything the final table prints, filled in as the run goes."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    run_totals: list[float] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    """Rates for the both-backends table (see ``settlement_figures``)."""

    def add(self, label: str, value: str) -> None:
        self.lines.append((label, value))
        log(f"{label}: {value}")


def full_fleet(
    args: argparse.Namespace, url: str, engine: Engine, fleet: list[ContractSpec], res: Results
) -> None:
    """Load the month at 1-minute resolution, build rollups, settle three times, compare."""
    period = args.period
    dev0 = fleet[0].devices[0]
    res.add("generator alone (1 device, 1-min)", f"{generator_rate(dev0, 60):,.0f} rows/s")
    ref = copy_reference(url, fleet, args.copy_ref_rows, args.copy_repeats)
    res.figures |= ref
    hyper = ref.get("copy_hypertable_rows_per_s")
    res.add(
        "ref: raw binary COPY from memory",
        f"{ref['rows']:,.0f} rows, median of {args.copy_repeats}: "
        f"{ref['copy_rows_per_s']:,.0f} rows/s into a plain table "
        f"(passes {bk.rates_text(ref['copy_passes'])})"
        + (
            f", {hyper:,.0f} rows/s into a hypertable "
            f"(passes {bk.rates_text(ref['copy_hypertable_passes'])})"
            if hyper
            else ""
        ),
    )
    rows, seconds = load_samples(url, fleet, 60)
    res.figures |= {"samples": rows, "load_rows_per_s": rows / seconds}
    res.add(
        "load 1-min samples (binary COPY)",
        f"{rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s",
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE samples"))
    rollup_rows, seconds = build_rollups(engine, fleet)
    res.figures["rollup_samples_per_s"] = rows / seconds
    devices = sum(len(s.devices) for s in fleet)
    res.add(
        "build rollups (rebuild_rollups per device)",
        f"{rollup_rows:,} rollup rows in {seconds:.1f} s = {rows / seconds:,.0f} samples/s, "
        f"{seconds / devices * 1000:.0f} ms/device",
    )
    res.add("VACUUM ANALYZE samples, rollups", f"{vacuum_analyze(engine):.1f} s")
    res.add("sizes", sizes(engine))
    ids = [s.contract_id for s in fleet]
    for run in (1, 2, 3):
        t = settle_via_run_period(engine, period, ids)
        res.run_totals.append(t.total)
        res.add(
            f"run_period #{run} ({len(ids)} contracts)",
            f"{timing_text(t)}; {t.outcomes}",
        )
    res.figures["run_period_median_s"] = statistics.median(res.run_totals)
    t, computed = compute_from_rollups(engine, period, ids)
    res.figures["compute_s"] = t.total
    res.add(
        "rollups: runs.compute, no store",
        timing_text(t),
    )
    raw_t, raw = settle_from_raw(engine, period, ids)
    res.figures["raw_scan_s"] = raw_t.total
    res.add(
        "raw scan of samples + engine.settle (baseline)",
        timing_text(raw_t),
    )
    res.add("raw scan / rollups (compute only)", f"{raw_t.total / t.total:.1f}x")
    res.add("raw scan vs stored statements", compare(stored_statements(engine, period, ids), raw))
    res.add("raw scan vs runs.compute", compare(computed_as_expected(computed), raw))


@dataclass(frozen=True)
class Passes:
    """Totals of repeated passes of one measurement, and the last pass's results."""

    totals: tuple[float, ...]
    results: dict[str, Any]

    @property
    def median(self) -> float:
        return statistics.median(self.totals)

    def text(self) -> str:
        return " ".join(f"{t:.3f}" for t in self.totals)


Work = Callable[[], tuple[Timing, dict[str, Any]]]


def interleaved(repeats: int, works: dict[str, Work]) -> dict[str, Passes]:
    """Run the measurements in turn (A B A B ...), ``repeats`` passes each.

    The machine is shared: alternating spreads any burst of other load over both
    sides instead of landing on one of them, and the median ignores a bad pass.
    """
    totals: dict[str, list[float]] = {label: [] for label in works}
    results: dict[str, dict[str, Any]] = {}
    for _ in range(repeats):
        for label, work in works.items():
            timing, results[label] = work()
            totals[label].append(timing.total)
    return {label: Passes(tuple(totals[label]), results[label]) for label in works}


def rollup_sql_only(
    engine: Engine, period: Period, ids: list[str]
) -> tuple[Timing, dict[str, Any]]:
    """Only ``usage.load_usage`` (the rollup query and its conversion), to split DB from Python."""
    with engine.connect() as conn:
        terms = {cid: terms_in_force(conn, cid, period) for cid in ids}
        return timed_each(ids, lambda cid: load_usage(conn, terms[cid], period))


def load_ten_second(
    args: argparse.Namespace, url: str, engine: Engine, specs: list[ContractSpec], res: Results
) -> None:
    """Load the subset's 10-second twins, build their rollups, and say what the full set costs."""
    create_contracts(engine, specs)
    bytes_before = samples_bytes(engine)
    res.add(
        "generator alone (1 device, 10-s)", f"{generator_rate(specs[0].devices[0], 10):,.0f} rows/s"
    )
    rows, load_s = load_samples(url, specs, 10)
    res.add(
        "load 10-s samples (binary COPY)",
        f"{rows:,} rows in {load_s:.1f} s = {rows / load_s:,.0f} rows/s",
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE samples"))
    bytes_per_row = (samples_bytes(engine) - bytes_before) / rows
    rollup_rows, build_s = build_rollups(engine, specs)
    res.add(
        "build rollups, 10-s subset",
        f"{rollup_rows:,} rollup rows in {build_s:.1f} s = {rows / build_s:,.0f} samples/s",
    )
    scale = args.devices / sum(len(s.devices) for s in specs)
    res.add(
        f"full {args.devices}-device 10-s set: NOT loaded",
        f"~{rows * scale / 1e6:,.0f} M rows, ~{rows * scale * bytes_per_row / 1024**3:,.0f} GiB "
        f"of samples ({bytes_per_row:.0f} B/row measured), ~{load_s * scale / 60:,.0f} min to load "
        f"+ ~{build_s * scale / 60:,.0f} min to build rollups at this run's rates",
    )
    res.add("VACUUM ANALYZE samples, rollups", f"{vacuum_analyze(engine):.1f} s")
    res.add("sizes", sizes(engine))


def resolution(
    args: argparse.Namespace, url: str, engine: Engine, fleet: list[ContractSpec], res: Results
) -> None:
    """Same contracts and timeline at 1-minute and 10-second resolution on a device subset."""
    k = max(1, args.resolution_subset // len(fleet[0].devices))
    sides = {"1-min": fleet[:k], "10-s": [ten_second_copy(s) for s in fleet[:k]]}
    load_ten_second(args, url, engine, sides["10-s"], res)
    ids = {label: [s.contract_id for s in specs] for label, specs in sides.items()}
    p = args.period
    sql_only = interleaved(
        args.repeats, {lb: partial(rollup_sql_only, engine, p, c) for lb, c in ids.items()}
    )
    rollup = interleaved(
        args.repeats, {lb: partial(compute_from_rollups, engine, p, c) for lb, c in ids.items()}
    )
    res.add("after rollup passes", load_average())
    raw = interleaved(
        args.raw_repeats, {lb: partial(settle_from_raw, engine, p, c) for lb, c in ids.items()}
    )
    res.add("after raw-scan passes", load_average())
    table = []
    for label, specs in sides.items():
        devices = [d.device_id for s in specs for d in s.devices]
        check = compare(computed_as_expected(rollup[label].results), raw[label].results)
        res.add(f"{label}: rollup SQL passes (s)", sql_only[label].text())
        res.add(f"{label}: rollup compute passes (s)", rollup[label].text())
        res.add(f"{label}: raw-scan passes (s)", raw[label].text())
        res.add(f"raw scan vs rollups at {label}", check)
        counts = (count_rows(engine, "samples", devices), count_rows(engine, "rollups", devices))
        table.append(
            (label, *counts, sql_only[label].median, rollup[label].median, raw[label].median)
        )
    res.add(
        f"resolution subset: {sum(len(s.devices) for s in fleet[:k])} devices / {k} contracts, "
        f"medians of {args.repeats} (rollups) and {args.raw_repeats} (raw) interleaved passes",
        resolution_table(table),
    )


def resolution_table(table: list[tuple[Any, ...]]) -> str:
    """Samples, rollup rows and seconds per resolution, and the 10-s/1-min ratios."""
    head = ("resolution", "samples", "rollup rows", "rollup SQL s", "rollups s", "raw scan s")
    rows = ["{:<10} {:>12} {:>12} {:>13} {:>10} {:>11}".format(*head)]
    for label, samples, rollups, sql_s, roll_s, raw_s in table:
        rows.append(
            f"{label:<10} {samples:>12,} {rollups:>12,} {sql_s:>13.3f} {roll_s:>10.3f} {raw_s:>11.3f}"
        )
    a, b = table
    ratios = [b[i] / a[i] for i in range(1, 6)]
    rows.append(
        "{:<10} {:>11.2f}x {:>11.2f}x {:>12.2f}x {:>9.2f}x {:>10.2f}x".format("10-s/1-min", *ratios)
    )
    return "\n" + "\n".join(rows)


def print_summary(args: argparse.Namespace, res: Results) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\n" + "=" * 100)
    print(
        f"SUMMARY  period {args.period}, {args.devices} devices, {args.contracts} contracts, "
        f"python {platform.python_version()}, peak RSS {peak:,.0f} MiB"
    )
    print("=" * 100)
    for label, value in res.lines:
        print(f"{label:<48} {value}")
    worst = max(res.run_totals)
    verdict = "PASS" if worst <= TARGET_S else "FAIL"
    label = f"target: settle all contracts in <= {TARGET_S} s"
    print(f"{label:<48} {verdict} (slowest of {len(res.run_totals)} runs: {worst:.2f} s)")
    print(f"{'peak RSS of the benchmark process':<48} {peak:,.0f} MiB")


def settlement_figures(data: dict[str, Any]) -> list[bk.Figure]:
    """One run's figures for the both-backends table: 1-minute samples handled per second,
    each against the raw binary COPY of that run (settling is a read, so its ratio says how
    many times faster than one COPY of the same samples a month gets settled)."""
    f = data["figures"]
    ref = f.get("copy_rows_per_s")
    n = f.get("samples", 0.0)

    def per_s(seconds: float | None) -> float | None:
        return n / seconds if seconds else None

    out = [
        bk.Figure(
            "load 1-min samples, generator + COPY into samples (rows/s)",
            f.get("load_rows_per_s"),
            ref,
        ),
        bk.Figure("rebuild_rollups (samples/s)", f.get("rollup_samples_per_s"), ref),
        bk.Figure(
            "run_period, median of 3 (samples settled/s)", per_s(f.get("run_period_median_s")), ref
        ),
        bk.Figure("runs.compute from rollups (samples settled/s)", per_s(f.get("compute_s")), ref),
        bk.Figure("raw-scan baseline (samples settled/s)", per_s(f.get("raw_scan_s")), ref),
        bk.Figure(
            "run_period, median of 3 (s)",
            None,
            None,
            f"{f['run_period_median_s']:.2f} s" if "run_period_median_s" in f else "-",
        ),
    ]
    if "copy_hypertable_rows_per_s" in f:
        out.append(
            bk.Figure(
                "ref: binary COPY into a hypertable (rows/s)", f["copy_hypertable_rows_per_s"], ref
            )
        )
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--contracts", type=int, default=100)
    p.add_argument("--period", type=Period.parse, default=Period.parse("2026-10"))
    p.add_argument(
        "--resolution-subset", type=int, default=100, help="devices loaded again at 10 s (0: skip)"
    )
    p.add_argument("--repeats", type=int, default=7, help="rollup passes, resolution test")
    p.add_argument("--raw-repeats", type=int, default=3, help="raw-scan passes, resolution test")
    p.add_argument("--seed", type=int, default=20261001)
    p.add_argument(
        "--copy-ref-rows", type=int, default=300_000, help="rows of the raw COPY reference"
    )
    bk.add_options(p, DEFAULT_SERVER)
    p.add_argument("--database", default="viu_bench_settlement")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.backends:
        argv = list(sys.argv[1:] if argv is None else argv)
        script = Path(__file__).resolve()
        return bk.run_backends(script, argv, args, settlement_figures, "settlement")
    log(f"viu settlement benchmark: {' '.join(sys.argv[1:])}")
    url = recreate_database(args.server, args.database)
    res = Results()
    engine = migrate(url, args.period)
    storage: dict[str, Any] = {}
    try:
        res.add("machine", machine(engine))
        res.add("code", code_version())
        res.add("storage", bk.storage_text(bk.storage_report(libpq_url(url))))
        res.add("at start", load_average())
        fleet = build_fleet(args.devices, args.contracts, args.period, args.seed)
        create_contracts(engine, fleet)
        full_fleet(args, url, engine, fleet, res)
        if args.resolution_subset:
            resolution(args, url, engine, fleet, res)
        storage = bk.storage_report(libpq_url(url))
        res.add("storage at end", bk.storage_text(storage))
        res.add("at end", load_average())
        print_summary(args, res)
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {"figures": res.figures, "lines": res.lines, "storage": storage},
                    indent=2,
                    default=str,
                )
            )
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(args.server, args.database)
            log(f"dropped database {args.database}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
