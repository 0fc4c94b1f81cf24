"""Storage of the samples table: TimescaleDB hypertable when available, else native partitions.

One decision point (``samples_backend``) for both the migration and the ingest
writer, so the two paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, text

TIMESCALE = "timescaledb"
PARTITIONED = "partitioned"


def timescale_available(conn: Connection) -> bool:
    row = conn.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).first()
    return row is not None


def samples_backend(conn: Connection) -> str:
    """Which storage the samples table uses in this database."""
    row = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first()
    return TIMESCALE if row is not None else PARTITIONED


def month_start(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC)
    return datetime(ts.year, ts.month, 1, tzinfo=UTC)


def next_month(m: datetime) -> datetime:
    return datetime(m.year + (m.month // 12), m.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(m: datetime) -> str:
    return f"samples_y{m.year:04d}m{m.month:02d}"


def ensure_partitions(conn: Connection, months: Iterable[datetime]) -> list[str]:
    """Create the monthly (UTC) partitions of ``samples`` that do not exist yet.

    Concurrent writers serialise on an advisory lock so two ingesters creating
    the same month never collide. Returns the names created.
    """
    wanted = sorted({month_start(m) for m in months})
    if not wanted:
        return []
    existing = {
        r[0]
        for r in conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'samples'::regclass"
            )
        )
    }
    missing = [m for m in wanted if partition_name(m) not in existing]
    if not missing:
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('viu.samples.partitions'))"))
    created = []
    for m in missing:
        name = partition_name(m)
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF samples "
                f"FOR VALUES FROM ('{m.isoformat()}') TO ('{next_month(m).isoformat()}')"
            )
        )
        created.append(name)
    return created


def months_around(now: datetime, back: int, ahead: int) -> list[datetime]:
    m = month_start(now)
    for _ in range(back):
        m = datetime(m.year - (m.month == 1), (m.month - 2) % 12 + 1, 1, tzinfo=UTC)
    out = []
    for _ in range(back + ahead + 1):
        out.append(m)
        m = next_month(m)
    return out
