"""Foundation: API tokens, contracts with immutable versions, devices, samples.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from alembic import context, op

from schemas.timeseries import ENABLE_HINT, enable_timescale, ensure_partitions, months_around

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

log = logging.getLogger("viu.storage")

IMMUTABLE_FN = """
CREATE OR REPLACE FUNCTION viu_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'viu: % rows are immutable (% refused)', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'integrity_constraint_violation';
END $$;
"""


def _samples_timescale(opts: dict[str, object]) -> None:
    op.execute(SAMPLES_COLUMNS.format(suffix=""))
    op.execute(
        "SELECT create_hypertable('samples', 'ts', "
        f"chunk_time_interval => INTERVAL '{opts['chunk_interval']}')"
    )
    if opts.get("compress_after"):
        op.execute(
            "ALTER TABLE samples SET (timescaledb.compress, "
            "timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'ts')"
        )
        op.execute(f"SELECT add_compression_policy('samples', INTERVAL '{opts['compress_after']}')")
    if opts.get("retention"):
        op.execute(f"SELECT add_retention_policy('samples', INTERVAL '{opts['retention']}')")


def _samples_partitioned(opts: dict[str, object]) -> None:
    op.execute(SAMPLES_COLUMNS.format(suffix="PARTITION BY RANGE (ts)"))
    ahead = int(str(opts.get("partitions_ahead", 3)))
    ensure_partitions(op.get_bind(), months_around(datetime.now(UTC), 12, ahead))


SAMPLES_COLUMNS = """
CREATE TABLE samples (
  device_id      varchar(64) NOT NULL,
  ts             timestamptz NOT NULL,
  interval_s     integer NOT NULL CHECK (interval_s BETWEEN 1 AND 86400),
  uptime_min     numeric NOT NULL CHECK (uptime_min >= 0),
  quality_min    numeric NOT NULL CHECK (quality_min >= 0),
  throughput     numeric NOT NULL CHECK (throughput >= 0),
  downtime_cause varchar(16) NOT NULL,
  seq            bigint,
  received_at    timestamptz NOT NULL,
  PRIMARY KEY (device_id, ts)
) {suffix}
"""


def upgrade() -> None:
    opts: dict[str, object] = context.config.attributes.get("timeseries", {})
    op.execute(IMMUTABLE_FN)
    op.execute(
        """
        CREATE TABLE api_tokens (
          id          bigserial PRIMARY KEY,
          token_hash  varchar(64) NOT NULL UNIQUE,
          role        varchar(16) NOT NULL
                      CHECK (role IN ('admin','provider','customer','finance','auditor')),
          party       varchar(200),
          label       varchar(200),
          created_at  timestamptz NOT NULL DEFAULT now(),
          expires_at  timestamptz,
          revoked_at  timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE contracts (
          contract_id varchar(64) PRIMARY KEY,
          provider    varchar(200) NOT NULL,
          customer    varchar(200) NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX contracts_provider ON contracts (provider)")
    op.execute("CREATE INDEX contracts_customer ON contracts (customer)")
    op.execute(
        """
        CREATE TABLE contract_versions (
          contract_id    varchar(64) NOT NULL REFERENCES contracts,
          version        integer NOT NULL CHECK (version >= 1),
          effective_from char(7) NOT NULL CHECK (effective_from ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
          body           jsonb NOT NULL,
          created_at     timestamptz NOT NULL DEFAULT now(),
          created_by     varchar(200),
          PRIMARY KEY (contract_id, version),
          UNIQUE (contract_id, effective_from)
        )
        """
    )
    op.execute(
        "CREATE TRIGGER contract_versions_immutable BEFORE UPDATE OR DELETE ON contract_versions "
        "FOR EACH ROW EXECUTE FUNCTION viu_refuse_change()"
    )
    op.execute(
        """
        CREATE TABLE devices (
          device_id     varchar(64) PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9._-]{1,64}$'),
          contract_id   varchar(64) NOT NULL REFERENCES contracts,
          registered_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX devices_contract ON devices (contract_id)")
    why_not = enable_timescale(op.get_bind())
    if why_not is None:
        _samples_timescale(opts)
    else:
        log.warning("samples use native monthly partitions: %s; %s", why_not, ENABLE_HINT)
        _samples_partitioned(opts)
