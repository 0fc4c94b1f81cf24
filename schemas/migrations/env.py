"""Alembic environment: runs migrations on the connection viu hands it."""

from __future__ import annotations

from alembic import context

from schemas.db import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("viu runs migrations through services.db.upgrade(), not the alembic CLI")

context.configure(connection=connection, target_metadata=metadata, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
