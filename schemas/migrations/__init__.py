"""Alembic migrations for viu (applied by `viu db upgrade` and `viu up`)."""
