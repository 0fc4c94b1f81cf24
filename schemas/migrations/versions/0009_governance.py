"""Joint governance (spec §4, §7): remedies, two-party decisions, disputes, annotation
approval, corrective actions, and proposal versions that are amended until they govern.

- ``proposals.remedy``: new terms, or work for one party.
- ``decisions``: each party's decision on a proposal or an annotation, append-only.
- ``annotations.status``/``party``/``contract_id``: one party's annotation is
  ``pending`` until the other approves it; only ``approved`` ones count. Rows
  written before this migration counted already: they stay ``approved``. The
  content of an annotation never changes; only its status may (a guard
  replaces the blanket immutability trigger).
- ``contract_versions``: a version that has governed no period yet (its month
  has not begun anywhere on earth and no statement names it) may be amended,
  so that proposals both parties accept one by one in one month end up in
  one version. Once in force, a version is immutable as before.
- ``disputes`` and ``actions``.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PERIOD = "CHECK ({col} ~ '^[0-9]{{4}}-(0[1-9]|1[0-2])$')"

ANNOTATION_GUARD = """
CREATE OR REPLACE FUNCTION viu_annotation_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND (NEW.id, NEW.device_id, NEW.from_ts, NEW.to_ts, NEW.cause, NEW.note, NEW.author,
          NEW.created_at, NEW.party, NEW.contract_id)
         IS NOT DISTINCT FROM
         (OLD.id, OLD.device_id, OLD.from_ts, OLD.to_ts, OLD.cause, OLD.note, OLD.author,
          OLD.created_at, OLD.party, OLD.contract_id) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'viu: an annotation''s content is immutable (% refused); only its status changes',
    TG_OP USING ERRCODE = 'integrity_constraint_violation';
END $$;
"""

# UTC+14 is the earliest local time on earth: a month later than the current month there
# has begun nowhere, whatever the contract's time zone.
VERSION_GUARD = """
CREATE OR REPLACE FUNCTION viu_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND (NEW.contract_id, NEW.version, NEW.effective_from, NEW.created_at)
         IS NOT DISTINCT FROM (OLD.contract_id, OLD.version, OLD.effective_from, OLD.created_at)
     AND OLD.effective_from > to_char(now() AT TIME ZONE 'UTC' + INTERVAL '14 hours', 'YYYY-MM')
     AND NOT EXISTS (SELECT 1 FROM statements s
                     WHERE s.contract_id = OLD.contract_id AND s.contract_version = OLD.version)
  THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'viu: contract_versions rows are immutable once they govern a period (% refused)',
    TG_OP USING ERRCODE = 'integrity_constraint_violation';
END $$;
"""

STATEMENTS = [
    "ALTER TABLE proposals ADD COLUMN remedy varchar(20) NOT NULL DEFAULT 'change_terms'",
    """
    CREATE TABLE decisions (
      id          bigserial PRIMARY KEY,
      object_type varchar(16) NOT NULL,
      object_id   bigint NOT NULL,
      contract_id varchar(64) NOT NULL REFERENCES contracts,
      party       varchar(8) NOT NULL,
      decision    varchar(16) NOT NULL,
      decided_by  varchar(200) NOT NULL,
      decided_at  timestamptz NOT NULL DEFAULT now(),
      reason      text,
      as_admin    boolean NOT NULL DEFAULT false,
      UNIQUE (object_type, object_id, party)
    )
    """,
    "CREATE INDEX decisions_contract ON decisions (contract_id, decided_at)",
    "CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions "
    "FOR EACH ROW EXECUTE FUNCTION viu_refuse_change()",
    "ALTER TABLE annotations ADD COLUMN status varchar(8) NOT NULL DEFAULT 'approved'",
    "ALTER TABLE annotations ADD COLUMN party varchar(8)",
    "ALTER TABLE annotations ADD COLUMN contract_id varchar(64) REFERENCES contracts",
    "DROP TRIGGER annotations_immutable ON annotations",
    "UPDATE annotations a SET contract_id = d.contract_id FROM devices d "
    "WHERE d.device_id = a.device_id",
    "ALTER TABLE annotations ALTER COLUMN status DROP DEFAULT",
    ANNOTATION_GUARD,
    "CREATE TRIGGER annotations_guard BEFORE UPDATE OR DELETE ON annotations "
    "FOR EACH ROW EXECUTE FUNCTION viu_annotation_guard()",
    "CREATE INDEX annotations_contract_status ON annotations (contract_id, status)",
    VERSION_GUARD,
    "DROP TRIGGER contract_versions_immutable ON contract_versions",
    "CREATE TRIGGER contract_versions_guard BEFORE UPDATE OR DELETE ON contract_versions "
    "FOR EACH ROW EXECUTE FUNCTION viu_version_guard()",
    f"""
    CREATE TABLE disputes (
      id              bigserial PRIMARY KEY,
      contract_id     varchar(64) NOT NULL REFERENCES contracts,
      period          char(7) NOT NULL {PERIOD.format(col="period")},
      line_kind       varchar(16),
      kpi             varchar(32),
      annotation_id   bigint,
      reason          text NOT NULL,
      raised_party    varchar(8) NOT NULL,
      raised_by       varchar(200) NOT NULL,
      raised_at       timestamptz NOT NULL DEFAULT now(),
      raised_as_admin boolean NOT NULL DEFAULT false,
      status          varchar(10) NOT NULL DEFAULT 'open',
      resolved_party  varchar(8),
      resolved_by     varchar(200),
      resolved_at     timestamptz,
      resolved_as_admin boolean,
      note            text,
      result          jsonb,
      override_reason text,
      overridden_by   varchar(200),
      overridden_at   timestamptz,
      CHECK ((status = 'open') = (resolved_at IS NULL))
    )
    """,
    "CREATE INDEX disputes_contract_period ON disputes (contract_id, period)",
    """
    CREATE TABLE actions (
      id          bigserial PRIMARY KEY,
      contract_id varchar(64) NOT NULL REFERENCES contracts,
      title       text NOT NULL,
      owner       varchar(8) NOT NULL,
      kpi         varchar(32),
      devices     jsonb NOT NULL,
      due         date NOT NULL,
      proposal_id bigint REFERENCES proposals,
      status      varchar(8) NOT NULL DEFAULT 'open',
      created_by  varchar(200) NOT NULL,
      created_at  timestamptz NOT NULL DEFAULT now(),
      closed_by   varchar(200),
      closed_at   timestamptz,
      note        text,
      CHECK ((status = 'open') = (closed_at IS NULL))
    )
    """,
    "CREATE INDEX actions_contract ON actions (contract_id, id)",
    # The action an accepted corrective_action proposal created (or joined: the same open work).
    "ALTER TABLE proposals ADD COLUMN action_id bigint REFERENCES actions",
]

DOWNGRADE = [
    "ALTER TABLE proposals DROP COLUMN IF EXISTS action_id",
    "DROP TABLE IF EXISTS actions",
    "DROP TABLE IF EXISTS disputes",
    "DROP TRIGGER IF EXISTS contract_versions_guard ON contract_versions",
    "CREATE TRIGGER contract_versions_immutable BEFORE UPDATE OR DELETE ON contract_versions "
    "FOR EACH ROW EXECUTE FUNCTION viu_refuse_change()",
    "DROP FUNCTION IF EXISTS viu_version_guard()",
    "DROP TRIGGER IF EXISTS annotations_guard ON annotations",
    "DROP INDEX IF EXISTS annotations_contract_status",
    "ALTER TABLE annotations DROP COLUMN IF EXISTS contract_id",
    "ALTER TABLE annotations DROP COLUMN IF EXISTS party",
    "ALTER TABLE annotations DROP COLUMN IF EXISTS status",
    "CREATE TRIGGER annotations_immutable BEFORE UPDATE OR DELETE ON annotations "
    "FOR EACH ROW EXECUTE FUNCTION viu_refuse_change()",
    "DROP FUNCTION IF EXISTS viu_annotation_guard()",
    "DROP TABLE IF EXISTS decisions",
    "ALTER TABLE proposals DROP COLUMN IF EXISTS remedy",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
