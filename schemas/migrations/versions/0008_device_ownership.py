"""Device ownership with its history: one owner per device at a time, enforced by the database.

A device is owned by a contract from the period of the version that lists
it until the period of the version that drops it (``until_period``,
exclusive; NULL while it is owned). The partial unique index allows one open
ownership per device, so two contracts claiming one device at the same
moment cannot both succeed: the second insert fails instead of silently
doing nothing (two racing ``POST /v1/contracts`` both answered 201 before).
Settlement reads only the devices a contract owned in the period.

Existing data: each device's ownership is rebuilt from the versions of the
contract ``devices`` names (the one that registered it first); a contract
that lists a device registered by another gets no ownership of it.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE device_owners (
          id           bigserial PRIMARY KEY,
          device_id    varchar(64) NOT NULL REFERENCES devices,
          contract_id  varchar(64) NOT NULL REFERENCES contracts,
          from_period  varchar(7) NOT NULL,
          until_period varchar(7),
          claimed_at   timestamptz NOT NULL DEFAULT now(),
          released_at  timestamptz,
          CHECK (until_period IS NULL OR until_period > from_period)
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX device_owners_one_at_a_time ON device_owners (device_id) "
        "WHERE until_period IS NULL"
    )
    op.execute("CREATE INDEX device_owners_contract ON device_owners (contract_id, device_id)")
    _backfill(op.get_bind())


def _backfill(conn: Any) -> None:
    owner = dict(conn.execute(sa.text("SELECT device_id, contract_id FROM devices")).all())
    versions = conn.execute(
        sa.text(
            "SELECT contract_id, effective_from, body FROM contract_versions "
            "ORDER BY contract_id, version"
        )
    ).all()
    rows: list[dict[str, Any]] = []
    held: dict[tuple[str, str], dict[str, Any]] = {}
    for contract_id, effective_from, body in versions:
        listed = {d for d in body.get("devices", []) if owner.get(d) == contract_id}
        for (cid, device), row in list(held.items()):
            if cid == contract_id and device not in listed:
                row["until_period"] = effective_from
                del held[(cid, device)]
        for device in sorted(listed):
            if (contract_id, device) not in held:
                row = {"d": device, "c": contract_id, "f": effective_from, "until_period": None}
                held[(contract_id, device)] = row
                rows.append(row)
    for row in rows:
        conn.execute(
            sa.text(
                "INSERT INTO device_owners (device_id, contract_id, from_period, until_period) "
                "VALUES (:d, :c, :f, :until_period)"
            ),
            row,
        )


def downgrade() -> None:
    op.execute("DROP TABLE device_owners")
