"""Joint governance (spec §7): proposal remedies, two-party decisions, disputes, annotation
approval, value promises' corrective actions.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STATEMENTS = [
    # A proposal's remedy: new terms, or work for one party (spec §4).
    "ALTER TABLE proposals ADD COLUMN remedy varchar(20) NOT NULL DEFAULT 'change_terms'",
]

DOWNGRADE = [
    "ALTER TABLE proposals DROP COLUMN IF EXISTS remedy",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
