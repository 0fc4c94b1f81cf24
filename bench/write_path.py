"""The write path in one process, without MQTT: where one sample's time goes.

Decodes the batch phase's payloads (100-sample messages, the same as
``bench/ingest.py``) and writes them through ``pipeline.ingest_decoded`` in
transactions of ``--per-txn`` samples, one after the other, on one
connection. It prints per sample: the decoder's CPU time, the writer's own
CPU time (its Python, measured with ``time.thread_time``) and its wall time
(Python plus waiting on PostgreSQL), next to a binary COPY of the same rows
into a plain table with the samples primary key, measured in the same run.

No broker, no threads: it isolates the code a change to the write path
touches, so a change can be measured in seconds. ``bench/ingest.py`` remains
the measurement of record (it runs the real ``viu ingest`` process).

    .venv/bin/python bench/write_path.py --server postgresql://postgres@127.0.0.1:5432
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import pstats
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from backends import COPY_TYPES
from ingest import (
    INTERVAL_S,
    Workload,
    db_url,
    drop_database,
    recreate_database,
    setup_schema,
    values,
)

from services.db import make_engine
from services.ingest import pipeline, rollups, writer
from services.ingest.decode import Message, decode


def copy_reference(url: str, work: Workload) -> float:
    """Seconds for a binary COPY of the workload's rows into a fresh keyed table."""
    from decimal import Decimal

    received = datetime.now(UTC)
    rows = []
    for i in range(work.messages):
        first = work.first_ts(i)
        for j in range(work.per_message):
            k = i * work.per_message + j
            up, q, t, cause = values(k)
            rows.append(
                (
                    work.device(i),
                    datetime.fromtimestamp(first + j * INTERVAL_S, UTC),
                    INTERVAL_S,
                    Decimal(up),
                    Decimal(q),
                    Decimal(t),
                    cause or "unplanned",
                    k,
                    received,
                )
            )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS write_path_ref")
        conn.execute(
            "CREATE TABLE write_path_ref (device_id varchar(64), ts timestamptz, "
            "interval_s int, uptime_min numeric, quality_min numeric, throughput numeric, "
            "downtime_cause varchar(16), seq bigint, received_at timestamptz, "
            "PRIMARY KEY (device_id, ts))"
        )
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy("COPY write_path_ref FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        return time.perf_counter() - started


def _fold(engine: Any) -> float:
    """One fold of the appended rollup deltas and the vacuum after it, as the ingester's folder: the wall time."""
    started = time.perf_counter()
    with engine.begin() as conn:
        rollups.fold(conn)
    rollups.vacuum_deltas(engine)
    return time.perf_counter() - started


def _time_statements() -> dict[str, float]:
    """Wall time per round trip (its statement's first words), measured around psycopg.

    Covers what SQLAlchemy sends, what the writer sends to psycopg directly
    (the staging COPY, the savepoint and insert) and the commit.
    """
    totals: dict[str, float] = {}

    def timed(key: str, t0: float) -> None:
        totals[key] = totals.get(key, 0.0) + time.perf_counter() - t0

    real_execute, real_copy, real_commit = (
        psycopg.Cursor.execute,
        psycopg.Cursor.copy,
        psycopg.Connection.commit,
    )

    def execute(cur: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real_execute(cur, query, *args, **kwargs)
        finally:
            timed(" ".join(str(query).split())[:70], t0)

    @contextlib.contextmanager
    def copy(cur: Any, statement: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        t0 = time.perf_counter()
        try:
            with real_copy(cur, statement, *args, **kwargs) as c:
                yield c
        finally:
            timed(" ".join(str(statement).split())[:70], t0)

    def commit(conn: Any) -> None:
        t0 = time.perf_counter()
        try:
            real_commit(conn)
        finally:
            timed("COMMIT", t0)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    psycopg.Cursor.copy = copy  # type: ignore[method-assign,assignment]
    psycopg.Connection.commit = commit  # type: ignore[method-assign]
    return totals


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--database", default="viu_bench_ingest_write_path")
    p.add_argument("--messages", type=int, default=5000, help="100-sample messages")
    p.add_argument("--per-message", type=int, default=100)
    p.add_argument("--per-txn", type=int, default=5000, help="samples per transaction")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--no-prepare", action="store_true", help="the writer formats the rows")
    p.add_argument("--profile", type=int, default=0, help="cProfile the writer: top N functions")
    p.add_argument("--sort", default="tottime", help="the profile's order (e.g. cumulative)")
    p.add_argument(
        "--pre-ping", action="store_true", help="ping each pooled connection (the API's pools do)"
    )
    a = p.parse_args()
    if not a.database.startswith("viu_bench_ingest"):
        p.error("--database must start with viu_bench_ingest")
    recreate_database(a.server, a.database)
    url = db_url(a.server, a.database)
    try:
        setup_schema(url, a.devices, 10)
        work = Workload("batch", "viu", a.devices, a.messages, a.per_message)
        topics = [work.topic(i).decode() for i in range(a.messages)]
        payloads = [work.payload(i) for i in range(a.messages)]
        received = datetime.now(UTC)
        per_batch = max(1, a.per_txn // a.per_message)
        engine = make_engine(url, pre_ping=a.pre_ping)  # the ingester's pool does not ping
        gc.freeze()
        gc.set_threshold(50_000, 20, 10)
        decode_cpu = write_cpu = write_wall = fold_wall = 0.0
        # The ingester folds the appended rollup deltas every FOLD_EVERY_S on a
        # connection of its own; here the folds are timed apart from the writes.
        fold = getattr(rollups, "fold", None)
        fold_every = getattr(rollups, "FOLD_EVERY_S", 1.0)
        last_fold = time.perf_counter()
        statements = _time_statements()
        prof = cProfile.Profile() if a.profile else None
        for start in range(0, a.messages, per_batch):
            msgs = [
                Message(topics[i], payloads[i], received)
                for i in range(start, min(start + per_batch, a.messages))
            ]
            t0 = time.thread_time()
            decoded = [decode(m) for m in msgs]
            staging = None
            if not a.no_prepare:  # as the decoder thread of viu ingest does
                staging = writer.prepare(decoded)  # None before round 21
            t1 = time.thread_time()
            w0 = time.perf_counter()
            if prof:
                prof.enable()
            given = {} if staging is None else {"staging": staging}
            outcome = pipeline.ingest_decoded(engine, decoded, attempts=1, **given)
            if prof:
                prof.disable()
            write_wall += time.perf_counter() - w0
            t2 = time.thread_time()
            decode_cpu += t1 - t0
            write_cpu += t2 - t1
            assert outcome.stored == sum(len(d.samples) for d in decoded), outcome
            if fold is not None and time.perf_counter() - last_fold >= fold_every:
                fold_wall += _fold(engine)
                last_fold = time.perf_counter()
        if fold is not None:
            fold_wall += _fold(engine)
        engine.dispose()
        statements = dict(statements)  # the writes' alone, not the reference COPY's
        n = work.samples
        copies = [copy_reference(url, work) for _ in range(3)]
        copy_s = statistics.median(copies)
        us = 1e6 / n
        print(f"{n} samples in {a.messages} messages, {per_batch} messages per transaction")
        print(f"decoder CPU      {decode_cpu * us:6.2f} µs/sample")
        print(f"writer CPU       {write_cpu * us:6.2f} µs/sample (its Python)")
        print(f"writer wall      {write_wall * us:6.2f} µs/sample (Python + waiting on PostgreSQL)")
        if fold is not None:
            print(f"fold wall        {fold_wall * us:6.2f} µs/sample (rollup deltas into rollups)")
        total = decode_cpu + write_wall + fold_wall
        print(f"decode + write   {total * us:6.2f} µs/sample serial")
        print(f"binary COPY      {copy_s * us:6.2f} µs/row (median of {copies})")
        for what, seconds in sorted(statements.items(), key=lambda kv: -kv[1]):
            print(f"  statement {seconds * us:6.2f} µs/sample  {what}")
        serial = n / total
        print(
            f"serial rate {serial:,.0f} samples/s = {serial * copy_s / n:.3f} of COPY "
            f"({n / copy_s:,.0f} rows/s)"
        )
        if prof:
            pstats.Stats(prof).sort_stats(a.sort).print_stats(a.profile)
    finally:
        drop_database(a.server, a.database)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
