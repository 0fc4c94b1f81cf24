"""People next to tokens (spec §8): accounts, sessions, failed sign-ins.

A person's password is stored as an Argon2 hash and a session as the SHA-256
of its cookie value, so a copy of the database signs nobody in. Sign-in
attempts are kept (pruned after a day) because the slow-down after failures
must hold across API replicas and restarts.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE users (
          id            bigserial PRIMARY KEY,
          email         varchar(254) NOT NULL UNIQUE CHECK (email = lower(email)),
          name          varchar(100) NOT NULL CHECK (length(name) > 0),
          role          varchar(16) NOT NULL,
          party         varchar(200),
          password_hash text NOT NULL,
          created_at    timestamptz NOT NULL,
          created_by    varchar(200),
          disabled_at   timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE user_sessions (
          id         bigserial PRIMARY KEY,
          user_id    bigint NOT NULL REFERENCES users,
          token_hash varchar(64) NOT NULL UNIQUE,
          created_at timestamptz NOT NULL,
          expires_at timestamptz NOT NULL,
          revoked_at timestamptz,
          source     varchar(200),
          user_agent varchar(200)
        )
        """
    )
    op.execute("CREATE INDEX user_sessions_user ON user_sessions (user_id)")
    op.execute(
        """
        CREATE TABLE sign_in_attempts (
          id      bigserial PRIMARY KEY,
          at      timestamptz NOT NULL,
          email   varchar(254) NOT NULL,
          address varchar(64) NOT NULL,
          ok      boolean NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX sign_in_attempts_email ON sign_in_attempts (email, at)")
    op.execute("CREATE INDEX sign_in_attempts_address ON sign_in_attempts (address, at)")
    op.execute("CREATE INDEX sign_in_attempts_at ON sign_in_attempts (at)")
