"""Vocabularies live in ``schemas/vocabulary.py``: drop the CHECKs that restated them.

Downtime causes and proposal kinds were listed again in CHECK constraints,
so adding a cause or a detector meant editing a migration. Every door
validates them against the one vocabulary (pydantic at MQTT, HTTP and
replay; the registry for proposal kinds); the database keeps the structural
constraints.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

RESTATED = (
    ("sample_revisions", "sample_revisions_downtime_cause_check"),
    ("annotations", "annotations_cause_check"),
    ("proposals", "proposals_kind_check"),
)


def upgrade() -> None:
    for table, constraint in RESTATED:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}")
