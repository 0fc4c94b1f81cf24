"""The dead-letter store: invalid input is kept, visible and replayable, never dropped.

Filing must succeed whatever the input held: the payload is bytes (``bytea``
holds anything) and the texts (topic, reason) are escaped where PostgreSQL
text cannot hold them (NUL, lone surrogates). Replay lives in ``replay``,
which sits above the writer (the writer files dead letters; replay writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from schemas.db import dead_letters
from services.errors import NotFound
from services.ingest.decode import Reject, storable

Row = dict[str, Any]


def file(conn: Connection, rejects: Sequence[Reject]) -> list[int]:
    """Insert dead letters in the caller's transaction; returns their ids in order."""
    if not rejects:
        return []
    now = datetime.now(UTC)
    rows = [
        {
            "received_at": now,
            "topic": storable(r.topic),
            "device_id": _device(r.device_id),
            "payload": r.payload,
            "reason": storable(r.reason)[:4000],
            "status": "open",
        }
        for r in rejects
    ]
    stmt = insert(dead_letters).returning(dead_letters.c.id, sort_by_parameter_order=True)
    return [int(i) for i in conn.execute(stmt, rows).scalars()]


def _device(device_id: str | None) -> str | None:
    return device_id if device_id and len(device_id) <= 64 else None


def get(conn: Connection, dead_letter_id: int, *, lock: bool = False) -> Row:
    stmt = select(dead_letters).where(dead_letters.c.id == dead_letter_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).mappings().first()
    if row is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    return dict(row)


def listing(
    conn: Connection,
    *,
    status: str | None = None,
    device_ids: Sequence[str] | None = None,
    device_id: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[Row]:
    """Dead letters by id; ``device_ids`` restricts to a party's devices."""
    stmt = select(dead_letters).order_by(dead_letters.c.id).limit(limit)
    if status:
        stmt = stmt.where(dead_letters.c.status == status)
    if device_id:
        stmt = stmt.where(dead_letters.c.device_id == device_id)
    if device_ids is not None:
        stmt = stmt.where(dead_letters.c.device_id.in_(device_ids))
    if after is not None:
        stmt = stmt.where(dead_letters.c.id > after)
    return [dict(r) for r in conn.execute(stmt).mappings()]
