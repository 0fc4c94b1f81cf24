"""Recording Sparkplug connection state: the event log and each device's online/offline changes.

``sparkplug_events`` keeps every birth, death and rebirth request as it
came; ``device_connectivity`` keeps, per device, when it went online (its
DBIRTH) and offline (its DDEATH, or the NDEATH of its edge node, which takes
every device online under that node offline; a new NBIRTH does the same: a
new session's devices are online only once their DBIRTH says so, so a node
that restarted without its death being seen leaves no device online
forever). Settlement reads the latter to tell a device that was offline from one that was silent while connected
(``services.settlement.connectivity``). Both are written in the batch's
transaction and are idempotent, so a redelivered message changes nothing.
Two changes of one device in the same millisecond are ordered by
``received_at`` (the clock at the insert, which follows arrival order).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text

from services.ingest.formats.base import StateEvent, storable

EVENT = text(
    """
    INSERT INTO sparkplug_events
      (group_id, edge_node, device_id, kind, ts, seq, bd_seq, reason, received_at)
    VALUES (:g, :n, :d, :kind, :ts, :seq, :bd_seq, :reason, now())
    ON CONFLICT DO NOTHING
    """
)
DEVICE = text(
    """
    INSERT INTO device_connectivity
      (device_id, ts, online, cause, group_id, edge_node, received_at)
    VALUES (:d, :ts, :online, :kind, :g, :n, clock_timestamp())
    ON CONFLICT DO NOTHING
    """
)
# Every device whose latest state under this node (before the death or new birth) is online.
NODE_DEATH = text(
    """
    INSERT INTO device_connectivity
      (device_id, ts, online, cause, group_id, edge_node, received_at)
    SELECT last.device_id, :ts, false, :kind, :g, :n, clock_timestamp()
    FROM (SELECT DISTINCT ON (device_id) device_id, online FROM device_connectivity
          WHERE group_id = :g AND edge_node = :n AND ts <= :ts
          ORDER BY device_id, ts DESC, received_at DESC) last
    WHERE last.online
    ON CONFLICT DO NOTHING
    """
)


def record(conn: Connection, events: Sequence[StateEvent]) -> None:
    """Store state events in order, in the caller's transaction."""
    for e in events:
        params = {
            "g": storable(e.group_id),
            "n": storable(e.edge_node),
            "d": e.device_id,
            "kind": e.kind,
            "ts": e.ts,
            "seq": e.seq,
            "bd_seq": e.bd_seq,
            "reason": None if e.reason is None else storable(e.reason)[:4000],
        }
        conn.execute(EVENT, params)
        if e.kind in ("DBIRTH", "DDEATH") and e.device_id is not None:
            conn.execute(DEVICE, params | {"online": e.kind == "DBIRTH"})
        elif e.kind in ("NDEATH", "NBIRTH"):
            conn.execute(NODE_DEATH, params)
