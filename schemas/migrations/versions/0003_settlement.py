"""Settlement: statements (draft → issued, immutable once issued) and scheduled runs.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE statements (
          id               bigserial PRIMARY KEY,
          contract_id      varchar(64) NOT NULL REFERENCES contracts,
          period           char(7) NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
          seq              integer NOT NULL CHECK (seq >= 0),
          status           varchar(8) NOT NULL CHECK (status IN ('draft', 'issued')),
          adjusts_id       bigint REFERENCES statements,
          contract_version integer NOT NULL,
          currency         char(3) NOT NULL,
          net              numeric NOT NULL,
          body             jsonb NOT NULL,
          inputs_digest    varchar(64) NOT NULL,
          watermark        timestamptz,
          computed_at      timestamptz NOT NULL,
          issued_at        timestamptz,
          issued_by        varchar(200),
          UNIQUE (contract_id, period, seq),
          CHECK ((seq = 0) = (adjusts_id IS NULL)),
          CHECK ((status = 'issued') = (issued_at IS NOT NULL))
        )
        """
    )
    op.execute("CREATE INDEX statements_period ON statements (period)")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION viu_statement_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF OLD.status = 'issued' THEN
            RAISE EXCEPTION 'viu: issued statement % is immutable (% refused)', OLD.id, TG_OP
              USING ERRCODE = 'integrity_constraint_violation';
          END IF;
          IF TG_OP = 'DELETE' THEN
            RETURN OLD;
          END IF;
          RETURN NEW;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER statements_issued_immutable BEFORE UPDATE OR DELETE ON statements "
        "FOR EACH ROW EXECUTE FUNCTION viu_statement_guard()"
    )
    op.execute(
        "CREATE TRIGGER statements_no_truncate BEFORE TRUNCATE ON statements "
        "FOR EACH STATEMENT EXECUTE FUNCTION viu_refuse_change()"
    )
    op.execute(
        """
        CREATE TABLE settlement_runs (
          contract_id varchar(64) NOT NULL REFERENCES contracts,
          period      char(7) NOT NULL,
          kind        varchar(32) NOT NULL,
          started_at  timestamptz NOT NULL DEFAULT now(),
          finished_at timestamptz,
          outcome     text,
          PRIMARY KEY (contract_id, period, kind)
        )
        """
    )
