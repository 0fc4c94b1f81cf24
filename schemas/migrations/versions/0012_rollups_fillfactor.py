"""Rollups leave room on each page for the next versions of their rows (fillfactor 70).

Every batch updates the rollup rows of its devices' current 15-minute buckets,
so a row gets a new version with nearly every sample of its device. On a full
page that version goes to another page, with a new index entry and more WAL;
with free room on the page PostgreSQL writes it there (a heap-only tuple) and
prunes the old ones in place. Measured on a live-shaped write (400
single-sample messages from 400 devices per transaction, docs/benchmarks.md,
issue 17 round 18): the rollups statement 7.5 → 6.0 µs per sample, WAL 3.10 →
2.27 records per sample. Pages written before this migration keep their
fill until they are rewritten (``VACUUM FULL rollups`` or a reload).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

FILLFACTOR = 70


def upgrade() -> None:
    op.execute(f"ALTER TABLE rollups SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    op.execute("ALTER TABLE rollups RESET (fillfactor)")
