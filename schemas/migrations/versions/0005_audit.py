"""Audit trail: every state change, who, when, what and from where; append-only.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE audit_log (
          id          bigserial PRIMARY KEY,
          at          timestamptz NOT NULL DEFAULT clock_timestamp(),
          actor       varchar(200) NOT NULL,
          role        varchar(16),
          party       varchar(200),
          action      varchar(64) NOT NULL,
          object_type varchar(32) NOT NULL,
          object_id   varchar(200) NOT NULL,
          source      varchar(200),
          details     jsonb NOT NULL DEFAULT '{}'
        )
        """
    )
    op.execute("CREATE INDEX audit_log_object ON audit_log (object_type, object_id)")
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION viu_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION viu_refuse_change()"
    )
