"""Stored samples and device scoping for ``routes/telemetry.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, select

from schemas.db import contracts, devices, samples


def samples_page(
    conn: Connection,
    device_id: str,
    *,
    from_ts: datetime | None,
    to_ts: datetime | None,
    after: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """A device's samples with ``from_ts <= ts < to_ts`` and ``ts > after``, by ``ts``."""
    stmt = select(samples).where(samples.c.device_id == device_id)
    if from_ts is not None:
        stmt = stmt.where(samples.c.ts >= from_ts)
    if to_ts is not None:
        stmt = stmt.where(samples.c.ts < to_ts)
    if after is not None:
        stmt = stmt.where(samples.c.ts > after)
    rows = conn.execute(stmt.order_by(samples.c.ts).limit(limit)).mappings()
    return [dict(r) for r in rows]


def device_ids(conn: Connection, contract_scope: ColumnElement[bool]) -> list[str]:
    """The devices of the contracts ``contract_scope`` selects."""
    stmt = (
        select(devices.c.device_id)
        .join(contracts, contracts.c.contract_id == devices.c.contract_id)
        .where(contract_scope)
    )
    return list(conn.execute(stmt).scalars())
