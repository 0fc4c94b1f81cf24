"""Ingest: revisions of corrected samples, 15-minute rollups, annotations, dead letters, counters.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CAUSE_CHECK = "CHECK ({col} IN ('unplanned','planned','customer','external'))"

STATEMENTS = [
    f"""
    CREATE TABLE sample_revisions (
      id             bigserial PRIMARY KEY,
      device_id      varchar(64) NOT NULL,
      ts             timestamptz NOT NULL,
      interval_s     integer NOT NULL,
      uptime_min     numeric NOT NULL,
      quality_min    numeric NOT NULL,
      throughput     numeric NOT NULL,
      downtime_cause varchar(16) NOT NULL {CAUSE_CHECK.format(col="downtime_cause")},
      seq            bigint,
      received_at    timestamptz NOT NULL,
      revised_at     timestamptz NOT NULL
    )
    """,
    "CREATE INDEX sample_revisions_identity ON sample_revisions (device_id, ts)",
    """
    CREATE TABLE rollups (
      device_id        varchar(64) NOT NULL,
      bucket           timestamptz NOT NULL,
      samples          bigint NOT NULL,
      reported_s       bigint NOT NULL,
      uptime_min       numeric NOT NULL,
      quality_min      numeric NOT NULL,
      throughput       numeric NOT NULL,
      down_unplanned   numeric NOT NULL,
      down_planned     numeric NOT NULL,
      down_customer    numeric NOT NULL,
      down_external    numeric NOT NULL,
      last_received_at timestamptz NOT NULL,
      PRIMARY KEY (device_id, bucket)
    )
    """,
    f"""
    CREATE TABLE annotations (
      id         bigserial PRIMARY KEY,
      device_id  varchar(64) NOT NULL REFERENCES devices,
      from_ts    timestamptz NOT NULL,
      to_ts      timestamptz NOT NULL,
      cause      varchar(16) NOT NULL {CAUSE_CHECK.format(col="cause")},
      note       text NOT NULL DEFAULT '',
      author     varchar(200) NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK (from_ts < to_ts)
    )
    """,
    "CREATE INDEX annotations_device_range ON annotations (device_id, from_ts, to_ts)",
    "CREATE TRIGGER annotations_immutable BEFORE UPDATE OR DELETE ON annotations "
    "FOR EACH ROW EXECUTE FUNCTION viu_refuse_change()",
    """
    CREATE TABLE dead_letters (
      id            bigserial PRIMARY KEY,
      received_at   timestamptz NOT NULL DEFAULT now(),
      topic         text NOT NULL,
      device_id     varchar(64),
      payload       bytea NOT NULL,
      reason        text NOT NULL,
      status        varchar(8) NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open','replayed','failed')),
      replayed_at   timestamptz,
      replayed_by   varchar(200),
      replay_result text
    )
    """,
    "CREATE INDEX dead_letters_status ON dead_letters (status, id)",
    "CREATE INDEX dead_letters_device ON dead_letters (device_id, id)",
    """
    CREATE TABLE ingest_counters (
      shard         smallint PRIMARY KEY CHECK (shard BETWEEN 0 AND 63),
      received      bigint NOT NULL DEFAULT 0,
      stored        bigint NOT NULL DEFAULT 0,
      duplicates    bigint NOT NULL DEFAULT 0,
      corrections   bigint NOT NULL DEFAULT 0,
      dead_lettered bigint NOT NULL DEFAULT 0
    )
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for table in ("ingest_counters", "dead_letters", "annotations", "rollups", "sample_revisions"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
