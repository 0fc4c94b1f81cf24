"""Storage of the samples table: TimescaleDB hypertable when available, else native partitions.

One decision point (``samples_backend``) for both the migration and the ingest
writer, so the two paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

TIMESCALE = "timescaledb"
PARTITIONED = "partitioned"


ENABLE_HINT = (
    "to use TimescaleDB, install it on the PostgreSQL server, add "
    "shared_preload_libraries = 'timescaledb' to postgresql.conf, restart PostgreSQL and "
    "run CREATE EXTENSION timescaledb in the database (or let viu's user create it) before "
    "its first migration; see docs/operations.md"
)


# Only a superuser may read shared_preload_libraries; the settings TimescaleDB's
# loader defines at server start (context "postmaster", which a placeholder made
# by SET never has) are visible to everyone and exist only when it is preloaded.
PRELOADED = text(
    "SELECT 1 FROM pg_settings WHERE context = 'postmaster' AND name IN "
    "('timescaledb.max_background_workers', 'timescaledb.bgw_launcher_poll_time')"
)


def enable_timescale(conn: Connection) -> str | None:
    """Create the ``timescaledb`` extension if this server can; else say why not.

    Installed is not enough: without ``shared_preload_libraries`` the server
    ends the session (FATAL) on ``CREATE EXTENSION``, so preloading is checked
    first; any other refusal (privileges) is rolled back to a savepoint.
    """
    if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first():
        return None
    available = conn.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).first()
    if available is None:
        return "the timescaledb extension is not installed on this PostgreSQL server"
    if conn.execute(PRELOADED).first() is None:
        return "the timescaledb extension is installed but not in shared_preload_libraries"
    try:
        with conn.begin_nested():
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
    except DBAPIError as exc:
        return f"CREATE EXTENSION timescaledb failed: {str(exc.orig).splitlines()[0]}"
    return None


def samples_backend(conn: Connection) -> str:
    """How this database stores ``samples``: decided by the table itself, not the extension.

    A database created on plain PostgreSQL keeps its native partitions when
    TimescaleDB is installed later, so the extension's presence says nothing.
    The answer never changes while a connection lives, so it is kept per connection.
    """
    cached = conn.info.get(_BACKEND_KEY)
    if cached is None:
        kind = conn.execute(text("SELECT relkind FROM pg_class WHERE oid = 'samples'::regclass"))
        cached = conn.info[_BACKEND_KEY] = PARTITIONED if kind.scalar() == "p" else TIMESCALE
    return str(cached)


_BACKEND_KEY = "viu.samples_backend"


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
    the same month never collide. Returns the names created. A connection
    remembers the partitions it found (``conn.info``), so a batch into known
    months costs no catalog query; a write that fails forgets them
    (``forget_partitions``), and is written again when that memory was all
    it went by, in case a partition was dropped since.
    """
    wanted = sorted({month_start(m) for m in months})
    if not wanted:
        return []
    if conn.info.get(_FORGOTTEN_KEY) != _forgotten[0]:  # a write found one gone since
        conn.info[_PARTITIONS_KEY] = set()
        conn.info[_FORGOTTEN_KEY] = _forgotten[0]
    known: set[str] = conn.info.setdefault(_PARTITIONS_KEY, set())
    conn.info[_ASSUMED_KEY] = all(partition_name(m) in known for m in wanted)
    if conn.info[_ASSUMED_KEY]:
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
        known.update(existing)
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


def forget_partitions(conn: Connection) -> bool:
    """Forget the partitions this connection knows of: after a failed write, look again.

    Returns whether the last ``ensure_partitions`` went by that memory alone
    (then a partition dropped since may be why the write failed).
    """
    conn.info.pop(_PARTITIONS_KEY, None)
    return bool(conn.info.pop(_ASSUMED_KEY, False))


def forget_partitions_everywhere() -> None:
    """Make every connection of this process look again: a partition it may remember is gone.

    Every pooled connection remembers the dropped partition too: were only
    the failing one to forget, each retry could take another pooled
    connection that still remembers it, and fail the same way.
    """
    _forgotten[0] += 1


_PARTITIONS_KEY = "viu.samples_partitions"
_ASSUMED_KEY = "viu.samples_partitions_assumed"
_FORGOTTEN_KEY = "viu.samples_partitions_forgotten"
_forgotten = [0]  # how many times a connection of this process forgot: all forget then


def months_around(now: datetime, back: int, ahead: int) -> list[datetime]:
    m = month_start(now)
    for _ in range(back):
        m = datetime(m.year - (m.month == 1), (m.month - 2) % 12 + 1, 1, tzinfo=UTC)
    out = []
    for _ in range(back + ahead + 1):
        out.append(m)
        m = next_month(m)
    return out
