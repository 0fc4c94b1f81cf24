"""The dead-letter store: invalid input is kept, visible and replayable, never dropped.

Replay runs the stored payload through the same decode + write path as live
traffic. If nothing of it can be stored yet (say the device is still
unknown) the entry stays ``open`` with the new reason in ``replay_result``;
if part of a batch is still invalid, that part becomes a new dead letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from schemas.db import dead_letters
from services.errors import Conflict, NotFound
from services.ingest.decode import Message, Reject, decode
from services.ingest.stats import Outcome

Row = dict[str, Any]


def file(conn: Connection, rejects: Sequence[Reject]) -> list[int]:
    """Insert dead letters in the caller's transaction; returns their ids in order."""
    if not rejects:
        return []
    now = datetime.now(UTC)
    rows = [
        {
            "received_at": now,
            "topic": r.topic,
            "device_id": _device(r.device_id),
            "payload": r.payload,
            "reason": r.reason[:4000],
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


def replay(conn: Connection, dead_letter_id: int, by: str) -> tuple[Row, Outcome | None]:
    """Re-run a dead letter through the write path, in the caller's transaction.

    Returns the updated entry and what the write did (None if nothing was written).
    """
    from services.ingest.writer import reject_unknown_devices, write_decoded

    row = get(conn, dead_letter_id, lock=True)
    if row["status"] != "open":
        raise Conflict(f"dead letter {dead_letter_id} is already {row['status']}")
    decoded = decode(Message(row["topic"], bytes(row["payload"]), datetime.now(UTC)))
    reject_unknown_devices(conn, [decoded])
    now = datetime.now(UTC)
    outcome = None
    if not decoded.samples:
        result = "; ".join(r.reason for r in decoded.rejects) or "nothing to store"
        values: Row = {"replay_result": f"still invalid: {result}"[:4000]}
    else:
        outcome = write_decoded(conn, [decoded])
        result = ", ".join(f"{k} {v}" for k, v in outcome.counts().items())
        if outcome.dead_letter_ids:
            result += f"; new dead letters {outcome.dead_letter_ids}"
        values = {"status": "replayed", "replay_result": result}
    values |= {"replayed_at": now, "replayed_by": by}
    conn.execute(update(dead_letters).where(dead_letters.c.id == dead_letter_id).values(values))
    return get(conn, dead_letter_id), outcome
