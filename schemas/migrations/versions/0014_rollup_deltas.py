"""Writers append rollup deltas; a fold adds them to ``rollups`` later, in bulk.

Until now every write added its deltas to ``rollups`` with ``INSERT … ON
CONFLICT DO UPDATE``: an index lookup, a locked row and a new row version per
device and bucket of every batch, and two writers with the same bucket queued
on its row lock. Now a write appends its deltas to ``rollup_deltas`` (a heap
with no index: nothing to look up, nothing to lock), and a fold
(``services.ingest.rollups.fold``, run by the ingester every second and by
the settlement tick) moves them into ``rollups`` in one statement, one row
version per device and bucket for all the deltas since the last fold.

Readers never see the difference: settlement reads ``rollups`` and the
deltas not folded yet together, and the view ``rollup_totals`` shows them
per device and bucket. The sums are exact (integers and numerics), so
folding early or late changes no figure.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COUNTS = ("samples", "reported_s")
AMOUNTS = (
    "uptime_min",
    "quality_min",
    "throughput",
    "down_unplanned",
    "down_planned",
    "down_customer",
    "down_external",
)
ALL = f"device_id, bucket, {', '.join(COUNTS + AMOUNTS)}, last_received_at"
SUMS = ", ".join(
    [f"sum({c})::bigint AS {c}" for c in COUNTS]
    + [f"trim_scale(sum({c})) AS {c}" for c in AMOUNTS]
    + ["max(last_received_at) AS last_received_at"]
)
TOTALS = f"""
CREATE VIEW rollup_totals AS
SELECT device_id, bucket, {SUMS}
  FROM (SELECT {ALL} FROM rollups UNION ALL SELECT {ALL} FROM rollup_deltas) r
 GROUP BY device_id, bucket
"""


def upgrade() -> None:
    # LIKE copies the columns and their NOT NULL, not the primary key: no index.
    # The ingester vacuums the table after every fold, when it is empty: a
    # vacuum would then try to truncate it, which needs a lock that every
    # writer's insert conflicts with (and waits up to 5 s for it).
    op.execute("CREATE TABLE rollup_deltas (LIKE rollups) WITH (vacuum_truncate = false)")
    op.execute(TOTALS)


def downgrade() -> None:
    # What was not folded yet goes into rollups first: nothing is lost (the
    # lock holds back writers that would append after the statement read).
    op.execute("LOCK TABLE rollup_deltas IN EXCLUSIVE MODE")
    sets = ", ".join(
        [f"{c} = rollups.{c} + EXCLUDED.{c}" for c in COUNTS]
        + [f"{c} = trim_scale(rollups.{c} + EXCLUDED.{c})" for c in AMOUNTS]
    )
    op.execute(
        f"INSERT INTO rollups ({ALL}) SELECT device_id, bucket, {SUMS} FROM rollup_deltas "
        f"GROUP BY device_id, bucket ON CONFLICT (device_id, bucket) DO UPDATE SET {sets}, "
        "last_received_at = greatest(rollups.last_received_at, EXCLUDED.last_received_at)"
    )
    op.execute("DROP VIEW rollup_totals")
    op.execute("DROP TABLE rollup_deltas")
