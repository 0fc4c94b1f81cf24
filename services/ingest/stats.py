"""Ingest counters: per write (``Outcome``), per process (since start) and persisted (total).

The persisted counters are updated in the same transaction as the samples,
so "total" is exact; they are sharded by backend so that concurrent writers
never queue on one hot row.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import Connection, func, select

from schemas.db import ingest_counters
from services.db import driver_connection

COUNTERS = ("received", "stored", "duplicates", "corrections", "dead_lettered")
SHARDS = 16


@dataclass
class Outcome:
    """What one write did. ``received = stored + duplicates + corrections + dead_lettered``."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    corrections: int = 0
    dead_lettered: int = 0
    dead_letter_ids: list[int] = field(default_factory=list)
    dead_letter_reasons: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in COUNTERS}

    def __iadd__(self, other: Outcome) -> Outcome:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


class ProcessCounters:
    """Counters of this process since it started; updated only after a commit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)

    def record(self, outcome: Outcome) -> None:
        with self._lock:
            for name, value in outcome.counts().items():
                self._counts[name] += value

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


SINCE_START = ProcessCounters()


ADD = (
    f"INSERT INTO ingest_counters (shard, {', '.join(COUNTERS)}) "
    f"VALUES (pg_backend_pid() %% {SHARDS}, {', '.join(f'%({n})s' for n in COUNTERS)}) "
    "ON CONFLICT (shard) DO UPDATE SET "
    + ", ".join(f"{n} = ingest_counters.{n} + EXCLUDED.{n}" for n in COUNTERS)
)
"""Adds ``Outcome.counts()`` to this backend's shard (psycopg parameters)."""


def persist(conn: Connection, outcome: Outcome) -> None:
    """Add an outcome to the persisted totals, inside the caller's transaction."""
    counts = outcome.counts()
    if any(counts.values()):
        driver_connection(conn).execute(ADD, counts)


def totals(conn: Connection) -> dict[str, int]:
    row = conn.execute(
        select(*(func.coalesce(func.sum(ingest_counters.c[n]), 0).label(n) for n in COUNTERS))
    ).one()
    return {n: int(row._mapping[n]) for n in COUNTERS}


def report(conn: Connection) -> dict[str, Any]:
    """The body of ``GET /v1/ingest/stats``."""
    return {"since_start": SINCE_START.snapshot(), "total": totals(conn)}
