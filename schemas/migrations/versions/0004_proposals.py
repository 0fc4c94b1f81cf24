"""Realignment proposals, the provider's cost to serve, per-contract detector settings.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KINDS = (
    "chronic_penalty",
    "unreachable_bonus",
    "slack_target",
    "cap_binding",
    "commitment_mismatch",
    "excused_creep",
    "data_gaps",
    "unfair_split",
)
PERIOD = "CHECK ({col} ~ '^[0-9]{{4}}-(0[1-9]|1[0-2])$')"

STATEMENTS = [
    f"""
    CREATE TABLE proposals (
      id               bigserial PRIMARY KEY,
      contract_id      varchar(64) NOT NULL REFERENCES contracts,
      kind             varchar(32) NOT NULL CHECK (kind IN ({", ".join(f"'{k}'" for k in KINDS)})),
      subject          varchar(100) NOT NULL,
      kpi              varchar(32),
      term             varchar(100) NOT NULL,
      status           varchar(10) NOT NULL DEFAULT 'open'
                       CHECK (status IN ('open', 'accepted', 'rejected', 'superseded')),
      based_on_version integer NOT NULL,
      window_from      char(7) NOT NULL {PERIOD.format(col="window_from")},
      window_to        char(7) NOT NULL {PERIOD.format(col="window_to")},
      evidence         jsonb NOT NULL,
      current          jsonb,
      proposed         jsonb,
      proposed_terms   jsonb,
      rationale        text NOT NULL,
      impact           jsonb NOT NULL,
      created_at       timestamptz NOT NULL DEFAULT now(),
      updated_at       timestamptz NOT NULL DEFAULT now(),
      decided_by       varchar(200),
      decided_at       timestamptz,
      reason           text,
      accepted_version integer,
      superseded_by    bigint REFERENCES proposals,
      CHECK ((status IN ('accepted', 'rejected')) = (decided_at IS NOT NULL))
    )
    """,
    # The dedupe rule as a constraint: one open proposal per drift.
    "CREATE UNIQUE INDEX proposals_one_open ON proposals (contract_id, kind, subject) "
    "WHERE status = 'open'",
    "CREATE INDEX proposals_contract ON proposals (contract_id, id)",
    f"""
    CREATE TABLE costs (
      id          bigserial PRIMARY KEY,
      contract_id varchar(64) NOT NULL REFERENCES contracts,
      period      char(7) NOT NULL {PERIOD.format(col="period")},
      amount      numeric NOT NULL,
      currency    char(3) NOT NULL,
      category    varchar(64) NOT NULL,
      note        text NOT NULL DEFAULT '',
      created_by  varchar(200) NOT NULL,
      created_at  timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX costs_contract_period ON costs (contract_id, period)",
    # Costs are entries, like ledger lines: a correction is a new (negative) entry.
    "CREATE TRIGGER costs_immutable BEFORE UPDATE OR DELETE ON costs "
    "FOR EACH ROW EXECUTE FUNCTION viu_refuse_change()",
    """
    CREATE TABLE detector_settings (
      contract_id varchar(64) PRIMARY KEY REFERENCES contracts,
      settings    jsonb NOT NULL,
      updated_by  varchar(200) NOT NULL,
      updated_at  timestamptz NOT NULL DEFAULT now()
    )
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for table in ("detector_settings", "costs", "proposals"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
