"""Contract listing for ``routes/contracts.py``."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection

from schemas.db import contracts
from services.settlement import contracts as repo


def page_ids(
    conn: Connection, scope: ColumnElement[bool], after: str | None, limit: int
) -> list[str]:
    """Up to ``limit`` ids of the contracts ``scope`` selects, ordered, after ``after``."""
    where = scope if after is None else scope & (contracts.c.contract_id > after)
    return repo.contract_ids(conn, where)[:limit]
