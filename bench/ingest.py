"""Ingest benchmark: MQTT → ``viu ingest`` → PostgreSQL, exactly once, on this machine.

What it measures (the issue's targets in brackets), all in one run:

1. ``single``: sustained single-sample messages/s [≥ 20,000/s];
2. ``passthrough`` (a reference, run just before ``single``): the broker's own
   pass-through of the same single-sample messages, pre-loaded the same way
   into a persistent session of Debian's C client ``mosquitto_sub``, which then
   drains them; timed first → last message by its own receive stamps
   (``-F %U``), so its start-up is not counted [viu single ÷ pass-through ≥ 0.8];
3. ``batch``: samples/s with 100-sample batch messages [≥ 100,000/s];
4. ``latency``: p50/p95/p99/max publish-to-commit latency of single-sample
   messages published at a steady rate, once per ``--latency-fractions``
   (default 25, 50 and 75 %) of the msg/s the ``single`` phase of the same run
   measured [p99 ≤ 100 ms at 50 %]; ``--latency-rate R`` adds a run at a fixed
   R msg/s, and is the only run (default 10,000) when ``single`` is not run;
5. peak RSS of every ingester process (``VmHWM``) [≤ 300 MB];
6. lost and duplicated samples [0 and 0], checked for every phase against the
   publisher's PUBACK count, the ``samples`` table, the rollups and the
   persisted ingest counters;
7. two references on the same rows: a naive ingester (one INSERT and commit
   per message, MQTT with acks after commit) and the raw limit (binary COPY of
   the rows from memory), plus COPY into staging + ``INSERT … ON CONFLICT``;
8. with ``--scaleout 1,2``: ``single`` and ``batch`` drained once per worker
   count (fresh sessions, topics, sample times and pre-load each), each rate
   against N x the one-worker rate [≥ 0.8 x N], with the CPU of ingesters,
   PostgreSQL and Mosquitto for each.

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

    python bench/ingest.py --workers 2 --scaleout 1,2   # the issue's run (~10 min)
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
import urllib.request
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
    free_port,
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
    "passthrough_ratio": 0.8,  # viu single-sample msg/s ÷ the broker's pass-through
    "scaleout_efficiency": 0.8,  # N workers ≥ 0.8 x N x one worker
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
    start: int | None = None  # epoch s of the first sample ts (None: the phase's month)

    @property
    def base(self) -> int:
        return phase_base(self.phase) if self.start is None else self.start

    @property
    def samples(self) -> int:
        return self.messages * self.per_message

    def device(self, i: int) -> str:
        return f"bench-d{i % self.devices:05d}"

    def topic(self, i: int) -> bytes:
        return f"{self.prefix}/{self.device(i)}/telemetry".encode()

    def first_ts(self, i: int) -> int:
        """Message i of device (i % devices) is that device's (i // devices)-th message."""
        return self.base + (i // self.devices) * self.per_message * INTERVAL_S

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
        lo = self.base
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
        return stat_cpu(Path(f"/proc/{pid}/stat"))
    except OSError:
        return 0.0


def stat_cpu(stat: Path) -> float:
    """CPU seconds (utime + stime) of a process's or a thread's ``stat`` file under /proc."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
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
    """``viu ingest`` processes (the real command), one per client id.

    ``command="up"`` runs ``viu up`` instead (ingester, scheduler and API in
    one process, as ``make run`` does), each with an API port of its own.
    """

    def __init__(
        self,
        env: dict[str, str],
        client_ids: list[str],
        group: str,
        logs: Path,
        spy: Path | None,
        command: str = "ingest",
    ) -> None:
        self.command = command
        self.procs: list[subprocess.Popen[bytes]] = []
        self.spies: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.api_ports: list[int] = []
        for cid in client_ids:
            log = logs / f"{cid}.log"
            self.logs.append(log)
            e = env | {"VIU_MQTT_CLIENT_ID": cid, "VIU_MQTT_SHARED_GROUP": group}
            if command == "up":
                self.api_ports.append(free_port())
                e["VIU_API_PORT"] = str(self.api_ports[-1])
            with log.open("ab") as out:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "services.cli", command],
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

    def wait_started(self, timeout: float = 120) -> float:
        """Connected, and for ``viu up`` its start-up over: the API answers ``/readyz``
        and the scheduler's first tick has ended (its log line). Returns the seconds waited."""
        started = time.monotonic()
        self.wait_connected(timeout)
        deadline = started + timeout
        while self.command == "up":
            ticked = all(
                "settlement tick ended" in log.read_text(errors="replace") for log in self.logs
            )
            if ticked and all(_answers(f"http://127.0.0.1:{p}/readyz") for p in self.api_ports):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("viu up did not finish its start-up")
            time.sleep(0.1)
        return time.monotonic() - started

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


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


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
    # what settlement reads: the rollups with the deltas not folded yet (migration
    # 0014; a baseline from before it has the rollups alone)
    view = conn.execute("SELECT coalesce(to_regclass('rollup_totals'), 'rollups')").fetchone()
    assert view is not None
    rollup = conn.execute(
        f"SELECT coalesce(sum(samples), 0)::bigint FROM {view[0]} "
        "WHERE bucket >= %s AND bucket < %s",
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
    ts_next: int = 0  # where the next workload's sample times may start (epoch s)

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

    def ingesters(self, phase: str, work: Workload, cids: list[str], group: str) -> Ingesters:
        """Start the phase's workers (``--command``: viu ingest or viu up)."""
        return Ingesters(
            self.env(work.prefix),
            cids,
            group,
            self.work_dir,
            self.spy_dir(phase),
            self.args.command,
        )

    def client_ids(self, label: str, workers: int | None = None) -> tuple[list[str], str]:
        n = self.args.workers if workers is None else workers
        group = "bench" if n > 1 else ""
        return [f"bench-{label}-{k + 1}" for k in range(n)], group

    def workload(self, phase: str, prefix: str, messages: int, per_message: int = 1) -> Workload:
        """A workload whose sample times start in its phase's month and after every earlier
        workload's (rounded up to a day), so repeated runs of a phase (scale-out, latency
        fractions) never share a ts range and each run's rows can still be counted by range."""
        start = max(phase_base(phase), self.ts_next)
        work = Workload(phase, prefix, self.args.devices, messages, per_message, start)
        end = int(work.ts_range[1].timestamp())
        self.ts_next = -(-end // 86_400) * 86_400
        if end > time.time() + 82_800:  # ingest admits samples up to a day ahead of now
            raise SystemExit(
                f"{phase} ({prefix}): sample times would reach "
                f"{datetime.fromtimestamp(end, UTC):%Y-%m-%d}, more than a day ahead of now; "
                "use fewer messages, more --devices, or fewer runs"
            )
        return work

    def spy_dir(self, phase: str) -> Path | None:
        if not self.args.py_spy:
            return None
        d = Path(self.args.py_spy) / phase
        d.mkdir(parents=True, exist_ok=True)
        return d

    # ------------------------------------------------------------------ drain a pre-loaded queue

    def preload(self, phase: str, work: Workload, what: str) -> dict[str, Any]:
        """Publish ``work`` into the broker's queue with the pre-loading publishers."""
        say(f"[{phase}] pre-loading {what} with {self.args.publishers} publishers")
        pub = preload(self.mqtt_url, work, self.args.publishers)
        say(
            f"[{phase}] broker acknowledged {pub['acked']:,}/{pub['sent']:,} in "
            f"{pub['seconds']:.1f} s ({pub['rate']:,.0f} msg/s)"
        )
        if pub["acked"] != work.messages:
            raise SystemExit(f"[{phase}] the broker did not acknowledge every message")
        return pub

    def drain(self, phase: str, work: Workload, workers: int | None = None) -> dict[str, Any]:
        """Pre-load ``work`` into fresh sessions, start ``workers`` ingesters (default
        ``--workers``), time the drain. ``phase`` (``single``, or ``single-w1`` for a
        scale-out run) names the output lines, client ids, logs and py-spy directory."""
        cids, group = self.client_ids(phase, workers)
        for cid in cids:
            create_session(self.mqtt_url, cid, subscription(work.prefix, group))
        what = f"{work.messages:,} messages ({work.samples:,} samples)"
        warm = self.args.start == "warm"
        publishing: list[dict[str, Any]] = []
        waited = 0.0
        if not warm:
            publishing.append(self.preload(phase, work, what))
        with psycopg.connect(self.url, autocommit=True) as conn:
            before = counters(conn)
            ing = self.ingesters(phase, work, cids, group)
            if warm:  # the workers' start-up first, then the publishers while they run
                waited = ing.wait_started()
                say(f"[{phase}] started in {waited:.1f} s; publishing while they run")
                live = threading.Thread(
                    target=lambda: publishing.append(self.preload(phase, work, what))
                )
                live.start()
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
            if warm:
                live.join()
            pub = publishing[0]
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
            "start": self.args.start,
            "started_in_s": waited,
            "msgs_per_s": sustained / work.per_message,
            "samples_per_s": sustained,
            "rss": rss,
            "exit_codes": codes,
            "cpu": cpu,
            "check": check,
            "workers": len(cids),
            "label": phase,
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

    def latency(
        self,
        work: Workload,
        rate: float,
        phase: str = "latency",
        fraction: float | None = None,
        capacity: float | None = None,
    ) -> dict[str, Any]:
        """Publish ``work`` at ``rate``/s into running ingesters; publish→commit percentiles.

        ``phase`` (``latency-50`` for 50 % of capacity, ``latency-fixed``) names the output
        lines, client ids and logs; ``fraction`` x ``capacity`` (the single phase's msg/s)
        is where ``rate`` came from, recorded with the result (None: a fixed rate)."""
        cids, group = self.client_ids(phase)
        for cid in cids:
            create_session(self.mqtt_url, cid, subscription(work.prefix, group))
        with psycopg.connect(self.url, autocommit=True) as conn:
            before = counters(conn)
            ing = self.ingesters(phase, work, cids, group)
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
            "p95_ms": pct(lat_ms, 95),
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
            "label": phase,
            "fraction": fraction,
            "capacity_msgs_per_s": capacity,
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
        say(f"[{phase}] {latency_line(res)}")
        return res

    # ------------------------------------------------------------------ references

    def passthrough(self, work: Workload) -> dict[str, Any]:
        """The broker's own pass-through: Debian's C client drains the same pre-loaded queue.

        ``mosquitto_sub`` creates its persistent session (MQTT v5 like viu, clean start
        false, QoS 1, a client id of its own), the queue is pre-loaded as for ``single``,
        then ``mosquitto_sub -C N -F %U`` drains it, writing one receive time stamp (its own
        clock, ns) per message to a file. The rate is timed first → last stamp, so the
        subscriber's process start-up, connect and subscribe are not in it.
        """
        phase = "passthrough"
        exe = shutil.which("mosquitto_sub")
        if exe is None:
            reason = "mosquitto_sub not found (Debian package mosquitto-clients)"
            say(f"[{phase}] SKIPPED: {reason}")
            return {"skipped": reason}
        parts = urlsplit(self.mqtt_url)
        cid = "bench-passthrough-1"
        host = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 1883)]
        base = [
            exe,
            *host,
            "-V",
            "mqttv5",
            "-i",
            cid,
            "-q",
            "1",
            "-t",
            subscription(work.prefix, ""),
        ]
        persistent = [*base, "-c", "-x", str(SESSION_EXPIRY_S)]
        subprocess.run([*persistent, "-E"], check=True, timeout=30, capture_output=True)
        pub = self.preload(phase, work, f"{work.messages:,} single-sample messages")
        stamps_file = self.work_dir / "passthrough.stamps"
        err_file = self.work_dir / "passthrough.err"
        cmd = [*persistent, "-C", str(work.messages), "-F", "%U"]
        say(f"[{phase}] {' '.join(cmd[1:])} > {stamps_file.name}")
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        broker_cpu = proc_cpu(self.broker_pid)
        busy0, total0 = machine_busy()
        with stamps_file.open("wb") as out, err_file.open("wb") as err:
            launched = time.time()
            proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        size, last_change, stalled = 0, time.monotonic(), False
        while proc.poll() is None:
            now_size = stamps_file.stat().st_size
            if now_size != size:
                size, last_change = now_size, time.monotonic()
            elif time.monotonic() - last_change > self.args.stall_s:
                proc.kill()
                proc.wait()
                stalled = True
                break
            time.sleep(0.05)
        exited = time.time()
        busy1, total1 = machine_busy()
        broker_cpu = proc_cpu(self.broker_pid) - broker_cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        sub_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        # leave no session behind: connect once with a clean start and no expiry
        subprocess.run([*base, "-E"], check=False, timeout=30, capture_output=True)
        lines = stamps_file.read_bytes().split()
        received = len(lines)
        first, last = (float(lines[0]), float(lines[-1])) if lines else (0.0, 0.0)
        span = last - first
        wall = max(exited - launched, 1e-9)
        res: dict[str, Any] = {
            "publisher": pub,
            "messages": work.messages,
            "received": received,
            "exit_code": proc.returncode,
            "stalled": stalled,
            "complete": received == work.messages and proc.returncode == 0,
            "seconds_first_to_last": span,
            "msgs_per_s": (received - 1) / span if received > 1 and span > 0 else 0.0,
            "seconds_launch_to_exit": wall,
            "startup_s": first - launched if lines else None,
            "msgs_per_s_launch_to_exit": received / wall if wall > 0 else 0.0,
            "cpu": {
                "wall": wall,
                "mosquitto_sub": sub_cpu,
                "mosquitto": broker_cpu,
                "machine_busy": busy1 - busy0,
                "machine_total": total1 - total0,
            },
            "client": " ".join(
                subprocess.run(
                    [exe, "--help"], capture_output=True, text=True, check=False
                ).stdout.splitlines()[1:2]
            ),
            "timing": (
                "first → last message by mosquitto_sub's own receive stamps (-F %U, one "
                "line per message): (N - 1) / (t_last - t_first); its process start-up, "
                "connect and subscribe are before t_first and not counted"
            ),
        }
        say(f"[{phase}] timed {res['timing']}")
        startup = f"{res['startup_s']:.2f} s" if lines else "-"
        say(
            f"[{phase}] mosquitto_sub received {received:,}/{work.messages:,} messages "
            f"(exit {proc.returncode}{', stalled and killed' if stalled else ''}): first → last "
            f"{span:.2f} s = {res['msgs_per_s']:,.0f} msg/s; launch → exit {wall:.2f} s "
            f"= {res['msgs_per_s_launch_to_exit']:,.0f} msg/s ({startup} until the first message)"
        )
        cpu = res["cpu"]
        busy = cpu["machine_busy"] / cpu["machine_total"] * 100 if cpu["machine_total"] else 0
        say(
            f"[{phase}] cpu over launch → exit {wall:.2f} s: mosquitto_sub {sub_cpu:.2f} s "
            f"({sub_cpu / wall * 100:.0f} % of a core), mosquitto {broker_cpu:.2f} s "
            f"({broker_cpu / wall * 100:.0f} % of a core); machine {busy:.0f} % busy"
        )
        if not res["complete"]:
            say(f"[{phase}] WARNING: incomplete; stderr: {err_file.read_text()[-2000:]}")
        return res

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


def latency_origin(res: dict[str, Any]) -> str:
    """Where a latency run's rate came from: ``50 % of 20,000 msg/s`` or ``fixed``."""
    if res.get("fraction") is None:
        return "fixed rate"
    return f"{res['fraction'] * 100:g} % of {res['capacity_msgs_per_s']:,.0f} msg/s capacity"


def latency_line(res: dict[str, Any]) -> str:
    """One latency run in one line: target and achieved rate, percentiles, samples, check."""
    c = res["check"]
    return (
        f"target {res['rate_target']:,.0f} msg/s ({latency_origin(res)}, "
        f"{res['workers']} worker(s)), achieved {res['publisher']['rate']:,.0f} msg/s; "
        f"publish→commit p50 {res['p50_ms']:.1f} / p95 {res['p95_ms']:.1f} / "
        f"p99 {res['p99_ms']:.1f} / max {res['max_ms']:.1f} ms over {res['observed']:,} "
        f"samples; check {'exact' if c['exact'] else 'NOT exact'} "
        f"(lost {c['lost']}, duplicated {c['duplicated']})"
    )


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


def latency_runs(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The latency runs of a result (a list; a single dict in older JSON)."""
    lat = r.get("latency")
    if lat is None:
        return []
    return lat if isinstance(lat, list) else [lat]


def checked_runs(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run that wrote samples (single, batch, latency, scale-out), each once."""
    found = [r[p] for p in ("single", "batch") if p in r] + latency_runs(r)
    found += [x for runs in r.get("scaleout", {}).values() for x in runs.values()]
    out: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for x in found:
        key = x.get("label") or id(x)
        if key not in seen:
            seen.add(key)
            out.append(x)
    return out


def pct_text(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def passthrough_ratio(r: dict[str, Any]) -> float | None:
    """viu single-sample msg/s ÷ the broker's pass-through msg/s (None when not both)."""
    pt = r.get("passthrough", {}).get("msgs_per_s")
    if "single" not in r or not pt:
        return None
    return float(r["single"]["msgs_per_s"]) / pt


def latency_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """p99 by fraction of capacity, and the issue's figure: p99 at 50 % of capacity."""
    by = {f"{x['fraction']:g}": x["p99_ms"] for x in runs if x.get("fraction") is not None}
    half = next((x for x in runs if x.get("fraction") == 0.5), None)
    capacity = next((x["capacity_msgs_per_s"] for x in runs if x.get("fraction")), None)
    return {
        "capacity_msgs_per_s": capacity,
        "p99_ms_by_fraction": by,
        "p99_ms_at_50pct": None if half is None else half["p99_ms"],
        "rate_at_50pct": None if half is None else half["rate_target"],
        "target_p99_ms": TARGETS["latency_p99_ms"],
    }


def scaleout_ratio(runs: dict[str, Any], workers: str, key: str) -> float | None:
    """A scale-out run's figure ÷ (its worker count x the one-worker figure)."""
    one = runs.get("1")
    if one is None or workers == "1" or not one[key]:
        return None
    return float(runs[workers][key]) / (int(workers) * one[key])


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
    checked = checked_runs(r)
    rss_all = [x for run in checked for x in run["rss"]]
    exact_all = [run["check"]["exact"] for run in checked]
    lost = sum(run["check"]["lost"] for run in checked)
    dup = sum(run["check"]["duplicated"] for run in checked)
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
    if "passthrough" in r:
        pt = r["passthrough"]
        if "skipped" in pt:
            rows.append(("ref: broker pass-through", f"skipped: {pt['skipped']}", "-", "-"))
        else:
            rows.append(
                (
                    "ref: broker pass-through (mosquitto_sub)",
                    f"{pt['msgs_per_s']:,.0f} msg/s ({pt['received']:,}/{pt['messages']:,} "
                    f"msgs{'' if pt['complete'] else ', INCOMPLETE'})",
                    "-",
                    "-",
                )
            )
        ratio = passthrough_ratio(r)
        if ratio is not None:
            rows.append(
                (
                    "viu single-sample msg/s ÷ broker pass-through msg/s",
                    f"{ratio:.3f} ({r['single']['msgs_per_s']:,.0f} msg/s with "
                    f"{r['single']['workers']} worker(s) ÷ {r['passthrough']['msgs_per_s']:,.0f})",
                    f">= {TARGETS['passthrough_ratio']}",
                    verdict(ratio >= TARGETS["passthrough_ratio"]),
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
    for phase, runs in r.get("scaleout", {}).items():
        for w, s in runs.items():
            ratio = scaleout_ratio(runs, w, "samples_per_s")
            rows.append(
                (
                    f"scale-out {phase}: {w} worker(s)",
                    f"{s['msgs_per_s']:,.0f} msg/s, {s['samples_per_s']:,.0f} samples/s"
                    + ("" if ratio is None else f" = {ratio:.3f} x ({w} x 1 worker)"),
                    "-" if ratio is None else f">= {TARGETS['scaleout_efficiency']} x {w}",
                    "-" if ratio is None else verdict(ratio >= TARGETS["scaleout_efficiency"]),
                )
            )
    lat_runs = latency_runs(r)
    lat = latency_summary(lat_runs)
    for s in lat_runs:
        fixed_target = s.get("fraction") is None and lat["p99_ms_at_50pct"] is None
        rows.append(
            (
                f"publish→commit @ {s['rate_target']:,.0f} msg/s ({latency_origin(s)})",
                f"p50 {s['p50_ms']:.1f} / p95 {s.get('p95_ms', float('nan')):.1f} / "
                f"p99 {s['p99_ms']:.1f} / max {s['max_ms']:.1f} ms "
                f"(achieved {s['publisher']['rate']:,.0f} msg/s)",
                f"<= {TARGETS['latency_p99_ms']} ms (p99)" if fixed_target else "-",
                verdict(s["p99_ms"] <= TARGETS["latency_p99_ms"]) if fixed_target else "-",
            )
        )
    if len(lat["p99_ms_by_fraction"]) > 1:
        fr = lat["p99_ms_by_fraction"]
        rows.append(
            (
                f"publish→commit p99 at {'/'.join(f'{float(f) * 100:g}' for f in fr)} % "
                "of capacity",
                " / ".join(f"{v:.1f}" for v in fr.values())
                + f" ms (capacity {lat['capacity_msgs_per_s']:,.0f} msg/s)",
                "-",
                "-",
            )
        )
    if lat["p99_ms_at_50pct"] is not None:
        rows.append(
            (
                "publish→commit p99 at 50 % of capacity",
                f"{lat['p99_ms_at_50pct']:.1f} ms (at {lat['rate_at_50pct']:,.0f} msg/s)",
                f"<= {TARGETS['latency_p99_ms']} ms",
                verdict(lat["p99_ms_at_50pct"] <= TARGETS["latency_p99_ms"]),
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
    if r.get("scaleout"):
        say("")
        say("scale-out CPU (from the first commit to the last; ingester = all workers):")
        for phase, runs in r["scaleout"].items():
            for w, s in runs.items():
                say(f"  {phase}, {w} worker(s): {fmt_cpu(s['cpu'])}")
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
    if r.get("passthrough", {}).get("msgs_per_s"):
        out.append(
            Figure(
                "ref: broker pass-through, mosquitto_sub (msg/s)",
                r["passthrough"]["msgs_per_s"],
                ref,
            )
        )
        ratio = passthrough_ratio(r)
        if ratio is not None:
            out.append(
                Figure(
                    "viu single-sample msg/s ÷ broker pass-through (target ≥ "
                    f"{TARGETS['passthrough_ratio']})",
                    None,
                    None,
                    f"{ratio:.3f}",
                )
            )
    if "batch" in r:
        out.append(
            Figure("100-sample messages, viu ingest (samples/s)", r["batch"]["samples_per_s"], ref)
        )
    for phase, runs in r.get("scaleout", {}).items():
        for w, s in runs.items():
            out.append(
                Figure(f"scale-out {phase}, {w} worker(s) (samples/s)", s["samples_per_s"], ref)
            )
            ratio = scaleout_ratio(runs, w, "samples_per_s")
            if ratio is not None:
                out.append(
                    Figure(
                        f"scale-out {phase}, {w} workers ÷ ({w} x 1 worker) (target ≥ "
                        f"{TARGETS['scaleout_efficiency']})",
                        None,
                        None,
                        f"{ratio:.3f}",
                    )
                )
    runs = latency_runs(r)
    for lat in runs:
        where = (
            f"{lat['rate_target']:,.0f} msg/s (fixed)"
            if lat.get("fraction") is None
            else f"{pct_text(lat['fraction'])} of capacity"
        )
        text = (
            f"p50 {lat['p50_ms']:.1f} / p99 {lat['p99_ms']:.1f} ms"
            f" @ {lat['rate_target']:,.0f} msg/s"
        )
        out.append(Figure(f"publish→commit @ {where}", None, None, text))
    lat_sum = latency_summary(runs)
    if len(lat_sum["p99_ms_by_fraction"]) > 1:
        fr = lat_sum["p99_ms_by_fraction"]
        out.append(
            Figure(
                f"publish→commit p99 at {'/'.join(f'{float(f) * 100:g}' for f in fr)} % "
                "of capacity",
                None,
                None,
                " / ".join(f"{v:.1f}" for v in fr.values()) + " ms",
            )
        )
    if lat_sum["p99_ms_at_50pct"] is not None:
        p99 = lat_sum["p99_ms_at_50pct"]
        out.append(
            Figure(
                f"publish→commit p99 at 50 % of capacity (target ≤ {TARGETS['latency_p99_ms']} ms)",
                None,
                None,
                f"{p99:.1f} ms ({verdict(p99 <= TARGETS['latency_p99_ms'])})",
            )
        )
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
    checked = checked_runs(r)
    checks = [x["check"] for x in checked]
    if checks:
        lost = sum(c["lost"] for c in checks)
        dup = sum(c["duplicated"] for c in checks)
        exact = "exact" if all(c["exact"] for c in checks) else "NOT exact"
        out.append(Figure("lost / duplicated samples", None, None, f"{lost} / {dup} ({exact})"))
    rss = [x for run in checked for x in run["rss"]]
    if rss:
        out.append(Figure("peak ingester RSS", None, None, f"{max(rss) / 2**20:.0f} MB"))
    return out


# --------------------------------------------------------------------------- main

PHASES = ("passthrough", "single", "batch", "latency", "naive", "copy")
DEFAULT_LATENCY_RATE = 10_000.0


def parse_phases(text: str) -> list[str]:
    phases = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise SystemExit(f"unknown phase(s) {', '.join(unknown)}; known: {', '.join(PHASES)}")
    return phases


def parse_fractions(text: str) -> list[float]:
    """``"0.25,0.5,0.75"`` → fractions of capacity, each > 0, in the given order."""
    try:
        out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--latency-fractions: not a list of numbers: {text!r}") from None
    if any(f <= 0 for f in out) or len(set(out)) != len(out):
        raise SystemExit("--latency-fractions: each fraction > 0, none twice")
    return out


def parse_scaleout(text: str, workers: int) -> list[int]:
    """``"1,2"`` → worker counts to drain with, ascending, always with 1 and ``--workers``."""
    if not text.strip():
        return []
    try:
        counts = {int(x) for x in text.split(",") if x.strip()}
    except ValueError:
        raise SystemExit(f"--scaleout: not a list of worker counts: {text!r}") from None
    if any(n < 1 for n in counts):
        raise SystemExit("--scaleout: worker counts are >= 1")
    return sorted(counts | {1, workers})


def latency_plan(
    fractions: Sequence[float], capacity: float | None, fixed: float | None
) -> list[tuple[float | None, float]]:
    """(fraction or None, rate) of each latency run.

    Fractions of the single phase's measured msg/s when it ran; ``--latency-rate`` when
    given explicitly (as well), or as the fallback when there is no capacity to take
    fractions of (single not run, or ``--latency-fractions ''``).
    """
    plan: list[tuple[float | None, float]] = []
    if capacity:
        plan += [(f, f * capacity) for f in fractions]
    if fixed is not None or not plan:
        plan.append((None, DEFAULT_LATENCY_RATE if fixed is None else fixed))
    return plan


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_options(p, DEFAULT_SERVER)
    p.add_argument("--database", default="viu_bench_ingest")
    p.add_argument("--keep", action="store_true", help="keep the database and the work dir")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--contracts", type=int, default=10)
    p.add_argument(
        "--messages",
        type=int,
        default=1_000_000,
        help="single-sample messages (single and passthrough phases)",
    )
    p.add_argument("--batch-messages", type=int, default=10_000)
    p.add_argument("--batch-samples", type=int, default=100, help="samples per batch message")
    p.add_argument(
        "--latency-fractions",
        default="0.25,0.5,0.75",
        help="latency runs at these fractions of the single phase's msg/s ('' for none)",
    )
    p.add_argument(
        "--latency-rate",
        type=float,
        default=None,
        help="also a latency run at this fixed msg/s; without a single phase (or with "
        f"--latency-fractions '') the only one (default {DEFAULT_LATENCY_RATE:,.0f})",
    )
    p.add_argument("--latency-seconds", type=float, default=60, help="length of each latency run")
    p.add_argument("--naive-messages", type=int, default=20_000)
    p.add_argument("--staging-chunk", type=int, default=5000)
    p.add_argument(
        "--workers", type=int, default=1, help="viu ingest processes (>1: shared subscription)"
    )
    p.add_argument(
        "--scaleout",
        default="",
        metavar="N,M,…",
        help="drain single and batch once per worker count (1 and --workers always included)",
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
        "--broker-inflight",
        type=int,
        default=None,
        help="the private broker's max_inflight_messages (default: what viu ships)",
    )
    p.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    p.add_argument("--env", action="append", default=[], help="VIU_X=value for the ingesters")
    p.add_argument(
        "--command",
        choices=["ingest", "up"],
        default="ingest",
        help="what each worker runs: viu ingest, or viu up (API and scheduler too)",
    )
    p.add_argument(
        "--start",
        choices=["cold", "warm"],
        default="cold",
        help="single and batch: cold = pre-load the queue, then start the workers and time "
        "their drain (start-up included); warm = start the workers, wait for their start-up "
        "(viu up: API ready, first settlement tick ended), then publish while they run",
    )
    p.add_argument("--py-spy", metavar="DIR", help="record py-spy raw stacks of every ingester")
    p.add_argument("--naive-worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run_drains(bench: Bench, phase: str, prefix: str, messages: int, per: int) -> None:
    """One drain with ``--workers``, or with ``--scaleout`` one per worker count (fresh
    sessions, topics, sample times and pre-load each), then the scale-out lines."""
    args = bench.args
    counts = parse_scaleout(args.scaleout, args.workers)
    if not counts:
        bench.results[phase] = bench.drain(phase, bench.workload(phase, prefix, messages, per))
        return
    runs: dict[str, Any] = {}
    for n in counts:
        work = bench.workload(phase, f"{prefix}w{n}", messages, per)
        runs[str(n)] = bench.drain(f"{phase}-w{n}", work, n)
    bench.results[phase] = runs[str(args.workers)]
    bench.results.setdefault("scaleout", {})[phase] = runs
    for w, s in runs.items():
        ratio = scaleout_ratio(runs, w, "samples_per_s")
        vs = (
            ""
            if ratio is None
            else f" = {ratio:.3f} x ({w} x 1 worker), target ≥ {TARGETS['scaleout_efficiency']}"
        )
        say(
            f"[scale-out {phase}] {w} worker(s): {s['msgs_per_s']:,.0f} msg/s, "
            f"{s['samples_per_s']:,.0f} samples/s{vs}; cpu {fmt_cpu(s['cpu'])}"
        )


def run_latency(bench: Bench) -> None:
    args = bench.args
    fractions = parse_fractions(args.latency_fractions)
    capacity = bench.results.get("single", {}).get("msgs_per_s")
    if fractions and not capacity:
        say(
            "[latency] no single phase in this run, so no capacity to take "
            f"{args.latency_fractions} of: a fixed rate instead (--latency-rate)"
        )
    runs = []
    for fraction, rate in latency_plan(fractions, capacity, args.latency_rate):
        name = "fixed" if fraction is None else f"{fraction * 100:g}"
        count = max(2, int(rate * args.latency_seconds))
        work = bench.workload("latency", f"lat{name}", count)
        runs.append(bench.latency(work, rate, f"latency-{name}", fraction, capacity))
    bench.results["latency"] = runs
    lat = latency_summary(runs)
    bench.results["latency_summary"] = lat
    if len(lat["p99_ms_by_fraction"]) > 1:
        fr = lat["p99_ms_by_fraction"]
        say(
            f"[latency] p99 at {'/'.join(f'{float(f) * 100:g}' for f in fr)} % of capacity "
            f"({capacity:,.0f} msg/s, {args.workers} worker(s)): "
            + " / ".join(f"{v:.1f}" for v in fr.values())
            + " ms"
        )
    if lat["p99_ms_at_50pct"] is not None:
        p99 = lat["p99_ms_at_50pct"]
        say(
            f"[latency] p99 at 50 % of capacity: {p99:.1f} ms, target ≤ "
            f"{TARGETS['latency_p99_ms']} ms: {verdict(p99 <= TARGETS['latency_p99_ms'])}"
        )


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
    phases = parse_phases(args.phases)
    parse_fractions(args.latency_fractions)
    parse_scaleout(args.scaleout, args.workers)
    say(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    say(f"started {datetime.now(UTC).isoformat(timespec='seconds')}")
    info = machine(args.server)
    work_dir = Path(tempfile.mkdtemp(prefix="viu-bench-ingest-"))
    url = db_url(args.server, args.database)
    recreate_database(args.server, args.database)
    setup_schema(url, args.devices, args.contracts)
    say(f"database {args.database}: migrated, {args.devices} devices in {args.contracts} contracts")
    say(f"storage: {storage_text(storage_report(url))}")

    from services.embedded import AUTOSAVE_CHANGES, MAX_INFLIGHT, start_mosquitto

    inflight = MAX_INFLIGHT if args.broker_inflight is None else args.broker_inflight
    broker = start_mosquitto(work_dir, port=None, autosave=args.broker_autosave, inflight=inflight)
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
        if "passthrough" in phases:  # the same messages as single (no database involved)
            bench.results["passthrough"] = bench.passthrough(
                Workload("single", "pt", n, args.messages)
            )
        if "single" in phases:
            run_drains(bench, "single", "b1", args.messages, 1)
        if "batch" in phases:
            run_drains(bench, "batch", "b2", args.batch_messages, args.batch_samples)
        if "latency" in phases:
            run_latency(bench)
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
