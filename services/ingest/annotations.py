"""Annotations: after-the-fact downtime classification (spec §1.3).

Creating one re-computes the rollups it affects in the same transaction,
under an exclusive per-device lock so that no concurrent write can add a
delta computed with the cause the annotation just replaced.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, text

from schemas.db import annotation_table as table
from schemas.telemetry import Annotation
from services.ingest.rollups import rebuild_rollups


def create(conn: Connection, note: Annotation, author: str) -> dict[str, Any]:
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('viu.device:' || :d, 0))"),
        {"d": note.device_id},
    )
    row = (
        conn.execute(
            insert(table)
            .values(
                device_id=note.device_id,
                from_ts=note.from_ts,
                to_ts=note.to_ts,
                cause=note.cause,
                note=note.note,
                author=note.author or author,
                created_at=text("clock_timestamp()"),
            )
            .returning(table)
        )
        .mappings()
        .one()
    )
    rebuild_rollups(conn, note.device_id, note.from_ts, note.to_ts)
    return dict(row)


def listing(conn: Connection, device_id: str) -> list[dict[str, Any]]:
    stmt = select(table).where(table.c.device_id == device_id).order_by(table.c.from_ts, table.c.id)
    return [dict(r) for r in conn.execute(stmt).mappings()]
