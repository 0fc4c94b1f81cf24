"""The screen's epoch: a value that changes with every change to what the device screen reads.

The ingest writer asks PostgreSQL, per batch, which of its devices are
registered and when each one's first contract period starts
(``services.ingest.admission.DEVICES``, which reads ``devices`` and
``contract_versions``). It keeps those answers between batches and reads
``screen_epoch`` with each batch instead: any statement that changes either
table gives the epoch a new random value in its own transaction, so an
unchanged epoch means nothing the answers depend on has committed since they
were read (``admission.ScreenCache``).

The trigger runs before the statement: a transaction takes the epoch row's
lock with its first change to either table, before it holds anything else
there, so two such transactions queue on that row instead of deadlocking on
each other's devices. The triggers are ``ENABLE ALWAYS``: they fire under
``session_replication_role = replica`` too (a data load, a replica). An
``ALTER TABLE … DISABLE TRIGGER ALL`` (``pg_restore --disable-triggers``)
bypasses them: restart the ingesters after such a load.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

WATCHED = ("devices", "contract_versions")

UPGRADE = [
    """
    CREATE TABLE screen_epoch (
      one   boolean PRIMARY KEY DEFAULT true CHECK (one),
      epoch uuid NOT NULL
    )
    """,
    "INSERT INTO screen_epoch (epoch) VALUES (gen_random_uuid())",
    # An upsert: the row comes back if someone emptied the table.
    """
    CREATE FUNCTION viu_screen_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO screen_epoch (epoch) VALUES (gen_random_uuid())
      ON CONFLICT (one) DO UPDATE SET epoch = EXCLUDED.epoch;
      RETURN NULL;
    END $$
    """,
    *(
        statement
        for table in WATCHED
        for statement in (
            f"CREATE TRIGGER {table}_screen_changed "
            f"BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION viu_screen_changed()",
            f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_screen_changed",
        )
    ),
]

DOWNGRADE = [
    *(f"DROP TRIGGER IF EXISTS {table}_screen_changed ON {table}" for table in WATCHED),
    "DROP FUNCTION IF EXISTS viu_screen_changed()",
    "DROP TABLE IF EXISTS screen_epoch",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
