"""15-minute rollups per device, kept equal to an aggregation of the stored samples.

Why 15 minutes: every real time zone's offset is a multiple of 15 minutes, so
a contract month in any zone is an exact union of buckets and settlement never
needs raw samples. Each write adds (new - old) deltas in its own transaction;
an annotation recomputes the buckets it touches from the samples.

A write does not add its deltas to ``rollups`` itself: it appends them to
``rollup_deltas`` (``append``), a table without an index, so a write looks
nothing up and locks no rollup row (two writers never queue on a bucket).
``fold`` moves every appended delta into ``rollups`` in one statement, one
row version per device and bucket for all the deltas since the last fold;
the ingester folds every second (``FOLD_EVERY_S``), the settlement tick
before it settles. Readers add the deltas not folded yet to the rollups
(settlement's ``usage``; the view ``rollup_totals`` per bucket), so when a
fold runs changes no figure.

The effective cause of a sample is that of the latest *approved* annotation
covering its ``ts``, else its own ``downtime_cause``: a pending annotation
(one party's, awaiting the other's approval, spec §1.3) moves no money.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, text

from schemas.db import down_column, rollups
from schemas.vocabulary import DOWNTIME_CAUSES
from services.ingest import metrics

BUCKET = "date_bin('15 minutes', {t}.ts, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
DOWN_MIN = "({t}.interval_s / 60.0 - {t}.uptime_min)"


def effective_cause(t: str) -> str:
    """SQL for the effective cause of the sample-shaped row aliased ``t``."""
    return (
        "coalesce((SELECT a.cause FROM annotations a "
        f"WHERE a.device_id = {t}.device_id AND a.from_ts <= {t}.ts AND {t}.ts < a.to_ts "
        "AND a.status = 'approved' "
        f"ORDER BY a.created_at DESC, a.id DESC LIMIT 1), {t}.downtime_cause)"
    )


def _cause(annotated: str | None) -> str:
    cause = effective_cause("x")
    if annotated is not None:
        cause = f"CASE WHEN {annotated} THEN {cause} ELSE x.downtime_cause END"
    return cause


def _weight(sign: str) -> str:
    # PostgreSQL does not fold "1 * x": a weight of 1 (every new row) is left
    # out, which spares a numeric multiplication per row and column.
    return "" if sign == "1" else f"{sign} * "


def _per_row(source: str, sign: str, annotated: str | None) -> str:
    """SELECT of one rollup delta row per row of ``source``, weighted by ``sign`` (alias ``s``).

    No aggregation (``fold`` sums them all anyway). ``annotated`` as in
    ``_aggregate``.
    """
    w = _weight(sign)
    down = f"trim_scale({w}{DOWN_MIN.format(t='s')})"
    downs = ", ".join(f"CASE WHEN s.eff = '{c}' THEN {down} ELSE 0 END" for c in DOWNTIME_CAUSES)
    return f"""
        SELECT s.device_id, {BUCKET.format(t="s")}, {sign}, {w}s.interval_s,
               {w}s.uptime_min, {w}s.quality_min, {w}s.throughput, {downs}, s.received_at
        FROM (SELECT x.*, {_cause(annotated)} AS eff FROM {source} x OFFSET 0) s
    """


def _aggregate(
    source: str, sign: str, annotated: str | None = None, *, ordered: bool = True
) -> str:
    """SELECT of rollup rows from ``source`` (alias ``s``), each row weighted by ``sign``.

    ``OFFSET 0`` keeps the subquery from being flattened, so the effective
    cause is looked up once per row instead of once per cause column.
    ``annotated``: SQL of a boolean, false when no annotation can cover any
    row of ``source``; the lookup is then skipped and the effective cause is
    the sample's own. None: always look it up. ``ordered``: in key order (an
    upsert locks its rows in that order, so two never deadlock).
    """
    w = _weight(sign)
    downs = ",\n".join(
        f"trim_scale(coalesce(sum({w}{DOWN_MIN.format(t='s')}) FILTER (WHERE s.eff = '{c}'), 0))"
        for c in DOWNTIME_CAUSES
    )
    return f"""
        SELECT s.device_id, {BUCKET.format(t="s")} AS bucket,
               sum({sign}), sum({w}s.interval_s),
               trim_scale(sum({w}s.uptime_min)), trim_scale(sum({w}s.quality_min)),
               trim_scale(sum({w}s.throughput)),
               {downs},
               max(s.received_at)
        FROM (SELECT x.*, {_cause(annotated)} AS eff FROM {source} x OFFSET 0) s
        GROUP BY 1, 2{" ORDER BY 1, 2" if ordered else ""}
    """


COLUMNS = ", ".join(c.name for c in rollups.columns)
ADDED = (
    "samples",
    "reported_s",
    "uptime_min",
    "quality_min",
    "throughput",
    *(down_column(c) for c in DOWNTIME_CAUSES),
)


def _adding(c: str) -> str:
    return f"{c} = trim_scale(rollups.{c} + EXCLUDED.{c})"


ADD_TO_ROLLUPS = (
    f"ON CONFLICT (device_id, bucket) DO UPDATE SET {', '.join(map(_adding, ADDED))}, "
    "last_received_at = greatest(rollups.last_received_at, EXCLUDED.last_received_at)"
)


def append(
    deltas: str, sign: str = "s.sign", annotated: str | None = None, *, summed: bool = True
) -> str:
    """SQL appending the rows of ``deltas`` (a table or subquery), each weighted by ``sign``, to ``rollup_deltas``.

    ``annotated`` as in ``_aggregate``; the writer's has parameters of its own.
    Nothing is looked up or locked. ``summed``: one row per device and
    bucket of ``deltas``, else one per row. Summing pays when a bucket holds
    several rows (a 100-sample message: fewer rows to write and to fold);
    with one sample per device, as in live single-sample traffic, the sums
    only cost (measured, docs/benchmarks.md, issue 17 round 20).
    """
    rows = (
        _aggregate(deltas, sign, annotated, ordered=False)
        if summed
        else _per_row(deltas, sign, annotated)
    )
    return f"INSERT INTO rollup_deltas ({COLUMNS}) {rows}"


FOLD_EVERY_S = 1.0
# One fold at a time, and never while an annotation rebuilds buckets
# (``rebuild_rollups`` takes it too; an annotation transaction takes it
# before any device lock, ``annotations._lock_device``).
_FOLD_KEY = "hashtextextended('viu.rollups.fold', 0)"
FOLD_LOCK = f"SELECT pg_advisory_xact_lock({_FOLD_KEY})"
TRY_FOLD_LOCK = f"SELECT pg_try_advisory_xact_lock({_FOLD_KEY})"
_SUMMED = ", ".join(
    [f"sum({c})" for c in ADDED[:2]]
    + [f"trim_scale(sum({c}))" for c in ADDED[2:]]
    + ["max(last_received_at)"]
)
# The deltas this statement's snapshot sees leave rollup_deltas and enter
# rollups together; deltas committed after it started stay for the next fold.
FOLD = f"""
WITH moved AS (DELETE FROM rollup_deltas RETURNING *)
INSERT INTO rollups ({COLUMNS})
SELECT device_id, bucket, {_SUMMED} FROM moved GROUP BY 1, 2 ORDER BY 1, 2
{ADD_TO_ROLLUPS}
"""


def fold(conn: Connection, *, wait: bool = True) -> int | None:
    """Move every delta appended so far into ``rollups``; returns the rollup rows written.

    ``wait=False``: None at once if another session is folding (or
    rebuilding): the ingester's periodic fold then has nothing to add.
    """
    if wait:
        conn.execute(text(FOLD_LOCK))
    elif not conn.execute(text(TRY_FOLD_LOCK)).scalar_one():
        return None
    return conn.execute(text(FOLD)).rowcount


def fold_now(engine: Engine) -> int | None:
    """One fold in its own transaction unless another session folds, counted in the metrics.

    What the ingester's folder and the settlement tick run: the vacuum after a
    fold that moved deltas, ``viu_ingest_rollup_folds_total{outcome}``.
    Raises what the database raised (counted as failed).
    """
    try:
        with engine.begin() as conn:
            written = fold(conn, wait=False)
        if written:
            vacuum_deltas(engine)
    except Exception:
        metrics.FOLDS.labels(outcome="failed").inc()
        raise
    metrics.FOLDS.labels(outcome="skipped" if written is None else "folded").inc()
    return written


def vacuum_deltas(engine: Engine) -> None:
    """Make the room of folded deltas reusable for the next ones (``VACUUM``, outside a transaction).

    A fold deletes every row of ``rollup_deltas``; until a vacuum records the
    freed room, the next deltas go to new pages at the end, and every fold
    scans them all. Autovacuum comes at most once a minute: at 30,000 samples
    a second the table would grow by a quarter of a GB in between. SKIP_LOCKED:
    when another ingester vacuums it, this one has nothing to add.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (SKIP_LOCKED) rollup_deltas"))


def rebuild_rollups(conn: Connection, device_id: str, from_ts: datetime, to_ts: datetime) -> None:
    """Recompute from the samples every bucket of ``device_id`` overlapping ``[from_ts, to_ts)``."""
    params = {"d": device_id, "f": from_ts, "t": to_ts}
    bounds = (
        "date_bin('15 minutes', CAST(:f AS timestamptz), TIMESTAMPTZ '2000-01-01 00:00:00+00')",
        "date_bin('15 minutes', CAST(:t AS timestamptz) - INTERVAL '1 microsecond', "
        "TIMESTAMPTZ '2000-01-01 00:00:00+00') + INTERVAL '15 minutes'",
    )
    conn.execute(text(FOLD_LOCK))
    for table in ("rollup_deltas", "rollups"):
        conn.execute(
            text(
                f"DELETE FROM {table} WHERE device_id = :d AND bucket >= {bounds[0]} "
                f"AND bucket < {bounds[1]}"
            ),
            params,
        )
    source = (
        f"(SELECT * FROM samples WHERE device_id = :d AND ts >= {bounds[0]} AND ts < {bounds[1]})"
    )
    conn.execute(text(f"INSERT INTO rollups ({COLUMNS}) {_aggregate(source, '1')}"), params)
