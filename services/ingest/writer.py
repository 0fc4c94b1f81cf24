"""The one write path: MQTT, HTTP and dead-letter replay all end here.

One transaction stores the samples (COPY into a staging table, then
set-based SQL), keeps the previous values of corrected samples, appends the
rollup deltas (``rollups.fold`` adds them to the rollups later), files the
dead letters and adds to the persisted counters. Because
a sample that is already stored with identical content changes nothing, a
redelivered batch is harmless: callers acknowledge after the commit and may
retry freely before it.

Two samples with the same identity in one batch are processed in arrival
order ("generations"): the later one is a correction of the earlier.

Stored rows are locked and changed only through ``INSERT … ON CONFLICT``:
TimescaleDB refuses ``SELECT … FOR UPDATE`` on compressed rows ("locking
compressed tuples is not supported") and an ``UPDATE … FROM`` join
decompresses every batch of the chunk it cannot rule out, while an insert's
conflict check decompresses exactly the batches holding the conflicting keys.
The same statements serve plain PostgreSQL, so both backends run one path.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import psycopg
from sqlalchemy import Connection, text

from schemas.timeseries import (
    PARTITIONED,
    ensure_partitions,
    forget_partitions,
    forget_partitions_everywhere,
    month_start,
    next_month,
    samples_backend,
)
from services import dberrors
from services.db import driver_connection
from services.ingest import connectivity, deadletters, rollups, stats
from services.ingest.admission import (
    DEFAULT_WINDOW,
    DEVICES,
    SCREEN_EPOCH,
    Devices,
    Taken,
    Window,
    admit,
    devices_cursor,
    id_list,
    screen_cache,
    wanted,
)
from services.ingest.decode import Decoded, Message, decode
from services.ingest.stats import Outcome

SAMPLE_COLUMNS = (
    "device_id, ts, interval_s, uptime_min, quality_min, throughput, "
    "downtime_cause, seq, received_at"
)
STAGE_COLUMNS = f"gen, {SAMPLE_COLUMNS}"
CONTENT = "interval_s, uptime_min, quality_min, throughput, downtime_cause, seq"
# Numbers reach PostgreSQL as the exact text of the Decimal and are cast there:
# psycopg's binary dumper spends 0.6 µs on each Decimal, more than the rest of
# the row together.
RAW_TYPES = (
    "int4",
    "text",
    "timestamptz",
    "int4",
    "text",
    "text",
    "text",
    "text",
    "int8",
    "timestamptz",
)
TYPED = (
    "gen, device_id, ts, interval_s, uptime_min::numeric AS uptime_min, "
    "quality_min::numeric AS quality_min, throughput::numeric AS throughput, "
    "downtime_cause, seq, received_at"
)
FIRST_GENERATION = f"(SELECT {TYPED} FROM _viu_raw WHERE gen = 1)"
# _viu_raw lives as long as the database session and is emptied at every
# commit (rows of a rolled-back transaction are never visible): creating and
# dropping it per transaction cost more catalog work than the rows themselves.
# Its columns are bounded (a device id of the JSON format or of the devices
# table, a Decimal's text within ``exact_number``'s 20 + 30 digits, a
# vocabulary word) so that it has no TOAST table: emptying a table at commit
# also empties its TOAST table and rebuilds that table's index, which made
# each commit cost about 1 ms more per work table (docs/benchmarks.md,
# issue 17 round 5). The tables that classify a batch holding stored rows
# (_viu_stage with typed numbers, _viu_old, _viu_delta) exist only in the
# transactions that need them (CLASSIFY_SETUP): kept for the session, they
# would be emptied at every commit too.
SETUP = """CREATE TEMP TABLE IF NOT EXISTS _viu_raw (
         gen integer NOT NULL, device_id varchar(64) NOT NULL, ts timestamptz NOT NULL,
         interval_s integer NOT NULL, uptime_min varchar(100) NOT NULL,
         quality_min varchar(100) NOT NULL, throughput varchar(100) NOT NULL,
         downtime_cause varchar(16) NOT NULL, seq bigint,
         received_at timestamptz NOT NULL) ON COMMIT DELETE ROWS"""
CLASSIFY_SETUP = """CREATE TEMP TABLE _viu_stage (
         gen integer NOT NULL, device_id varchar(64) NOT NULL,
         ts timestamptz NOT NULL, interval_s integer NOT NULL, uptime_min numeric NOT NULL,
         quality_min numeric NOT NULL, throughput numeric NOT NULL,
         downtime_cause varchar(16) NOT NULL, seq bigint, received_at timestamptz NOT NULL,
         kind text) ON COMMIT DROP;
       CREATE TEMP TABLE _viu_old (LIKE samples) ON COMMIT DROP;
       CREATE TEMP TABLE _viu_delta (LIKE samples, sign integer NOT NULL,
         gen integer) ON COMMIT DROP"""
# Late data into compressed TimescaleDB chunks decompresses the batches it
# touches (up to 1,000 rows each); the default cap of 100,000 rows per
# transaction would refuse a large late backfill as if its data were bad
# (tests/ingest/test_compressed.py). Sent with SETUP: no extra round trip.
UNCAPPED = "SET LOCAL timescaledb.max_tuples_decompressed_per_dml_transaction = 0"
# PIPELINED: several statements go in one round trip (``psycopg.Connection.
# pipeline``); after an error PostgreSQL skips the rest until the pipeline's
# end. psycopg 3.3 keeps a statement that it meant to prepare in such a skipped
# part as prepared, and a later execution then fails with "prepared statement
# _pg3_N does not exist" (the error a rollback to a savepoint leaves behind).
# So a statement that follows one that can fail on its own in a pipeline is
# sent with prepare=False.
# Shared per-device locks, in the order given: an annotation (exclusive) never
# interleaves with a write.
LOCK = (
    "SELECT pg_advisory_xact_lock_shared(hashtextextended('viu.device:' || d, 0)) "
    "FROM json_array_elements_text(CAST(%(ids)s AS json)) WITH ORDINALITY AS u(d, n) ORDER BY n"
)
# Whether an annotation covers any of the batch's devices within its span:
# without one, the rollups skip the per-sample lookup of the effective cause.
# Uncorrelated, so PostgreSQL answers it once per statement. Stable for the
# rest of the transaction: an annotation is written under the exclusive
# device lock that LOCK holds shared.
ANNOTATED = (
    "(SELECT EXISTS (SELECT 1 FROM json_array_elements_text(CAST(%(device_ids)s AS json)) AS u(id) "
    "JOIN annotations a ON a.device_id = u.id "
    "WHERE a.from_ts <= %(last)s AND a.to_ts > %(first)s))"
)
# Per batch, one of two: rows summed per device and bucket when the batch
# holds several samples per device (``SUMMED_FROM``), else one row per sample.
ROLLUPS_OF_NEW = {
    summed: rollups.append(FIRST_GENERATION, "1", ANNOTATED, summed=summed)
    for summed in (True, False)
}
SUMMED_FROM = 2  # samples per device in the batch, on average
ROLLUPS_OF_DELTAS = rollups.append("_viu_delta", annotated=ANNOTATED)


def write_messages(
    conn: Connection, messages: Iterable[Message], window: Window = DEFAULT_WINDOW
) -> Outcome:
    """Decode and store payloads in the caller's transaction."""
    return write_decoded(conn, [decode(m) for m in messages], window)


def write_decoded(
    conn: Connection,
    batch: Sequence[Decoded],
    window: Window = DEFAULT_WINDOW,
    staging: Staging | None = None,
) -> Outcome:
    """Store decoded payloads: samples, revisions, rollups, dead letters, counters.

    The usual batch (new samples, nothing refused) takes four round trips
    and the commit: one opens the write (device locks, the work table, the
    screen's question), two are the COPY, and one stores (savepoint, rollup
    deltas, counters, insert), each several statements in a psycopg pipeline.

    ``staging``: what ``prepare`` returned for ``batch`` as it is now; used
    unless the screen changes the batch (then it is worked out again).
    """
    ids = staging.devices if staging is not None else wanted(batch)
    if ids and admit(batch, _open(conn, ids), window):
        staging = None  # the screen moved samples to rejects
    if staging is None:
        staging = Staging.of(batch)
    rejects = [r for d in batch for r in d.rejects]
    events = [e for d in batch for e in d.events]
    # sum(d.received), without a property call and a generator per payload
    outcome = Outcome(received=staging.size + sum([r.weight for r in rejects]))
    counted = False
    if staging.size:
        counted = _store_samples(conn, staging, outcome, count=not rejects and not events)
    connectivity.record(conn, events)
    outcome.dead_letter_ids = deadletters.file(conn, rejects)
    outcome.dead_lettered = sum(r.weight for r in rejects)
    outcome.dead_letter_reasons = [r.reason for r in rejects]
    if not counted:
        stats.persist(conn, outcome)
    return outcome


def _open(conn: Connection, ids: list[str]) -> Devices:
    """One round trip: the screen's answers, the devices' shared locks, the work table.

    ``ids``: the batch's device ids, sorted. The screen asks ``DEVICES`` only
    about the devices whose answers the engine's ``ScreenCache`` does not
    hold, after reading ``SCREEN_EPOCH``; in the rare batch that finds the
    epoch moved, a second round trip asks about all of them. Every device
    the batch names is locked, registered or not (a lock on an unknown one
    holds nothing up). The statements after ``DEVICES`` are not prepared
    (``PIPELINED``): a lock can time out.
    """
    timescale = samples_backend(conn) != PARTITIONED
    raw = driver_connection(conn)
    cache = screen_cache(conn)
    taken = cache.take(ids)
    asked = taken.asked
    with devices_cursor(conn) as devices, raw.cursor() as epoch:
        with raw.pipeline():
            epoch.execute(SCREEN_EPOCH)
            if asked:
                devices.execute(DEVICES, {"ids": id_list(asked)})
            raw.execute(LOCK, {"ids": id_list(ids)}, prepare=False)
            raw.execute(SETUP, prepare=False)
            if timescale:
                raw.execute(UNCAPPED, prepare=False)
        row = epoch.fetchone()
        current = row[0] if row else None
        known = cache.answer(taken, current, devices.fetchall() if asked else [])
        if known is None:  # the epoch moved since the kept answers were read
            devices.execute(DEVICES, {"ids": id_list(ids)})
            known = cache.answer(Taken(current, {}, ids), current, devices.fetchall())
        assert known is not None  # nothing kept was used
        return known


def prepare(batch: Sequence[Decoded]) -> Staging:
    """Format each payload's samples as staging rows ahead of its write (``Decoded.staged``).

    The MQTT decoder thread calls this while the writer waits on PostgreSQL,
    which takes the per-sample formatting off the writer's path, and with it
    the batch's ``Staging`` (its rows, devices, time span and months), which
    it returns for ``write_decoded``: the writer is the one thread of the
    ingester that waits on PostgreSQL in between, so what it need not do in
    Python shortens every transaction. Anything that changes a payload's
    samples afterwards (``screen``) drops its text and makes the writer work
    the staging out again.
    """
    tails: dict[datetime, str] = {}  # the messages of one socket read share a receive time
    for d in batch:
        if d.samples and d.device_id is not None:
            received = d.message.received_at
            if (tail := tails.get(received)) is None:
                tail = tails[received] = f"\t{received.isoformat()}\n"
            d.staged = _text_rows(d, tail)
        else:
            d.staged = None
    return Staging.of(batch)


def _text_rows(d: Decoded, tail: str) -> str:
    """``_viu_raw`` rows of generation 1 in COPY's text format (``tail``: the receive time and newline).

    Exact: a datetime's ``isoformat`` and a Decimal's ``str`` are what
    PostgreSQL's input functions read back unchanged (``isoformat`` rather
    than ``str``: the same text with a ``T``, and cheaper). A device id is
    escaped for COPY (the JSON format's ids cannot hold a tab or a backslash,
    but another format's may); a cause is one of the vocabulary's words.
    """
    device_id = str(d.device_id)
    head = _remembered_head(device_id) if len(device_id) <= 64 else _row_head(device_id)
    if len(d.samples) == 1:  # the usual MQTT message: no list to join
        s = d.samples[0]
        return (
            f"{head}{_iso(s.ts)}\t{s.interval_s}\t{s.uptime_min!s}\t{s.quality_min!s}"
            f"\t{s.throughput!s}\t{s.downtime_cause}\t{_NULL if s.seq is None else s.seq}{tail}"
        )
    return "".join(
        [
            f"{head}{_iso(s.ts)}\t{s.interval_s}\t{s.uptime_min!s}\t{s.quality_min!s}"
            f"\t{s.throughput!s}\t{s.downtime_cause}\t{_NULL if s.seq is None else s.seq}{tail}"
            for s in d.samples
        ]
    )


_NULL = "\\N"
# A timestamp's text, made once per distinct instant: devices report on the
# same minute boundaries, so most of a batch's timestamps recur across devices,
# and ``isoformat`` of an aware datetime costs more than the rest of the row's
# fields together. Equal instants share one text (every sample's ``ts`` is in
# UTC, and PostgreSQL reads any offset's text of an instant as that instant).
_iso = functools.lru_cache(maxsize=1 << 14)(datetime.isoformat)


def _row_head(device_id: str) -> str:
    """The generation and the escaped device id: the same for every row of a device."""
    return f"1\t{_copy_text(device_id)}\t"


_remembered_head = functools.lru_cache(maxsize=1 << 14)(_row_head)


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_text(value: str) -> str:
    if _COPY_SPECIAL.search(value):
        value = (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


@dataclass
class Staging:
    """What one write stages: the batch's rows and the facts about them the SQL needs."""

    size: int = 0
    devices: list[str] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None
    months: set[datetime] = field(default_factory=set)
    sizes: Counter[int] = field(default_factory=Counter)  # rows per generation
    text: str | None = None  # COPY text rows, when every row is of generation 1 and prepared
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # else binary COPY rows

    @classmethod
    def of(cls, batch: Sequence[Decoded]) -> Staging:
        """Per payload, not per sample: the per-sample loops run in C (``map``, ``set.update``).

        A single-sample payload (the common MQTT message) skips the lists, and
        a month already seen in this batch is not worked out again.
        """
        st = cls()
        stamps: dict[str, set[datetime]] = {}
        seen_months: set[tuple[int, int]] = set()
        months = st.months
        repeated = False
        texts: list[str] | None = []
        first: datetime | None = None
        last: datetime | None = None
        size = 0
        for d in batch:
            samples = d.samples
            if not samples:
                continue
            assert d.device_id is not None
            seen = stamps.get(d.device_id)
            if seen is None:
                seen = stamps[d.device_id] = set()
            if len(samples) == 1:
                lo = hi = samples[0].ts
                if lo in seen:
                    repeated = True
                seen.add(lo)
                size += 1
            else:
                ts = list(map(_TS, samples))
                before = len(seen)
                seen.update(ts)
                if len(seen) - before < len(ts):
                    repeated = True
                lo, hi = min(ts), max(ts)
                size += len(ts)
            if first is None or lo < first:
                first = lo
            if last is None or hi > last:
                last = hi
            month = (lo.year, lo.month)
            one_utc_month = lo.tzinfo is UTC is hi.tzinfo and month == (hi.year, hi.month)
            if not one_utc_month or month not in seen_months:
                months.update(_months(lo, hi))
                if one_utc_month:
                    seen_months.add(month)
            if texts is not None and d.staged is not None:
                texts.append(d.staged)
            else:
                texts = None
        st.first, st.last, st.size = first, last, size
        st.devices = sorted(stamps)
        if repeated or texts is None:
            st.rows = staging_rows(batch)
            st.sizes = Counter(r[0] for r in st.rows)
        else:
            st.text = "".join(texts)
            st.sizes = Counter({1: st.size})
        return st


def _months(lo: datetime, hi: datetime) -> list[datetime]:
    """The UTC months from ``lo``'s to ``hi``'s (a payload spans one or two)."""
    months = [month_start(lo)]
    while next_month(months[-1]) <= hi:
        months.append(next_month(months[-1]))
    return months


_TS = attrgetter("ts")


def staging_rows(batch: Sequence[Decoded]) -> list[tuple[Any, ...]]:
    """Rows for ``_viu_raw``, each with its generation within the batch."""
    seen: dict[tuple[str, datetime], int] = {}
    rows: list[tuple[Any, ...]] = []
    for d in batch:
        assert d.device_id is not None or not d.samples
        for s in d.samples:
            key = (str(d.device_id), s.ts)
            seen[key] = gen = seen.get(key, 0) + 1
            rows.append(
                (
                    gen,
                    d.device_id,
                    s.ts,
                    s.interval_s,
                    str(s.uptime_min),
                    str(s.quality_min),
                    str(s.throughput),
                    s.downtime_cause,
                    s.seq,
                    d.message.received_at,
                )
            )
    return rows


def _store_samples(conn: Connection, st: Staging, outcome: Outcome, *, count: bool) -> bool:
    """Store the staged samples; True if the persisted counters were added too.

    ``count``: nothing but these samples changes ``outcome`` (no dead letter,
    no state event), so an all-new batch adds its counters in its last round trip.
    """
    assert st.first is not None and st.last is not None
    # devices: READ_OLD's array, which lets TimescaleDB skip compressed
    # batches (the rare classifying path); device_ids: ANNOTATED's (``id_list``).
    span = {
        "devices": st.devices,
        "device_ids": id_list(st.devices),
        "first": st.first,
        "last": st.last,
    }
    if samples_backend(conn) == PARTITIONED:  # TimescaleDB creates its chunks itself
        ensure_partitions(conn, st.months)
    try:
        return _stage_and_insert(conn, st, span, outcome, count)
    except Exception as exc:
        if forget_partitions(conn) and dberrors.sqlstate(exc) == CHECK_VIOLATION:
            # "no partition of relation samples found for row": one may have been
            # dropped since this connection saw it; the retry looks in the catalog.
            forget_partitions_everywhere()
            raise dberrors.Retry("a partition of samples is gone; writing the batch again") from exc
        raise


CHECK_VIOLATION = "23514"


def _stage_and_insert(
    conn: Connection, st: Staging, span: dict[str, Any], outcome: Outcome, count: bool
) -> bool:
    _copy(conn, st)
    raw = driver_connection(conn)
    last = max(st.sizes)
    first = 1
    counts = None
    if count and last == 1:  # all new, this is the whole outcome
        counts = Outcome(received=outcome.received, stored=st.sizes[1]).counts()
    summed = st.size >= SUMMED_FROM * len(st.devices)
    if _insert_all_new(conn, span, counts, summed=summed):
        outcome.stored += st.sizes[1]
        first = 2
    if first > last:
        return counts is not None
    raw.execute(
        f"{CLASSIFY_SETUP}; INSERT INTO _viu_stage ({STAGE_COLUMNS}) SELECT {TYPED} FROM _viu_raw"
    )
    for gen in range(first, last + 1):
        _generation(conn, gen, st.sizes[gen], span, outcome)
    raw.execute(ROLLUPS_OF_DELTAS, span)
    return False


def _insert_all_new(
    conn: Connection, span: dict[str, Any], counts: dict[str, int] | None, *, summed: bool
) -> bool:
    """Store the first generation with a plain INSERT, if none of it is stored yet.

    The usual case (new data) then needs no classification: every staged row
    is new and the staging table itself is the rollup delta (``summed``: per
    device and bucket, ``rollups.append``). One stored row
    (a redelivery, a correction) undoes the attempt, and the caller classifies.
    (Adding the rollups in the same statement, from the INSERT's RETURNING
    rows, was measured slower: 6.3 against 5.5 µs per sample.)

    The savepoint, the rollups of the staged rows, (``counts``) the persisted
    counters and the INSERT go in one round trip (a psycopg pipeline). The
    INSERT comes last, so its failure skips nothing, and the rollback to the
    savepoint undoes the rest. The rollups statement is prepared (measured:
    its planning cost 5-20 % of the writer's time per 50-message batch); it
    follows only the savepoint (``PIPELINED``). The savepoint is not released:
    the commit releases it, and a release would be one more round trip per batch.
    """
    raw = driver_connection(conn)
    try:
        with raw.pipeline():
            raw.execute(f"SAVEPOINT {ALL_NEW_SAVEPOINT}", prepare=False)
            raw.execute(ROLLUPS_OF_NEW[summed], span)
            if counts is not None:
                raw.execute(stats.ADD, counts, prepare=False)
            raw.execute(INSERT_ALL_NEW, prepare=False)
    except psycopg.errors.UniqueViolation:
        raw.execute(f"ROLLBACK TO SAVEPOINT {ALL_NEW_SAVEPOINT}")
        return False
    return True


def _copy(conn: Connection, st: Staging) -> None:
    if st.text is not None:
        with (
            driver_connection(conn).cursor() as cur,
            cur.copy(f"COPY _viu_raw ({STAGE_COLUMNS}) FROM STDIN") as copy,
        ):
            copy.write(st.text)
        return
    with (
        driver_connection(conn).cursor() as cur,
        cur.copy(f"COPY _viu_raw ({STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(RAW_TYPES)
        for row in st.rows:
            copy.write_row(row)


def _generation(
    conn: Connection, gen: int, size: int, span: dict[str, Any], outcome: Outcome
) -> None:
    """Classify one generation as new / duplicate / correction and apply it.

    One statement inserts the new rows (writing their rollup deltas) and
    locks the stored ones; only when some rows already existed are the
    staged rows marked and joined (after ANALYZE, so the planner hashes
    instead of looping over pairs).
    """
    p = {"g": gen}
    new = conn.execute(text(INSERT_NEW), p).rowcount
    outcome.stored += new
    if new < size:
        conn.execute(text("ANALYZE _viu_stage, _viu_delta"))
        conn.execute(text(MARK_NEW), p)
        conn.execute(text("TRUNCATE _viu_old"))
        conn.execute(text(READ_OLD), p | span)
        conn.execute(text("ANALYZE _viu_old"))
        classified = conn.execute(text(CLASSIFY), p).mappings().all()
        kinds = {r["kind"]: r["n"] for r in classified}
        outcome.duplicates += kinds.get("duplicate", 0)
        outcome.corrections += kinds.get("correction", 0)
        if kinds.get("correction"):
            for statement in CORRECT:
                conn.execute(text(statement), p)


ALL_NEW_SAVEPOINT = "viu_all_new"
INSERT_ALL_NEW = f"""
INSERT INTO samples ({SAMPLE_COLUMNS})
SELECT {SAMPLE_COLUMNS} FROM {FIRST_GENERATION} r ORDER BY device_id, ts
"""

# The new rows of a generation go into samples and, as +1 deltas, into
# _viu_delta in one statement (RETURNING feeds the second insert). A stored
# row is not changed ("WHERE false") but locked, as ON CONFLICT DO UPDATE
# locks every conflicting row: a concurrent writer cannot change it between
# classification and correction, and READ_OLD, a later statement, sees its
# latest committed version. (FOR UPDATE would do the same on plain PostgreSQL
# only: TimescaleDB cannot lock compressed rows.)
INSERT_NEW = f"""
WITH ins AS (
  INSERT INTO samples ({SAMPLE_COLUMNS})
  SELECT {SAMPLE_COLUMNS} FROM _viu_stage WHERE gen = :g ORDER BY device_id, ts
  ON CONFLICT (device_id, ts) DO UPDATE SET seq = EXCLUDED.seq WHERE false
  RETURNING {SAMPLE_COLUMNS})
INSERT INTO _viu_delta ({SAMPLE_COLUMNS}, sign, gen)
SELECT {SAMPLE_COLUMNS}, 1, :g FROM ins
"""

MARK_NEW = """
UPDATE _viu_stage s SET kind = 'new' FROM _viu_delta d
WHERE s.gen = :g AND d.gen = :g AND d.sign = 1 AND s.device_id = d.device_id AND s.ts = d.ts
"""

# The batch's devices and time span as constants let PostgreSQL prune
# partitions and TimescaleDB skip compressed batches of other devices and times.
READ_OLD = """
INSERT INTO _viu_old
SELECT s.* FROM samples s JOIN _viu_stage n ON n.device_id = s.device_id AND n.ts = s.ts
WHERE n.gen = :g AND n.kind IS NULL
  AND s.device_id = ANY(CAST(:devices AS text[])) AND s.ts >= :first AND s.ts <= :last
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
_REPLACED = ", ".join(f"{c} = EXCLUDED.{c}" for c in SAMPLE_COLUMNS.split(", ")[2:])
CORRECT = (
    f"INSERT INTO sample_revisions ({SAMPLE_COLUMNS}, revised_at) "
    f"SELECT o.{SAMPLE_COLUMNS.replace(', ', ', o.')}, now() {_CORRECTED}",
    f"INSERT INTO _viu_delta ({SAMPLE_COLUMNS}, sign) "
    f"SELECT o.{SAMPLE_COLUMNS.replace(', ', ', o.')}, -1 {_CORRECTED}",
    f"INSERT INTO _viu_delta ({SAMPLE_COLUMNS}, sign) "
    f"SELECT n.{SAMPLE_COLUMNS.replace(', ', ', n.')}, 1 {_CORRECTED}",
    # The rows exist and are locked: this "insert" always takes the update branch.
    f"""INSERT INTO samples ({SAMPLE_COLUMNS})
       SELECT {SAMPLE_COLUMNS} FROM _viu_stage
       WHERE gen = :g AND kind = 'correction' ORDER BY device_id, ts
       ON CONFLICT (device_id, ts) DO UPDATE SET {_REPLACED}""",
)
