"""The SQLAlchemy tables in schemas/db.py agree with what the migrations create."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from schemas.db import metadata


def test_every_table_and_column_of_schemas_db_exists_as_migrated(engine: Engine) -> None:
    found = inspect(engine)
    for table in metadata.sorted_tables:
        columns = {c["name"]: c for c in found.get_columns(table.name)}
        assert set(columns) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (
                f"{table.name}.{column.name}"
            )
        primary = found.get_pk_constraint(table.name)["constrained_columns"]
        assert set(primary) == {c.name for c in table.primary_key}, table.name
