"""15-minute rollups per device, kept equal to an aggregation of the stored samples.

Why 15 minutes: every real time zone's offset is a multiple of 15 minutes, so
a contract month in any zone is an exact union of buckets and settlement never
needs raw samples. Each write adds (new - old) deltas in its own transaction;
an annotation recomputes the buckets it touches from the samples.

The effective cause of a sample is that of the latest *approved* annotation
covering its ``ts``, else its own ``downtime_cause``: a pending annotation
(one party's, awaiting the other's approval, spec §1.3) moves no money.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from schemas.db import down_column, rollups
from schemas.vocabulary import DOWNTIME_CAUSES

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


def _aggregate(source: str, sign: str, annotated: str | None = None) -> str:
    """SELECT of rollup rows from ``source`` (alias ``s``), each row weighted by ``sign``.

    ``OFFSET 0`` keeps the subquery from being flattened, so the effective
    cause is looked up once per row instead of once per cause column.
    ``annotated``: SQL of a boolean, false when no annotation can cover any
    row of ``source``; the lookup is then skipped and the effective cause is
    the sample's own. None: always look it up.
    """
    cause = effective_cause("x")
    if annotated is not None:
        cause = f"CASE WHEN {annotated} THEN {cause} ELSE x.downtime_cause END"
    # PostgreSQL does not fold "1 * x": a weight of 1 (every new row) is left
    # out, which spares a numeric multiplication per row and column.
    w = "" if sign == "1" else f"{sign} * "
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
        FROM (SELECT x.*, {cause} AS eff FROM {source} x OFFSET 0) s
        GROUP BY 1, 2 ORDER BY 1, 2
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


def upsert(deltas: str, sign: str = "s.sign", annotated: str | None = None) -> str:
    """SQL adding the rows of ``deltas`` (a table or subquery), each weighted by ``sign``, to the rollups.

    ``annotated`` as in ``_aggregate``; the writer's has parameters of its own.
    """
    sets = ", ".join(f"{c} = trim_scale(rollups.{c} + EXCLUDED.{c})" for c in ADDED)
    return (
        f"INSERT INTO rollups ({COLUMNS}) {_aggregate(deltas, sign, annotated)} "
        f"ON CONFLICT (device_id, bucket) DO UPDATE SET {sets}, "
        "last_received_at = greatest(rollups.last_received_at, EXCLUDED.last_received_at)"
    )


def rebuild_rollups(conn: Connection, device_id: str, from_ts: datetime, to_ts: datetime) -> None:
    """Recompute from the samples every bucket of ``device_id`` overlapping ``[from_ts, to_ts)``."""
    params = {"d": device_id, "f": from_ts, "t": to_ts}
    bounds = (
        "date_bin('15 minutes', CAST(:f AS timestamptz), TIMESTAMPTZ '2000-01-01 00:00:00+00')",
        "date_bin('15 minutes', CAST(:t AS timestamptz) - INTERVAL '1 microsecond', "
        "TIMESTAMPTZ '2000-01-01 00:00:00+00') + INTERVAL '15 minutes'",
    )
    conn.execute(
        text(
            f"DELETE FROM rollups WHERE device_id = :d AND bucket >= {bounds[0]} "
            f"AND bucket < {bounds[1]}"
        ),
        params,
    )
    source = (
        f"(SELECT * FROM samples WHERE device_id = :d AND ts >= {bounds[0]} AND ts < {bounds[1]})"
    )
    conn.execute(text(f"INSERT INTO rollups ({COLUMNS}) {_aggregate(source, '1')}"), params)
