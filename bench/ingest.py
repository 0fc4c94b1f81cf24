"""Ingest benchmark: MQTT → ``viu ingest`` → PostgreSQL, exactly once, on this machine.

What it measures (the issue's targets in brackets), all in one run:

1. ``single``: sustained single-sample messages/s [≥ 20,000/s];
2. ``batch``: samples/s with 100-sample batch messages [≥ 100,000/s];
3. ``latency``: p50/p99 publish-to-commit latency of single-sample messages
   published at a steady 10,000 messages/s [p99 ≤ 100 ms];
4. peak RSS of every ingester process (``VmHWM``) [≤ 300 MB];
5. lost and duplicated samples [0 and 0], checked for every phase against the
   publisher's PUBACK count, the ``samples`` table, the rollups and the
   persisted ingest counters;
6. two references on the same rows: a naive ingester (one INSERT and commit
   per message, MQTT with acks after commit) and the raw limit (binary COPY of
   the rows from memory), plus COPY into staging + ``INSERT … ON CONFLICT``.

How: the benchmark starts its OWN Mosquitto (``services.embedded.start_mosquitto``:
the deploy configuration's queue limits, a free port), because the machine's
broker keeps only 1,000 queued messages per client and drops the rest. For the
throughput phases it creates the ingesters' persistent sessions first, then
pre-loads the broker's queue with several publisher processes that count
PUBACKs (a lean MQTT 3.1.1 publisher written here: paho tops out near 6,000
QoS 1 messages/s, ``mosquitto_pub -l`` drops unsent QoS 1 messages), and only
then starts the real ``viu ingest`` process(es) and times the drain by polling
the persisted counters. So the publisher is not what is measured. For the
latency phase a paced publisher writes its send time (µs since the epoch) into
each sample's ``seq``; an observer polls ``pg_current_snapshot()`` every few
milliseconds, and a row's commit time is the first snapshot in which its
inserting transaction (``xmin``) is no longer in progress — no product hook.

It owns its database (default ``viu_bench_ingest``): dropped, recreated and
dropped again at the end unless ``--keep``. No other database name is accepted.

    python bench/ingest.py --workers 2   # the issue's run (~4 min)
    python bench/ingest.py --messages 20000 --batch-messages 200 \\
        --latency-seconds 5 --naive-messages 2000   # a quick check
"""

from __future__ import annotations

import argparse
import bisect
import json
import multiprocessing as mp
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import paho.mqtt.client as paho  # noqa: E402
import psycopg  # noqa: E402
from backends import (  # noqa: E402
    COPY_TYPES,
    Figure,
    add_options,
    copy_rates,
    create_reference_hypertable,
    create_reference_table,
    rates_text,
    run_backends,
    storage_report,
    storage_text,
)
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from psycopg import sql  # noqa: E402

from schemas.db import samples as samples_table  # noqa: E402
from services.ingest.mqtt import varint  # noqa: E402

DB_NAME_RE = re.compile(r"^viu_bench_ingest[a-z0-9_]*$")
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"
SESSION_EXPIRY_S = 3600
INTERVAL_S = 60
# Each phase has its own month, so its rows can be counted by ts range.
PHASE_MONTH = {"single": 1, "batch": 2, "latency": 3, "naive": 4}
TARGETS = {
    "single_msgs_per_s": 20_000,
    "batch_samples_per_s": 100_000,
    "latency_p99_ms": 100,
    "rss_mb": 300,
}
REF_TABLE = "bench_ref_samples"
REF_HYPER = "bench_ref_hypertable"
SAMPLE_COLUMNS = tuple(c.name for c in samples_table.columns)


def say(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------- the data


def phase_base(phase: str) -> int:
    """Epoch seconds of the first sample ts of a phase (its own month of 2026)."""
    return int(datetime(2026, PHASE_MONTH[phase], 1, tzinfo=UTC).timestamp())


def device_ids(n: int) -> list[str]:
    return [f"bench-d{i:05d}" for i in range(n)]


def values(k: int) -> tuple[str, str, str, str | None]:
    """Deterministic 1-minute sample values: (uptime_min, quality_min, throughput, cause)."""
    r = k % 20
    if r == 0:
        return "0", "0", "0", "planned"
    if r == 1:
        return "0.5", "0.4", "7.25", None
    if r == 2:
        return "0.75", "0.75", "10.5", "customer"
    return "1", ("0.95" if r % 2 else "1"), f"14.{k % 10}", None


def sample_json(ts: int, k: int, seq: int) -> str:
    up, q, t, cause = values(k)
    extra = f',"downtime_cause":"{cause}"' if cause else ""
    return (
        f'{{"ts":{ts},"interval_s":{INTERVAL_S},"uptime_min":{up},'
        f'"quality_min":{q},"throughput":{t}{extra},"seq":{seq}}}'
    )


@dataclass(frozen=True)
class Workload:
    """Message ``i`` of a phase, reproducible in any process from this description."""

    phase: str
    prefix: str
    devices: int
    messages: int
    per_message: int = 1  # samples per message (1 = a plain sample object, else a batch)

    @property
    def samples(self) -> int:
        return self.messages * self.per_message

    def device(self, i: int) -> str:
        return f"bench-d{i % self.devices:05d}"

    def topic(self, i: int) -> bytes:
        return f"{self.prefix}/{self.device(i)}/telemetry".encode()

    def first_ts(self, i: int) -> int:
        """Message i of device (i % devices) is that device's (i // devices)-th message."""
        return phase_base(self.phase) + (i // self.devices) * self.per_message * INTERVAL_S

    def payload(self, i: int, seq: int | None = None) -> bytes:
        ts = self.first_ts(i)
        if self.per_message == 1:
            return sample_json(ts, i, i if seq is None else seq).encode()
        items = ",".join(
            sample_json(ts + j * INTERVAL_S, i * self.per_message + j, i * self.per_message + j)
            for j in range(self.per_message)
        )
        return f'{{"samples":[{items}]}}'.encode()

    def rows(self, received_at: datetime) -> Iterator[tuple[Any, ...]]:
        """The rows the payloads stand for (for the COPY references)."""
        assert self.per_message == 1
        for i in range(self.messages):
            up, q, t, cause = values(i)
            yield (
                self.device(i),
                datetime.fromtimestamp(self.first_ts(i), UTC),
                INTERVAL_S,
                Decimal(up),
                Decimal(q),
                Decimal(t),
                cause or "unplanned",
                i,
                received_at,
            )

    @property
    def ts_range(self) -> tuple[datetime, datetime]:
        lo = phase_base(self.phase)
        span = (self.messages // self.devices + 1) * self.per_message * INTERVAL_S
        return datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(lo + span, UTC)


# --------------------------------------------------------------------------- a lean publisher


def _mqtt_str(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


class RawPublisher:
    """MQTT 3.1.1 QoS 1 publisher: pipelined PUBLISH packets, every PUBACK counted.

    One ``sendall`` per chunk and a reader thread that matches PUBACK packet ids
    against the ids in flight; a bounded window keeps ids unique.
    """

    def __init__(self, url: str, client_id: str, window: int = 5000) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1883))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = _mqtt_str(b"MQTT") + bytes([4, 0x02]) + (0).to_bytes(2, "big")
        body += _mqtt_str(client_id.encode())
        self.sock.sendall(b"\x10" + varint(len(body)) + body)
        connack = self._recv_exact(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(f"broker refused the publisher: {connack!r}")
        assert window < 60_000
        self.window = window
        self.sent = 0
        self.acked = 0
        self.unexpected = 0
        self._pending = bytearray(65536)
        self._next = 0
        self._cond = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return buf

    def publish(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        with self._cond:
            while self.sent - self.acked + len(items) > self.window:
                self._cond.wait(1.0)
                if self._closed:
                    raise ConnectionError("publisher connection lost")
        buf = bytearray()
        pending = self._pending
        for topic, payload in items:
            self._next = self._next % 65535 + 1
            pid = self._next
            if pending[pid]:
                raise RuntimeError("packet id still in flight")
            pending[pid] = 1
            rest = _mqtt_str(topic) + pid.to_bytes(2, "big")
            buf += b"\x32" + varint(len(rest) + len(payload)) + rest + payload
        with self._cond:
            self.sent += len(items)
        self.sock.sendall(buf)

    def _read(self) -> None:
        buf = b""
        pending = self._pending
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
                acked = 0
                pos = 0
                while len(buf) - pos >= 4:
                    if buf[pos] != 0x40 or buf[pos + 1] != 2:
                        self.unexpected += 1
                        pos += 2 + buf[pos + 1]  # other packets here are tiny
                        continue
                    pid = (buf[pos + 2] << 8) | buf[pos + 3]
                    if pending[pid]:
                        pending[pid] = 0
                        acked += 1
                    else:
                        self.unexpected += 1
                    pos += 4
                buf = buf[pos:]
                if acked:
                    with self._cond:
                        self.acked += acked
                        self._cond.notify_all()
        except OSError:
            pass
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def close(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.acked < self.sent and time.monotonic() < deadline and not self._closed:
                self._cond.wait(0.5)
        try:
            self.sock.sendall(b"\xe0\x00")
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def preload_worker(url: str, work: Workload, first: int, last: int, out: Any) -> None:
    """Publish messages [first, last) as fast as the broker acknowledges them."""
    pub = RawPublisher(url, f"bench-pub-{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    chunk = 200 if work.per_message == 1 else 20
    for lo in range(first, last, chunk):
        hi = min(lo + chunk, last)
        pub.publish([(work.topic(i), work.payload(i)) for i in range(lo, hi)])
    pub.close()
    out.put(
        {
            "sent": pub.sent,
            "acked": pub.acked,
            "unexpected": pub.unexpected,
            "seconds": time.perf_counter() - started,
        }
    )


def paced_worker(
    url: str, work: Workload, rate: float, start_at: float, tick: float, out: Any
) -> None:
    """Publish at ``rate`` messages/s from wall-clock ``start_at``; seq = send time in µs.

    Every ``tick`` seconds it sends what is due in one write (at 10,000/s and
    5 ms, 50 messages): the broker and this process then handle a few hundred
    writes per second instead of ten thousand.
    """
    pub = RawPublisher(url, f"bench-pace-{uuid.uuid4().hex[:8]}", window=20_000)
    while time.time() < start_at:
        time.sleep(0.001)
    i = 0
    worst_lag = 0.0
    first_send = last_send = 0.0
    while i < work.messages:
        now = time.time()
        due = min(work.messages, int((now - start_at) * rate) + 1)
        if due <= i:
            time.sleep(max(0.0, start_at + i / rate - now))
            continue
        if due < work.messages and now < start_at + i / rate + tick:
            time.sleep(start_at + i / rate + tick - now)  # gather a tick's worth
            continue
        worst_lag = max(worst_lag, now - (start_at + i / rate))
        us = int(now * 1_000_000)
        pub.publish([(work.topic(j), work.payload(j, seq=us)) for j in range(i, due)])
        first_send = first_send or now
        last_send = now
        i = due
    pub.close()
    out.put(
        {
            "sent": pub.sent,
            "acked": pub.acked,
            "unexpected": pub.unexpected,
            "rate": (work.messages - 1) / max(last_send - first_send, 1e-9),
            "worst_lag_ms": worst_lag * 1000,
        }
    )


def preload(url: str, work: Workload, publishers: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    bounds = [work.messages * p // publishers for p in range(publishers + 1)]
    procs = [
        ctx.Process(target=preload_worker, args=(url, work, bounds[p], bounds[p + 1], out))
        for p in range(publishers)
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    seconds = time.perf_counter() - started
    acked = sum(r["acked"] for r in results)
    return {
        "acked": acked,
        "sent": sum(r["sent"] for r in results),
        "unexpected": sum(r["unexpected"] for r in results),
        "seconds": seconds,
        "rate": acked / seconds,
    }


# --------------------------------------------------------------------------- broker sessions


def create_session(url: str, client_id: str, topic: str) -> None:
    """Connect once as the ingester would (v5, clean_start=False), subscribe, leave.

    The broker then queues everything published to ``topic`` for this session.
    """
    parts = urlsplit(url)
    done = threading.Event()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    c.on_subscribe = lambda *a: done.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    c.connect(
        parts.hostname or "127.0.0.1",
        parts.port or 1883,
        clean_start=False,
        properties=props,
    )
    c.loop_start()
    c.subscribe(topic, qos=1)
    if not done.wait(10):
        raise RuntimeError(f"could not subscribe {client_id} to {topic}")
    c.disconnect()
    c.loop_stop()


def subscription(prefix: str, group: str) -> str:
    topic = f"{prefix}/+/telemetry"
    return f"$share/{group}/{topic}" if group else topic


# --------------------------------------------------------------------------- processes and CPU

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status(pid: int, key: str) -> int:
    """A kB value of /proc/<pid>/status (VmHWM, VmRSS), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def postgres_pids(database: str) -> list[int]:
    """Backends of ``database`` and the server's own processes (WAL writer, checkpointer, …).

    Backends of other databases (someone else's benchmark or tests) are left out.
    """
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() != "postgres":
                    continue
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            title = cmd.split(":", 2)[-1].strip() if cmd.startswith("postgres:") else ""
            words = title.split()
            # a backend's title is "user database host(port) state"
            is_backend = len(words) >= 3 and "(" in words[2]
            if not is_backend or words[1] == database:
                pids.append(int(d.name))
    return pids


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


@dataclass
class CpuMeter:
    """CPU seconds by component over an interval: ingesters, PostgreSQL, Mosquitto, machine.

    Per process, so that a process ending in between is not subtracted; PostgreSQL
    counts the backends of the benchmark's database and the server's own processes.
    """

    ingesters: list[int]
    broker: int
    database: str
    start: dict[str, Any] = field(default_factory=dict)

    def _now(self) -> dict[str, Any]:
        busy, total = machine_busy()
        return {
            "ingester": {p: proc_cpu(p) for p in self.ingesters},
            "postgres": {p: proc_cpu(p) for p in postgres_pids(self.database)},
            "mosquitto": {self.broker: proc_cpu(self.broker)},
            "machine_busy": busy,
            "machine_total": total,
            "wall": time.perf_counter(),
        }

    def begin(self) -> None:
        self.start = self._now()

    def end(self) -> dict[str, float]:
        now = self._now()
        out = {}
        for k, v in now.items():
            if isinstance(v, dict):
                before = self.start[k]
                out[k] = sum(c - before.get(p, 0.0) for p, c in v.items() if c)
            else:
                out[k] = v - self.start[k]
        return out


class Ingesters:
    """``viu ingest`` processes (the real command), one per client id."""

    def __init__(
        self, env: dict[str, str], client_ids: list[str], group: str, logs: Path, spy: Path | None
    ) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.spies: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        for cid in client_ids:
            log = logs / f"{cid}.log"
            self.logs.append(log)
            e = env | {"VIU_MQTT_CLIENT_ID": cid, "VIU_MQTT_SHARED_GROUP": group}
            with log.open("ab") as out:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "services.cli", "ingest"],
                        env=e,
                        cwd=REPO,
                        stdout=out,
                        stderr=out,
                    )
                )
        if spy is not None:
            exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            for cid, p in zip(client_ids, self.procs, strict=True):
                self.spies.append(
                    subprocess.Popen(
                        [
                            exe,
                            "record",
                            "--pid",
                            str(p.pid),
                            "--rate",
                            "100",
                            "--threads",
                            "--nonblocking",
                            "--format",
                            "raw",
                            "--output",
                            str(spy / f"{cid}.txt"),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def wait_connected(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all("connected to" in log.read_text(errors="replace") for log in self.logs):
                return
            for p, log in zip(self.procs, self.logs, strict=True):
                if p.poll() is not None:
                    raise RuntimeError(f"viu ingest exited: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError("viu ingest did not connect")

    def peak_rss(self) -> list[int]:
        return [proc_status(p, "VmHWM") for p in self.pids]

    def stop(self) -> list[int]:
        """SIGTERM (a clean flush and disconnect); returns each process's exit code."""
        for s in self.spies:
            s.send_signal(signal.SIGINT)
        for s in self.spies:
            try:
                s.wait(60)
            except subprocess.TimeoutExpired:
                s.kill()
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        codes = []
        for p in self.procs:
            try:
                codes.append(p.wait(60))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
        return codes


# --------------------------------------------------------------------------- database


def admin_url(server: str) -> str:
    return f"{server.rstrip('/')}/postgres"


def db_url(server: str, name: str) -> str:
    return f"{server.rstrip('/')}/{name}"


def recreate_database(server: str, name: str) -> None:
    with psycopg.connect(admin_url(server), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(admin_url(server), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def setup_schema(url: str, devices: int, contracts: int) -> None:
    """Migrate through the product, register the fleet through ``create_contract``."""
    from schemas.contract import ContractIn
    from services.config import load_settings
    from services.db import make_engine, upgrade
    from services.settlement.contracts import create_contract

    engine = make_engine(url)
    try:
        upgrade(engine, load_settings(database_url=url))
        ids = device_ids(devices)
        per = devices // contracts
        with engine.begin() as conn:
            for c in range(contracts):
                body = ContractIn.model_validate(
                    {
                        "contract_id": f"bench-c{c + 1:03d}",
                        "provider": "Bench Provider AB",
                        "customer": f"Bench Customer {c + 1:03d}",
                        "currency": "EUR",
                        "timezone": "UTC",
                        "devices": ids[c * per : (c + 1) * per],
                        "effective_from": "2026-01",
                        "unit": "units",
                        "rated_capacity_per_hour": 900,
                        "terms": {"fixed_fee": "1000"},
                    }
                )
                create_contract(conn, body, "bench")
    finally:
        engine.dispose()
    with psycopg.connect(url, autocommit=True) as conn:
        create_reference_table(conn, REF_TABLE)


COUNTERS = ("received", "stored", "duplicates", "corrections", "dead_lettered")


def counters(conn: psycopg.Connection[Any]) -> dict[str, int]:
    cols = ", ".join(f"coalesce(sum({c}), 0)::bigint" for c in COUNTERS)
    row = conn.execute(f"SELECT {cols} FROM ingest_counters").fetchone()
    assert row is not None
    return dict(zip(COUNTERS, (int(v) for v in row), strict=True))


def verify(
    conn: psycopg.Connection[Any], work: Workload, acked: int, before: dict[str, int]
) -> dict[str, Any]:
    """Loss and duplicates of a phase, from every angle the database offers."""
    lo, hi = work.ts_range
    after = counters(conn)
    delta = {k: after[k] - before[k] for k in COUNTERS}
    row = conn.execute(
        "SELECT count(*), count(DISTINCT (device_id, ts)) FROM samples WHERE ts >= %s AND ts < %s",
        (lo, hi),
    ).fetchone()
    assert row is not None
    rows, distinct = int(row[0]), int(row[1])
    rollup = conn.execute(
        "SELECT coalesce(sum(samples), 0)::bigint FROM rollups WHERE bucket >= %s AND bucket < %s",
        (lo, hi),
    ).fetchone()
    assert rollup is not None
    extra = conn.execute(
        "SELECT (SELECT count(*) FROM sample_revisions), (SELECT count(*) FROM dead_letters)"
    ).fetchone()
    assert extra is not None
    published = acked * work.per_message
    out = {
        "published_samples": published,
        "stored_rows": rows,
        "rollup_samples": int(rollup[0]),
        "counters": delta,
        "revisions_total": int(extra[0]),
        "dead_letters_total": int(extra[1]),
        "lost": published - rows,
        "duplicated": (rows - distinct) + delta["duplicates"] + delta["corrections"],
    }
    out["exact"] = (
        out["lost"] == 0
        and out["duplicated"] == 0
        and rows == work.samples
        and delta["stored"] == work.samples
        and delta["received"] == work.samples
        and delta["dead_lettered"] == 0
        and int(rollup[0]) == work.samples
        and out["revisions_total"] == 0
        and out["dead_letters_total"] == 0
    )
    return out


# --------------------------------------------------------------------------- phases


@dataclass
class Bench:
    args: argparse.Namespace
    url: str
    mqtt_url: str
    broker_pid: int
    work_dir: Path
    results: dict[str, Any] = field(default_factory=dict)
    storage: dict[str, Any] = field(default_factory=dict)

    def env(self, prefix: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIU_")}
        env |= {
            "VIU_DATABASE_URL": self.url,
            "VIU_MQTT_URL": self.mqtt_url,
            "VIU_MQTT_TOPIC_PREFIX": prefix,
            "VIU_MQTT_SESSION_EXPIRY_S": str(SESSION_EXPIRY_S),
            "VIU_DATA_DIR": str(self.work_dir / "viu"),
            "VIU_LOG_LEVEL": "INFO",
        }
        for kv in self.args.env:
            k, _, v = kv.partition("=")
            env[k] = v
        return env

    def client_ids(self, phase: str) -> tuple[list[str], str]:
        n = self.args.workers
        group = "bench" if n > 1 else ""
        return [f"bench-{phase}-{k + 1}" for k in range(n)], group

    def spy_dir(self, phase: str) -> Path | None:
        if not self.args.py_spy:
            return None
        d = Path(self.args.py_spy) / phase
        d.mkdir(parents=True, exist_ok=True)
        return d

    # ------------------------------------------------------------------ drain a pre-loaded queue

    def drain(self, phase: str, work: Workload) -> dict[str, Any]:
        cids, group = self.client_ids(phase)
        for cid in cids:
            create_session(self.mqtt_url, cid, subscription(work.prefix, group))
        say(
            f"[{phase}] pre-loading {work.messages:,} messages ({work.samples:,} samples) "
            f"with {self.args.publishers} publishers"
        )
        pub = preload(self.mqtt_url, work, self.args.publishers)
        say(
            f"[{phase}] broker acknowledged {pub['acked']:,}/{pub['sent']:,} in "
            f"{pub['seconds']:.1f} s ({pub['rate']:,.0f} msg/s)"
        )
        if pub["acked"] != work.messages:
            raise SystemExit(f"[{phase}] the broker did not acknowledge every message")
        with psycopg.connect(self.url, autocommit=True) as conn:
            before = counters(conn)
            ing = Ingesters(self.env(work.prefix), cids, group, self.work_dir, self.spy_dir(phase))
            meter = CpuMeter(ing.pids, self.broker_pid, self.args.database)
            started = time.perf_counter()
            polls: list[tuple[float, int]] = []
            last_change = started
            while True:
                stored = counters(conn)["stored"] - before["stored"]
                now = time.perf_counter()
                if not polls or stored != polls[-1][1]:
                    last_change = now
                if stored and not meter.start:  # CPU from the first commit on, like the rate
                    meter.begin()
                polls.append((now, stored))
                if stored >= work.samples:
                    break
                if now - last_change > self.args.stall_s:
                    ing.stop()
                    raise SystemExit(f"[{phase}] stalled at {stored:,}/{work.samples:,}")
                time.sleep(0.1)
            cpu = meter.end()
            rss = ing.peak_rss()
            codes = ing.stop()
            check = verify(conn, work, pub["acked"], before)
        first = next(i for i, (_, n) in enumerate(polls) if n > 0)
        t_first, n_first = polls[first] if first < len(polls) - 1 else polls[first - 1]
        t_end = polls[-1][0]
        sustained = (work.samples - n_first) / (t_end - t_first)
        res = {
            "publisher": pub,
            "messages": work.messages,
            "samples": work.samples,
            "seconds_from_start": t_end - started,
            "seconds_drain": t_end - t_first,
            "startup_s": t_first - started,
            "msgs_per_s": sustained / work.per_message,
            "samples_per_s": sustained,
            "rss": rss,
            "exit_codes": codes,
            "cpu": cpu,
            "check": check,
            "workers": len(cids),
        }
        say(
            f"[{phase}] drained {work.samples:,} samples in {res['seconds_drain']:.1f} s "
            f"(+{res['startup_s']:.1f} s start-up): {res['msgs_per_s']:,.0f} msg/s, "
            f"{res['samples_per_s']:,.0f} samples/s; peak RSS "
            f"{', '.join(f'{r / 2**20:.0f} MB' for r in rss)}; exit {codes}"
        )
        say(f"[{phase}] cpu {fmt_cpu(cpu)}")
        say(f"[{phase}] check {json.dumps(check)}")
        return res

    # ------------------------------------------------------------------ latency at a steady rate

    def latency(self, work: Workload, rate: float) -> dict[str, Any]:
        phase = "latency"
        cids, group = self.client_ids(phase)
        for cid in cids:
            create_session(self.mqtt_url, cid, subscription(work.prefix, group))
        with psycopg.connect(self.url, autocommit=True) as conn:
            before = counters(conn)
            ing = Ingesters(self.env(work.prefix), cids, group, self.work_dir, self.spy_dir(phase))
            ing.wait_connected()
            time.sleep(1.0)  # let the ingester settle (first queries, pools)
            observer = SnapshotObserver(self.url, self.args.observe_ms / 1000)
            observer.start()
            meter = CpuMeter(ing.pids, self.broker_pid, self.args.database)
            ctx = mp.get_context("spawn")
            out = ctx.Queue()
            start_at = time.time() + 2.0
            pub_proc = ctx.Process(
                target=paced_worker,
                args=(self.mqtt_url, work, rate, start_at, self.args.tick_ms / 1000, out),
            )
            pub_proc.start()
            say(
                f"[{phase}] publishing {work.messages:,} single-sample messages at "
                f"{rate:,.0f}/s ({work.messages / rate:.0f} s)"
            )
            while time.time() < start_at:
                time.sleep(0.01)
            meter.begin()
            pub = out.get(timeout=work.messages / rate + 600)
            pub_proc.join()
            deadline = time.monotonic() + self.args.stall_s
            while counters(conn)["stored"] - before["stored"] < work.samples:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            time.sleep(0.2)
            observer.stop()
            cpu = meter.end()
            rss = ing.peak_rss()
            codes = ing.stop()
            check = verify(conn, work, pub["acked"], before)
            lo, hi = work.ts_range
            rows = conn.execute(
                "SELECT xmin::text::bigint, seq FROM samples WHERE ts >= %s AND ts < %s",
                (lo, hi),
            ).fetchall()
            current = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
            assert current is not None
            epoch = int(current[0]) >> 32
        commit_at = observer.commit_times({(epoch << 32) | int(x) for x, _ in rows})
        lat_ms = sorted(
            (commit_at[(epoch << 32) | int(x)] - seq / 1_000_000) * 1000
            for x, seq in rows
            if (epoch << 32) | int(x) in commit_at
        )
        res = {
            "publisher": pub,
            "messages": work.messages,
            "rate_target": rate,
            "observed": len(lat_ms),
            "transactions": len({x for x, _ in rows}),
            "p50_ms": pct(lat_ms, 50),
            "p90_ms": pct(lat_ms, 90),
            "p99_ms": pct(lat_ms, 99),
            "p999_ms": pct(lat_ms, 99.9),
            "max_ms": lat_ms[-1] if lat_ms else float("nan"),
            "mean_ms": statistics.fmean(lat_ms) if lat_ms else float("nan"),
            "observer_polls": observer.polls,
            "observer_interval_ms": observer.mean_interval_ms(),
            "rss": rss,
            "exit_codes": codes,
            "cpu": cpu,
            "check": check,
            "workers": len(cids),
        }
        say(
            f"[{phase}] publisher: {pub['acked']:,}/{pub['sent']:,} acknowledged, "
            f"{pub['rate']:,.0f} msg/s achieved, worst send lag {pub['worst_lag_ms']:.1f} ms"
        )
        say(
            f"[{phase}] publish→commit over {len(lat_ms):,} samples in "
            f"{res['transactions']:,} transactions: p50 {res['p50_ms']:.1f} ms, "
            f"p90 {res['p90_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, "
            f"p99.9 {res['p999_ms']:.1f} ms, max {res['max_ms']:.1f} ms "
            f"(snapshot polled every {res['observer_interval_ms']:.1f} ms); peak RSS "
            f"{', '.join(f'{r / 2**20:.0f} MB' for r in rss)}; exit {codes}"
        )
        say(f"[{phase}] cpu {fmt_cpu(cpu)}")
        say(f"[{phase}] check {json.dumps(check)}")
        return res

    # ------------------------------------------------------------------ references

    def naive(self, work: Workload) -> dict[str, Any]:
        phase = "naive"
        cid = "bench-naive-1"
        create_session(self.mqtt_url, cid, subscription(work.prefix, ""))
        say(f"[{phase}] pre-loading {work.messages:,} messages")
        pub = preload(self.mqtt_url, work, self.args.publishers)
        say(f"[{phase}] broker acknowledged {pub['acked']:,}/{pub['sent']:,}")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {REF_TABLE}")
        result_file = self.work_dir / "naive.json"
        proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--naive-worker",
                json.dumps(
                    {
                        "db": self.url,
                        "mqtt": self.mqtt_url,
                        "client_id": cid,
                        "topic": subscription(work.prefix, ""),
                        "messages": work.messages,
                        "out": str(result_file),
                    }
                ),
            ],
            cwd=REPO,
        )
        proc.wait(timeout=work.messages / 100 + 600)
        res = json.loads(result_file.read_text())
        with psycopg.connect(self.url, autocommit=True) as conn:
            (rows,) = conn.execute(f"SELECT count(*) FROM {REF_TABLE}").fetchone()  # type: ignore[misc]
        res |= {"rows": int(rows), "publisher": pub}
        say(
            f"[{phase}] one INSERT + commit + ack per message: {res['messages']:,} messages in "
            f"{res['seconds']:.1f} s = {res['msgs_per_s']:,.0f} msg/s; {rows:,} rows"
        )
        per = 1e6 / max(res["messages"], 1)
        say(
            f"[{phase}] cpu: ingester {res['ingester_cpu_s']:.1f} s "
            f"({res['ingester_cpu_s'] * per:.0f} µs/msg, start-up included), its PostgreSQL "
            f"backend {res['postgres_backend_cpu_s']:.1f} s "
            f"({res['postgres_backend_cpu_s'] * per:.0f} µs/msg): the rest is waiting for "
            "one WAL flush per commit"
        )
        return res

    def copy_refs(self, work: Workload) -> dict[str, Any]:
        """Raw binary COPY of the single phase's rows, and COPY → staging → INSERT ON CONFLICT."""
        received = datetime.now(UTC)
        rows = list(work.rows(received))
        out: dict[str, Any] = {"rows": len(rows)}
        cols = ", ".join(SAMPLE_COLUMNS)
        with psycopg.connect(self.url) as conn:
            repeats = self.args.copy_repeats
            rate, rates = copy_rates(conn, REF_TABLE, SAMPLE_COLUMNS, COPY_TYPES, rows, repeats)
            out["copy_rows_per_s"] = rate
            out["copy_passes"] = rates
            say(
                f"[copy] binary COPY of {len(rows):,} rows from memory into a table with the "
                f"samples primary key: median of {repeats} {rate:,.0f} rows/s "
                f"(passes {rates_text(rates)})"
            )
            conn.execute(f"TRUNCATE {REF_TABLE}")
            conn.commit()
            chunk = self.args.staging_chunk
            started = time.perf_counter()
            for lo in range(0, len(rows), chunk):
                conn.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS _stage (LIKE {REF_TABLE}) ON COMMIT DELETE ROWS"
                )
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY _stage ({cols}) FROM STDIN (FORMAT BINARY)") as copy,
                ):
                    copy.set_types(COPY_TYPES)
                    for r in rows[lo : lo + chunk]:
                        copy.write_row(r)
                conn.execute(
                    f"INSERT INTO {REF_TABLE} ({cols}) SELECT {cols} FROM _stage "
                    "ON CONFLICT (device_id, ts) DO NOTHING"
                )
                conn.commit()
            seconds = time.perf_counter() - started
            out["staging_s"] = seconds
            out["staging_rows_per_s"] = len(rows) / seconds
            out["staging_chunk"] = chunk
            say(
                f"[copy] binary COPY into staging + INSERT … ON CONFLICT DO NOTHING, "
                f"{chunk:,} rows per transaction: {seconds:.1f} s = "
                f"{out['staging_rows_per_s']:,.0f} rows/s"
            )
            interval = create_reference_hypertable(conn, REF_HYPER, REF_TABLE)
            if interval is not None:  # TimescaleDB: the same COPY into a hypertable
                rate, rates = copy_rates(conn, REF_HYPER, SAMPLE_COLUMNS, COPY_TYPES, rows, repeats)
                out["copy_hypertable_rows_per_s"] = rate
                say(
                    f"[copy] the same binary COPY into a hypertable ({interval} chunks): "
                    f"median {rate:,.0f} rows/s (passes {rates_text(rates)})"
                )
        return out


def pct(sorted_values: Sequence[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def fmt_cpu(cpu: dict[str, float]) -> str:
    wall = cpu["wall"]
    parts = [
        f"{k} {cpu[k]:.1f} s ({cpu[k] / wall * 100:.0f} % of a core)"
        for k in ("ingester", "postgres", "mosquitto")
    ]
    busy = cpu["machine_busy"] / cpu["machine_total"] * 100 if cpu["machine_total"] else 0
    return f"over {wall:.1f} s: " + ", ".join(parts) + f"; machine {busy:.0f} % busy"


class SnapshotObserver:
    """Polls ``pg_current_snapshot()``: when a transaction stops being in progress, it committed."""

    def __init__(self, url: str, interval: float) -> None:
        self.url = url
        self.interval = interval
        self.log: list[tuple[float, int, int, frozenset[int]]] = []
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        q = (
            "SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint, "
            "array(SELECT x::text::bigint FROM pg_snapshot_xip(s) x) "
            "FROM pg_current_snapshot() s"
        )
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.cursor()
            cur.execute("SET application_name = 'bench-observer'")
            self.started = time.perf_counter()
            while not self._stop.is_set():
                cur.execute(q, prepare=True)
                xmin, xmax, xip = cur.fetchone()  # type: ignore[misc]
                now = time.time()
                self.polls += 1
                if not self.log or self.log[-1][2] != xmax or self.log[-1][3] != frozenset(xip):
                    self.log.append((now, int(xmin), int(xmax), frozenset(xip)))
                time.sleep(self.interval)
            self.stopped = time.perf_counter()

    def mean_interval_ms(self) -> float:
        return (self.stopped - self.started) / max(self.polls, 1) * 1000

    def commit_times(self, xids: set[int]) -> dict[int, float]:
        """The first observation in which each xid had committed (not in progress)."""
        xmaxes = [entry[2] for entry in self.log]
        out = {}
        for x in xids:
            i = bisect.bisect_right(xmaxes, x)  # first snapshot whose xmax > x
            while i < len(self.log) and x in self.log[i][3]:
                i += 1
            if i < len(self.log):
                out[x] = self.log[i][0]
        return out


# --------------------------------------------------------------------------- the naive ingester


def naive_worker(spec: dict[str, Any]) -> None:
    """The reference: paho, and per message one INSERT, one commit, then the ack."""
    conn = psycopg.connect(spec["db"])
    parts = urlsplit(spec["mqtt"])
    done = threading.Event()
    state = {"n": 0, "first": 0.0, "last": 0.0}
    insert = (
        f"INSERT INTO {REF_TABLE} ({', '.join(SAMPLE_COLUMNS)}) "
        "VALUES (%s, to_timestamp(%s), %s, %s, %s, %s, %s, %s, now()) "
        "ON CONFLICT (device_id, ts) DO NOTHING"
    )

    def on_message(client: paho.Client, _: Any, msg: paho.MQTTMessage) -> None:
        if not state["first"]:
            state["first"] = time.perf_counter()
        d = json.loads(msg.payload, parse_float=Decimal)
        device = msg.topic.split("/")[-2]
        conn.execute(
            insert,
            (
                device,
                d["ts"],
                d["interval_s"],
                d["uptime_min"],
                d["quality_min"],
                d["throughput"],
                d.get("downtime_cause", "unplanned"),
                d.get("seq"),
            ),
        )
        conn.commit()
        client.ack(msg.mid, msg.qos)
        state["n"] += 1
        if state["n"] >= spec["messages"]:
            state["last"] = time.perf_counter()
            done.set()

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=spec["client_id"], protocol=paho.MQTTv5)
    c.manual_ack_set(True)
    c.on_message = on_message
    c.on_connect = lambda cl, *a: cl.subscribe(spec["topic"], qos=1)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    c.connect(parts.hostname, parts.port, clean_start=False, properties=props)
    c.loop_start()
    done.wait(spec["messages"] / 50 + 600)
    c.disconnect()
    c.loop_stop()
    seconds = state["last"] - state["first"]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    backend_cpu = proc_cpu(conn.info.backend_pid)  # read before the backend exits
    conn.close()
    Path(spec["out"]).write_text(
        json.dumps(
            {
                "messages": state["n"],
                "seconds": seconds,
                "msgs_per_s": state["n"] / seconds if seconds else 0,
                "peak_rss": proc_status(os.getpid(), "VmHWM"),
                "ingester_cpu_s": usage.ru_utime + usage.ru_stime,
                "postgres_backend_cpu_s": backend_cpu,
            }
        )
    )


# --------------------------------------------------------------------------- machine and report


def machine(server: str) -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.strip()
    with psycopg.connect(admin_url(server), autocommit=True) as conn:
        pg = conn.execute("SELECT version()").fetchone()[0]  # type: ignore[index]
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("shared_buffers", "synchronous_commit", "wal_level", "max_wal_size")
        }
    mosq = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    ver = subprocess.run([mosq, "-h"], capture_output=True, text=True).stdout.splitlines()[:1]
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "postgres": pg,
        "postgres_settings": ", ".join(f"{k}={v}" for k, v in settings.items()),
        "mosquitto": ver[0] if ver else "?",
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def summary(b: Bench, info: dict[str, str]) -> None:
    r = b.results
    say("")
    say("== machine ==")
    for k, v in info.items():
        if k == "memory":
            say("memory (free -h):")
            for line in v.splitlines():
                say(f"  {line}")
        else:
            say(f"{k}: {v}")
    say("")
    say("== results ==")
    rows: list[tuple[str, str, str, str]] = []
    rss_all: list[int] = []
    exact_all: list[bool] = []
    lost = dup = 0
    for phase in ("single", "batch", "latency"):
        if phase in r:
            check = r[phase]["check"]
            rss_all += r[phase]["rss"]
            exact_all.append(check["exact"])
            lost += check["lost"]
            dup += check["duplicated"]
    if "single" in r:
        s = r["single"]
        ok = s["msgs_per_s"] >= TARGETS["single_msgs_per_s"]
        rows.append(
            (
                "single-sample messages/s",
                f"{s['msgs_per_s']:,.0f} ({s['messages']:,} msgs, {s['workers']} worker(s))",
                f">= {TARGETS['single_msgs_per_s']:,}",
                verdict(ok),
            )
        )
    if "batch" in r:
        s = r["batch"]
        ok = s["samples_per_s"] >= TARGETS["batch_samples_per_s"]
        rows.append(
            (
                "samples/s, 100-sample messages",
                f"{s['samples_per_s']:,.0f} ({s['samples']:,} samples)",
                f">= {TARGETS['batch_samples_per_s']:,}",
                verdict(ok),
            )
        )
    if "latency" in r:
        s = r["latency"]
        rows.append(
            (
                "publish→commit p50 @ 10k msg/s",
                f"{s['p50_ms']:.1f} ms",
                "-",
                "-",
            )
        )
        rows.append(
            (
                "publish→commit p99 @ 10k msg/s",
                f"{s['p99_ms']:.1f} ms (achieved {s['publisher']['rate']:,.0f} msg/s)",
                f"<= {TARGETS['latency_p99_ms']} ms",
                verdict(s["p99_ms"] <= TARGETS["latency_p99_ms"]),
            )
        )
    if rss_all:
        peak = max(rss_all) / 2**20
        rows.append(
            (
                "peak ingester RSS (VmHWM)",
                f"{peak:.0f} MB",
                f"<= {TARGETS['rss_mb']} MB",
                verdict(peak <= TARGETS["rss_mb"]),
            )
        )
    if exact_all:
        rows.append(("lost samples", str(lost), "0", verdict(lost == 0 and all(exact_all))))
        rows.append(("duplicated samples", str(dup), "0", verdict(dup == 0 and all(exact_all))))
    if "naive" in r:
        rows.append(
            (
                "ref: naive (INSERT+commit per msg)",
                f"{r['naive']['msgs_per_s']:,.0f} msg/s ({r['naive']['messages']:,} msgs)",
                "-",
                "-",
            )
        )
    if "copy" in r:
        c = r["copy"]
        rows.append(("ref: raw binary COPY", f"{c['copy_rows_per_s']:,.0f} rows/s", "-", "-"))
        rows.append(
            (
                "ref: COPY staging + ON CONFLICT",
                f"{c['staging_rows_per_s']:,.0f} rows/s ({c['staging_chunk']:,}/txn)",
                "-",
                "-",
            )
        )
        if "copy_hypertable_rows_per_s" in c:
            rows.append(
                (
                    "ref: binary COPY into a hypertable",
                    f"{c['copy_hypertable_rows_per_s']:,.0f} rows/s",
                    "-",
                    "-",
                )
            )
        for f in ingest_figures({"results": r}):
            if f.value is not None and f.reference and not f.text:
                rows.append(
                    (f"ratio: {f.measure} / raw COPY", f"{f.value / f.reference:.3f}", "-", "-")
                )
    widths = [
        max(len(row[i]) for row in [("measure", "result", "target", "verdict"), *rows])
        for i in range(4)
    ]
    for row in [("measure", "result", "target", "verdict"), *rows]:
        say("  ".join(v.ljust(widths[i]) for i, v in enumerate(row)).rstrip())
    if b.args.json:
        Path(b.args.json).write_text(
            json.dumps({"machine": info, "results": r, "storage": b.storage}, indent=2, default=str)
        )


def ingest_figures(data: dict[str, Any]) -> list[Figure]:
    """One run's figures for the both-backends table, each against its raw binary COPY."""
    r = data["results"]
    ref = r.get("copy", {}).get("copy_rows_per_s")
    out = []
    if "single" in r:
        out.append(
            Figure(
                "single-sample messages, viu ingest (samples/s)", r["single"]["samples_per_s"], ref
            )
        )
    if "batch" in r:
        out.append(
            Figure("100-sample messages, viu ingest (samples/s)", r["batch"]["samples_per_s"], ref)
        )
    if "latency" in r:
        lat = r["latency"]
        text = f"p50 {lat['p50_ms']:.1f} / p99 {lat['p99_ms']:.1f} ms"
        out.append(Figure(f"publish→commit @ {lat['rate_target']:,.0f} msg/s", None, None, text))
    if "naive" in r:
        out.append(
            Figure("ref: naive INSERT+commit per message (msg/s)", r["naive"]["msgs_per_s"], ref)
        )
    if "copy" in r:
        c = r["copy"]
        out.append(Figure("ref: COPY staging + ON CONFLICT (rows/s)", c["staging_rows_per_s"], ref))
        if "copy_hypertable_rows_per_s" in c:
            out.append(
                Figure(
                    "ref: binary COPY into a hypertable (rows/s)",
                    c["copy_hypertable_rows_per_s"],
                    ref,
                )
            )
    checks = [r[ph]["check"] for ph in ("single", "batch", "latency") if ph in r]
    if checks:
        lost = sum(c["lost"] for c in checks)
        dup = sum(c["duplicated"] for c in checks)
        exact = "exact" if all(c["exact"] for c in checks) else "NOT exact"
        out.append(Figure("lost / duplicated samples", None, None, f"{lost} / {dup} ({exact})"))
    rss = [x for ph in ("single", "batch", "latency") if ph in r for x in r[ph]["rss"]]
    if rss:
        out.append(Figure("peak ingester RSS", None, None, f"{max(rss) / 2**20:.0f} MB"))
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_options(p, DEFAULT_SERVER)
    p.add_argument("--database", default="viu_bench_ingest")
    p.add_argument("--keep", action="store_true", help="keep the database and the work dir")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--contracts", type=int, default=10)
    p.add_argument("--messages", type=int, default=1_000_000, help="single-sample messages")
    p.add_argument("--batch-messages", type=int, default=10_000)
    p.add_argument("--batch-samples", type=int, default=100, help="samples per batch message")
    p.add_argument("--latency-rate", type=float, default=10_000)
    p.add_argument("--latency-seconds", type=float, default=60)
    p.add_argument("--naive-messages", type=int, default=20_000)
    p.add_argument("--staging-chunk", type=int, default=5000)
    p.add_argument(
        "--workers", type=int, default=1, help="viu ingest processes (>1: shared subscription)"
    )
    p.add_argument("--publishers", type=int, default=2, help="pre-loading publisher processes")
    p.add_argument("--observe-ms", type=float, default=5.0, help="snapshot poll interval")
    p.add_argument("--tick-ms", type=float, default=5.0, help="paced publisher: one write per tick")
    p.add_argument("--stall-s", type=float, default=120.0)
    p.add_argument(
        "--broker-autosave",
        type=int,
        default=1_000_000,
        help="the private broker's autosave_interval in changes (viu ships 100)",
    )
    p.add_argument(
        "--phases", default="single,batch,latency,naive,copy", help="comma-separated subset"
    )
    p.add_argument("--env", action="append", default=[], help="VIU_X=value for the ingesters")
    p.add_argument("--py-spy", metavar="DIR", help="record py-spy raw stacks of every ingester")
    p.add_argument("--naive-worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.naive_worker:
        naive_worker(json.loads(args.naive_worker))
        return 0
    if args.backends:
        argv = list(sys.argv[1:] if argv is None else argv)
        return run_backends(Path(__file__).resolve(), argv, args, ingest_figures, "ingest")
    if not DB_NAME_RE.match(args.database):
        raise SystemExit("--database must start with viu_bench_ingest")
    if args.devices % args.contracts:
        raise SystemExit("--devices must be a multiple of --contracts")
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    say(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    say(f"started {datetime.now(UTC).isoformat(timespec='seconds')}")
    info = machine(args.server)
    work_dir = Path(tempfile.mkdtemp(prefix="viu-bench-ingest-"))
    url = db_url(args.server, args.database)
    recreate_database(args.server, args.database)
    setup_schema(url, args.devices, args.contracts)
    say(f"database {args.database}: migrated, {args.devices} devices in {args.contracts} contracts")
    say(f"storage: {storage_text(storage_report(url))}")

    from services.embedded import AUTOSAVE_CHANGES, start_mosquitto

    broker = start_mosquitto(work_dir, port=None, autosave=args.broker_autosave)
    if args.broker_autosave != AUTOSAVE_CHANGES:
        say(
            f"broker autosave every {args.broker_autosave:,} changes (viu ships "
            f"{AUTOSAVE_CHANGES}: the whole queue is written that often, so pre-loading "
            "200,000 messages crawls; docs/operations.md, Broker durability)"
        )
    assert broker.process is not None
    conf = (work_dir / "mosquitto" / "mosquitto.conf").read_text()
    say(f"private mosquitto at {broker.url} (pid {broker.process.pid}), config:")
    for line in conf.splitlines():
        if not line.startswith("user "):
            say(f"  {line}")
    bench = Bench(args, url, broker.url, broker.process.pid, work_dir)
    n = args.devices
    try:
        if "single" in phases:
            bench.results["single"] = bench.drain(
                "single", Workload("single", "b1", n, args.messages)
            )
        if "batch" in phases:
            bench.results["batch"] = bench.drain(
                "batch", Workload("batch", "b2", n, args.batch_messages, args.batch_samples)
            )
        if "latency" in phases:
            count = int(args.latency_rate * args.latency_seconds)
            bench.results["latency"] = bench.latency(
                Workload("latency", "lat", n, count), args.latency_rate
            )
        if "naive" in phases:
            bench.results["naive"] = bench.naive(
                Workload("single", "naive", n, args.naive_messages)
            )
        if "copy" in phases:
            bench.results["copy"] = bench.copy_refs(Workload("single", "copy", n, args.messages))
        bench.storage = storage_report(url)
        say(f"storage after the run: {storage_text(bench.storage)}")
    finally:
        broker.stop()
        if not args.keep:
            drop_database(args.server, args.database)
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            say(f"kept database {args.database} and {work_dir}")
    summary(bench, info)
    say(f"finished {datetime.now(UTC).isoformat(timespec='seconds')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
