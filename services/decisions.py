"""Each party's decision on something that moves money between them (spec §7.1).

``{party, decision, by, at, reason}`` per party and object, append-only: a
proposal is accepted only when both parties accepted it, an annotation counts
once the other party approved it. An admin may act for a party; the row says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from schemas.db import decisions as table
from schemas.vocabulary import PARTIES, Decision, Party
from services.errors import Conflict


def get(conn: Connection, object_type: str, object_id: int) -> dict[Party, Any]:
    """The decisions taken on one object, by party."""
    rows = conn.execute(
        select(table).where(table.c.object_type == object_type, table.c.object_id == object_id)
    )
    return {r.party: r for r in rows}


def record(
    conn: Connection,
    object_type: str,
    object_id: int,
    contract_id: str,
    party: Party,
    decision: Decision,
    by: str,
    *,
    reason: str | None = None,
    as_admin: bool = False,
    at: datetime | None = None,
) -> bool:
    """Record ``party``'s decision; ``False`` when it had already decided the same way.

    A party decides once: the same decision again changes nothing, a different
    one is a conflict (the other party may already have relied on it).
    """
    earlier = get(conn, object_type, object_id).get(party)
    if earlier is not None:
        if earlier.decision == decision:
            return False
        raise Conflict(
            f"the {party} already {earlier.decision} {object_type} {object_id} "
            f"({earlier.decided_by}, {earlier.decided_at.isoformat()})"
        )
    conn.execute(
        insert(table).values(
            object_type=object_type,
            object_id=object_id,
            contract_id=contract_id,
            party=party,
            decision=decision,
            decided_by=by,
            decided_at=at or datetime.now(UTC),
            reason=reason,
            as_admin=as_admin,
        )
    )
    return True


def as_json(row: Any) -> dict[str, Any]:
    return {
        "party": row.party,
        "decision": row.decision,
        "by": row.decided_by,
        "at": row.decided_at.isoformat(),
        "reason": row.reason,
        "as_admin": row.as_admin,
    }


def listing(
    conn: Connection, object_type: str, object_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """Decisions of many objects at once, each list in the order of ``PARTIES``."""
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in object_ids}
    if not object_ids:
        return out
    rows = conn.execute(
        select(table).where(
            table.c.object_type == object_type, table.c.object_id.in_(list(object_ids))
        )
    )
    for row in sorted(rows, key=lambda r: PARTIES.index(r.party)):
        out[row.object_id].append(as_json(row))
    return out


def other(party: Party) -> Party:
    return "customer" if party == "provider" else "provider"
