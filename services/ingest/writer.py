"""The one write path: MQTT, HTTP and dead-letter replay all end here.

One transaction stores the samples (COPY into a staging table, then
set-based SQL), keeps the previous values of corrected samples, updates the
rollups, files the dead letters and adds to the persisted counters. Because
a sample that is already stored with identical content changes nothing, a
redelivered batch is harmless: callers acknowledge after the commit and may
retry freely before it.

Two samples with the same identity in one batch are processed in arrival
order ("generations"): the later one is a correction of the earlier.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Connection, text

from schemas.timeseries import PARTITIONED, ensure_partitions, samples_backend
from services.ingest import deadletters, rollups, stats
from services.ingest.decode import Decoded, Message, decode
from services.ingest.stats import Outcome

STAGE_COLUMNS = (
    "ord, gen, device_id, ts, interval_s, uptime_min, quality_min, throughput, "
    "downtime_cause, seq, received_at"
)
SAMPLE_COLUMNS = (
    "device_id, ts, interval_s, uptime_min, quality_min, throughput, "
    "downtime_cause, seq, received_at"
)
CONTENT = "interval_s, uptime_min, quality_min, throughput, downtime_cause, seq"
# The work tables live as long as the database session and are emptied at
# every commit (and TRUNCATEd at the start, in case a transaction was rolled
# back): creating and dropping them per transaction cost more catalog work
# than the rows themselves.
SETUP = """CREATE TEMP TABLE IF NOT EXISTS _viu_stage (
         ord integer NOT NULL, gen integer NOT NULL, device_id varchar(64) NOT NULL,
         ts timestamptz NOT NULL, interval_s integer NOT NULL, uptime_min numeric NOT NULL,
         quality_min numeric NOT NULL, throughput numeric NOT NULL,
         downtime_cause varchar(16) NOT NULL, seq bigint, received_at timestamptz NOT NULL,
         kind text) ON COMMIT DELETE ROWS;
       CREATE TEMP TABLE IF NOT EXISTS _viu_old (LIKE samples) ON COMMIT DELETE ROWS;
       CREATE TEMP TABLE IF NOT EXISTS _viu_delta (LIKE samples, sign integer NOT NULL,
         gen integer) ON COMMIT DELETE ROWS;
       TRUNCATE _viu_stage, _viu_old, _viu_delta"""


def write_messages(conn: Connection, messages: Iterable[Message]) -> Outcome:
    """Decode and store payloads in the caller's transaction."""
    return write_decoded(conn, [decode(m) for m in messages])


def write_decoded(conn: Connection, batch: Sequence[Decoded]) -> Outcome:
    """Store decoded payloads: samples, revisions, rollups, dead letters, counters."""
    reject_unknown_devices(conn, batch)
    outcome = Outcome(received=sum(d.received for d in batch))
    rows = staging_rows(batch)
    if rows:
        _store_samples(conn, rows, outcome)
    rejects = [r for d in batch for r in d.rejects]
    outcome.dead_letter_ids = deadletters.file(conn, rejects)
    outcome.dead_lettered = sum(r.weight for r in rejects)
    outcome.dead_letter_reasons = [r.reason for r in rejects]
    stats.persist(conn, outcome)
    return outcome


def reject_unknown_devices(conn: Connection, batch: Sequence[Decoded]) -> None:
    """A payload for a device nobody registered is dead-lettered whole (replayable later)."""
    wanted = {d.device_id for d in batch if d.samples and d.device_id}
    if not wanted:
        return
    known = set(
        conn.execute(
            # A join, not "= ANY(:ids)": with a parameter array PostgreSQL
            # compares every device with every element (milliseconds per batch).
            text(
                "SELECT d.device_id FROM unnest(CAST(:ids AS text[])) AS u(id) "
                "JOIN devices d ON d.device_id = u.id"
            ),
            {"ids": sorted(wanted)},
        ).scalars()
    )
    for d in batch:
        if d.samples and d.device_id not in known:
            d.reject_all(f"unknown device '{d.device_id}'")


def staging_rows(batch: Sequence[Decoded]) -> list[tuple[Any, ...]]:
    """Rows for the staging table, each with its generation within the batch."""
    seen: dict[tuple[str, datetime], int] = {}
    rows: list[tuple[Any, ...]] = []
    for d in batch:
        assert d.device_id is not None or not d.samples
        for s in d.samples:
            key = (str(d.device_id), s.ts)
            seen[key] = gen = seen.get(key, 0) + 1
            rows.append(
                (
                    len(rows),
                    gen,
                    d.device_id,
                    s.ts,
                    s.interval_s,
                    s.uptime_min,
                    s.quality_min,
                    s.throughput,
                    s.downtime_cause,
                    s.seq,
                    d.message.received_at,
                )
            )
    return rows


def _store_samples(conn: Connection, rows: list[tuple[Any, ...]], outcome: Outcome) -> None:
    _lock_devices(conn, sorted({r[2] for r in rows}))
    if samples_backend(conn) == PARTITIONED:  # TimescaleDB creates its chunks itself
        ensure_partitions(conn, {r[3] for r in rows})
    _raw(conn).execute(SETUP)
    _copy(conn, rows)
    sizes = Counter(r[1] for r in rows)
    for gen in range(1, max(sizes) + 1):
        _generation(conn, gen, sizes[gen], outcome)
    rollups.apply_deltas(conn, "_viu_delta")


def _lock_devices(conn: Connection, device_ids: list[str]) -> None:
    """Shared per-device locks: an annotation (exclusive) never interleaves with a write."""
    conn.execute(
        text(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended('viu.device:' || d, 0)) "
            "FROM unnest(CAST(:ids AS text[])) WITH ORDINALITY AS u(d, n) ORDER BY n"
        ),
        {"ids": device_ids},
    )


def _raw(conn: Connection) -> psycopg.Connection[Any]:
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw  # type: ignore[no-any-return]


def _copy(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    with (
        _raw(conn).cursor() as cur,
        cur.copy(f"COPY _viu_stage ({STAGE_COLUMNS}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _generation(conn: Connection, gen: int, size: int, outcome: Outcome) -> None:
    """Classify one generation as new / duplicate / correction and apply it.

    The new rows and their rollup deltas are written by one statement; only
    when some rows already existed are the staged rows marked and joined
    (after ANALYZE, so the planner hashes instead of looping over pairs).
    """
    p = {"g": gen}
    new = conn.execute(text(INSERT_NEW), p).rowcount
    outcome.stored += new
    if new < size:
        conn.execute(text("ANALYZE _viu_stage, _viu_delta"))
        conn.execute(text(MARK_NEW), p)
        conn.execute(text("TRUNCATE _viu_old"))
        conn.execute(text(LOCK_OLD), p)
        conn.execute(text("ANALYZE _viu_old"))
        classified = conn.execute(text(CLASSIFY), p).mappings().all()
        kinds = {r["kind"]: r["n"] for r in classified}
        outcome.duplicates += kinds.get("duplicate", 0)
        outcome.corrections += kinds.get("correction", 0)
        if kinds.get("correction"):
            for statement in CORRECT:
                conn.execute(text(statement), p)


# The new rows of a generation go into samples and, as +1 deltas, into
# _viu_delta in one statement (RETURNING feeds the second insert).
INSERT_NEW = f"""
WITH ins AS (
  INSERT INTO samples ({SAMPLE_COLUMNS})
  SELECT {SAMPLE_COLUMNS} FROM _viu_stage WHERE gen = :g ORDER BY device_id, ts
  ON CONFLICT (device_id, ts) DO NOTHING
  RETURNING {SAMPLE_COLUMNS})
INSERT INTO _viu_delta ({SAMPLE_COLUMNS}, sign, gen)
SELECT {SAMPLE_COLUMNS}, 1, :g FROM ins
"""

MARK_NEW = """
UPDATE _viu_stage s SET kind = 'new' FROM _viu_delta d
WHERE s.gen = :g AND d.gen = :g AND d.sign = 1 AND s.device_id = d.device_id AND s.ts = d.ts
"""

# Locking the stored rows first means a concurrent writer cannot change them
# between classification and update (READ COMMITTED re-reads the latest version).
LOCK_OLD = """
INSERT INTO _viu_old
SELECT s.* FROM samples s JOIN _viu_stage n ON n.device_id = s.device_id AND n.ts = s.ts
WHERE n.gen = :g AND n.kind IS NULL ORDER BY s.device_id, s.ts FOR UPDATE OF s
"""

CLASSIFY = f"""
WITH c AS (
  UPDATE _viu_stage n SET kind = CASE
    WHEN (o.{CONTENT.replace(", ", ", o.")}) IS NOT DISTINCT FROM
         (n.{CONTENT.replace(", ", ", n.")})
    THEN 'duplicate' ELSE 'correction' END
  FROM _viu_old o
  WHERE n.gen = :g AND n.kind IS NULL AND o.device_id = n.device_id AND o.ts = n.ts
  RETURNING n.kind)
SELECT kind, count(*) AS n FROM c GROUP BY kind
"""

_CORRECTED = (
    "FROM _viu_old o JOIN _viu_stage n ON n.device_id = o.device_id AND n.ts = o.ts "
    "WHERE n.gen = :g AND n.kind = 'correction'"
)
CORRECT = (
    f"INSERT INTO sample_revisions ({SAMPLE_COLUMNS}, revised_at) "
    f"SELECT o.{SAMPLE_COLUMNS.replace(', ', ', o.')}, now() {_CORRECTED}",
    f"INSERT INTO _viu_delta ({SAMPLE_COLUMNS}, sign) "
    f"SELECT o.{SAMPLE_COLUMNS.replace(', ', ', o.')}, -1 {_CORRECTED}",
    f"INSERT INTO _viu_delta ({SAMPLE_COLUMNS}, sign) "
    f"SELECT n.{SAMPLE_COLUMNS.replace(', ', ', n.')}, 1 {_CORRECTED}",
    """UPDATE samples s SET interval_s = n.interval_s, uptime_min = n.uptime_min,
         quality_min = n.quality_min, throughput = n.throughput,
         downtime_cause = n.downtime_cause, seq = n.seq, received_at = n.received_at
       FROM _viu_stage n
       WHERE n.gen = :g AND n.kind = 'correction' AND s.device_id = n.device_id AND s.ts = n.ts""",
)
