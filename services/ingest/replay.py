"""Dead-letter replay: a stored payload runs through the same decode + write path as live traffic.

If nothing of it can be stored yet (say the device is still unknown) the
entry stays ``open`` with the new reason in ``replay_result``; if part of a
batch is still invalid, that part becomes a new dead letter.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, update

from schemas.db import dead_letters
from services import dberrors
from services.errors import Conflict
from services.ingest.admission import DEFAULT_WINDOW, Window, screen
from services.ingest.deadletters import Row, get
from services.ingest.decode import Message, decode, storable
from services.ingest.stats import Outcome
from services.ingest.writer import write_decoded


def replay(
    conn: Connection, dead_letter_id: int, by: str, window: Window = DEFAULT_WINDOW
) -> tuple[Row, Outcome | None]:
    """Re-run a dead letter through the write path, in the caller's transaction.

    Returns the updated entry and what the write did (None if nothing was
    written). A payload the database still refuses leaves the entry open with
    the database's reason; only a transient error (the database is away) raises.
    """
    row = get(conn, dead_letter_id, lock=True)
    if row["status"] != "open":
        raise Conflict(f"dead letter {dead_letter_id} is already {row['status']}")
    decoded = decode(Message(row["topic"], bytes(row["payload"]), datetime.now(UTC)), live=False)
    screen(conn, [decoded], window)
    now = datetime.now(UTC)
    outcome = None
    values: Row
    if not decoded.samples:
        result = "; ".join(r.reason for r in decoded.rejects) or "nothing to store"
        values = {"replay_result": f"still invalid: {result}"[:4000]}
    else:
        try:
            with conn.begin_nested():
                outcome = write_decoded(conn, [decoded], window)
        except Exception as exc:
            if dberrors.is_transient(exc):
                raise
            refused = f"still refused by the database: {dberrors.reason(exc)}"
            values = {"replay_result": storable(refused)[:4000]}
        else:
            result = ", ".join(f"{k} {v}" for k, v in outcome.counts().items())
            if outcome.dead_letter_ids:
                result += f"; new dead letters {outcome.dead_letter_ids}"
            values = {"status": "replayed", "replay_result": result}
    values |= {"replayed_at": now, "replayed_by": by}
    conn.execute(update(dead_letters).where(dead_letters.c.id == dead_letter_id).values(values))
    return get(conn, dead_letter_id), outcome
