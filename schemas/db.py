"""The database schema as SQLAlchemy Core tables, used by every repository.

Migrations under ``schemas/migrations`` create these tables (with the
PostgreSQL-only parts: partitioning, hypertables, triggers);
``tests/test_schema.py`` checks that the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("party", String(200)),
    Column("label", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

contracts = Table(
    "contracts",
    metadata,
    Column("contract_id", String(64), primary_key=True),
    Column("provider", String(200), nullable=False),
    Column("customer", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

contract_versions = Table(
    "contract_versions",
    metadata,
    Column("contract_id", String(64), ForeignKey("contracts.contract_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("effective_from", String(7), nullable=False),
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200)),
)

devices = Table(
    "devices",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("contract_id", String(64), ForeignKey("contracts.contract_id"), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

samples = Table(
    "samples",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("ts", DateTime(timezone=True), primary_key=True),
    Column("interval_s", Integer, nullable=False),
    Column("uptime_min", Numeric, nullable=False),
    Column("quality_min", Numeric, nullable=False),
    Column("throughput", Numeric, nullable=False),
    Column("downtime_cause", String(16), nullable=False),
    Column("seq", BigInteger),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
