"""Sparkplug B connection state: the event log and each device's online/offline changes.

``sparkplug_events``: every NBIRTH, NDEATH, DBIRTH, DDEATH, stale NDEATH
(another session's bdSeq) and rebirth request viu made, as it came.
``device_connectivity``: when each device went online (DBIRTH) or offline
(DDEATH, its edge node's NDEATH, or a new NBIRTH of its node, after which
only a DBIRTH brings it back); settlement tells "offline" from
"silent while connected" with it. Neither references ``devices``: a device
may be born before anyone registers it in viu.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE sparkplug_events (
          id          bigserial PRIMARY KEY,
          group_id    text NOT NULL,
          edge_node   text NOT NULL,
          device_id   varchar(64),
          kind        varchar(16) NOT NULL CHECK (kind IN
                        ('NBIRTH', 'NDEATH', 'DBIRTH', 'DDEATH', 'NDEATH_STALE',
                         'REBIRTH_REQUEST')),
          ts          timestamptz NOT NULL,
          seq         integer,
          bd_seq      bigint,
          reason      text,
          received_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX sparkplug_events_once ON sparkplug_events "
        "(group_id, edge_node, coalesce(device_id, ''), kind, ts)"
    )
    op.execute(
        """
        CREATE TABLE device_connectivity (
          device_id   varchar(64) NOT NULL,
          ts          timestamptz NOT NULL,
          online      boolean NOT NULL,
          cause       varchar(8) NOT NULL CHECK (cause IN ('DBIRTH', 'DDEATH', 'NDEATH', 'NBIRTH')),
          group_id    text NOT NULL,
          edge_node   text NOT NULL,
          received_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (device_id, ts, cause)
        )
        """
    )
    op.execute(
        "CREATE INDEX device_connectivity_node ON device_connectivity (group_id, edge_node, ts)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE device_connectivity")
    op.execute("DROP TABLE sparkplug_events")
