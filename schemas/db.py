"""The database schema as SQLAlchemy Core tables, used by every repository.

Migrations under ``schemas/migrations`` create these tables (with the
PostgreSQL-only parts: partitioning, hypertables, triggers);
``tests/test_schema.py`` checks that the two agree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

from schemas.vocabulary import DOWNTIME_CAUSES

metadata = MetaData()


def down_column(cause: str) -> str:
    """The rollup column summing the downtime minutes of ``cause``."""
    return f"down_{cause}"


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

# One owner per device at a time (migration 0008): a partial unique index on
# device_id WHERE until_period IS NULL; closed rows are the history.
device_owners = Table(
    "device_owners",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("device_id", String(64), ForeignKey("devices.device_id"), nullable=False),
    Column("contract_id", String(64), ForeignKey("contracts.contract_id"), nullable=False),
    Column("from_period", String(7), nullable=False),
    Column("until_period", String(7)),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True)),
)


def _sample_values() -> list[Column[object]]:
    """A sample's stored values; ``samples`` and ``sample_revisions`` both hold them."""
    return [
        Column("interval_s", Integer, nullable=False),
        Column("uptime_min", Numeric, nullable=False),
        Column("quality_min", Numeric, nullable=False),
        Column("throughput", Numeric, nullable=False),
        Column("downtime_cause", String(16), nullable=False),
        Column("seq", BigInteger),
        Column("received_at", DateTime(timezone=True), nullable=False),
    ]


samples = Table(
    "samples",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("ts", DateTime(timezone=True), primary_key=True),
    *_sample_values(),
)

# --- settlement (migration 0003)

statements = Table(
    "statements",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("contract_id", String(64), ForeignKey("contracts.contract_id"), nullable=False),
    Column("period", String(7), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("status", String(8), nullable=False),
    Column("adjusts_id", BigInteger, ForeignKey("statements.id")),
    Column("contract_version", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("net", Numeric, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("inputs_digest", String(64), nullable=False),
    Column("watermark", DateTime(timezone=True)),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    Column("issued_at", DateTime(timezone=True)),
    Column("issued_by", String(200)),
)

settlement_runs = Table(
    "settlement_runs",
    metadata,
    Column("contract_id", String(64), ForeignKey("contracts.contract_id"), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("outcome", String),
)

# --- ingest (migration 0002)

sample_revisions = Table(
    "sample_revisions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("device_id", String(64), nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    *_sample_values(),
    Column("revised_at", DateTime(timezone=True), nullable=False),
)


def _rollup_columns(*, keyed: bool) -> list[Column[Any]]:
    """A device's 15-minute bucket and its sums (``keyed``: the pair is the primary key)."""
    return [
        Column("device_id", String(64), primary_key=keyed, nullable=False),
        Column("bucket", DateTime(timezone=True), primary_key=keyed, nullable=False),
        Column("samples", BigInteger, nullable=False),
        Column("reported_s", BigInteger, nullable=False),
        Column("uptime_min", Numeric, nullable=False),
        Column("quality_min", Numeric, nullable=False),
        Column("throughput", Numeric, nullable=False),
        *(Column(down_column(c), Numeric, nullable=False) for c in DOWNTIME_CAUSES),
        Column("last_received_at", DateTime(timezone=True), nullable=False),
    ]


rollups = Table("rollups", metadata, *_rollup_columns(keyed=True))
# What writes added since the last fold (``services.ingest.rollups``), any
# number of rows per device and bucket; the view ``rollup_totals`` (migration
# 0014) is rollups plus these, one row per device and bucket.
rollup_deltas = Table("rollup_deltas", metadata, *_rollup_columns(keyed=False))

# Not named ``annotations``: that would shadow ``from __future__ import annotations``.
annotation_table = Table(
    "annotations",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("device_id", String(64), ForeignKey("devices.device_id"), nullable=False),
    Column("from_ts", DateTime(timezone=True), nullable=False),
    Column("to_ts", DateTime(timezone=True), nullable=False),
    Column("cause", String(16), nullable=False),
    Column("note", Text, nullable=False),
    Column("author", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status", String(8), nullable=False),
    Column("party", String(8)),
    Column("contract_id", String(64), ForeignKey("contracts.contract_id")),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("topic", Text, nullable=False),
    Column("device_id", String(64)),
    Column("payload", LargeBinary, nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(8), nullable=False),
    Column("replayed_at", DateTime(timezone=True)),
    Column("replayed_by", String(200)),
    Column("replay_result", Text),
)

ingest_counters = Table(
    "ingest_counters",
    metadata,
    Column("shard", SmallInteger, primary_key=True),
    Column("received", BigInteger, nullable=False),
    Column("stored", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("corrections", BigInteger, nullable=False),
    Column("dead_lettered", BigInteger, nullable=False),
)

# --- proposals (migration 0004)

proposals = Table(
    "proposals",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("contract_id", String(64), ForeignKey("contracts.contract_id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("remedy", String(20), nullable=False),
    Column("subject", String(100), nullable=False),
    Column("kpi", String(32)),
    Column("term", String(100), nullable=False),
    Column("status", String(10), nullable=False),
    Column("based_on_version", Integer, nullable=False),
    Column("window_from", String(7), nullable=False),
    Column("window_to", String(7), nullable=False),
    Column("evidence", JSONB, nullable=False),
    Column("current", JSONB),
    Column("proposed", JSONB),
    Column("proposed_terms", JSONB),
    Column("rationale", Text, nullable=False),
    Column("impact", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(200)),
    Column("decided_at", DateTime(timezone=True)),
    Column("reason", Text),
    Column("accepted_version", Integer),
    Column("superseded_by", BigInteger, ForeignKey("proposals.id")),
    Column("action_id", BigInteger, ForeignKey("actions.id", use_alter=True)),
)

costs = Table(
    "costs",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("contract_id", String(64), ForeignKey("contracts.contract_id"), nullable=False),
    Column("period", String(7), nullable=False),
    Column("amount", Numeric, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("category", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

detector_settings = Table(
    "detector_settings",
    metadata,
    Column("contract_id", String(64), ForeignKey("contracts.contract_id"), primary_key=True),
    Column("settings", JSONB, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# --- audit (migration 0005)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(16)),
    Column("party", String(200)),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(200), nullable=False),
    Column("source", String(200)),
    Column("details", JSONB, nullable=False),
)

# --- people (migration 0007)

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("party", String(200)),
    Column("password_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200)),
    Column("disabled_at", DateTime(timezone=True)),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("source", String(200)),
    Column("user_agent", String(200)),
)

sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("email", String(254), nullable=False),
    Column("address", String(64), nullable=False),
    Column("ok", Boolean, nullable=False),
)

# --- governance (migration 0009)

decisions = Table(
    "decisions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("object_type", String(16), nullable=False),
    Column("object_id", BigInteger, nullable=False),
    Column("contract_id", String(64), ForeignKey("contracts.contract_id"), nullable=False),
    Column("party", String(8), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("decided_by", String(200), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text),
    Column("as_admin", Boolean, nullable=False),
)

disputes = Table(
    "disputes",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("contract_id", String(64), ForeignKey("contracts.contract_id"), nullable=False),
    Column("period", String(7), nullable=False),
    Column("line_kind", String(16)),
    Column("kpi", String(32)),
    Column("annotation_id", BigInteger),
    Column("reason", Text, nullable=False),
    Column("raised_party", String(8), nullable=False),
    Column("raised_by", String(200), nullable=False),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("raised_as_admin", Boolean, nullable=False),
    Column("status", String(10), nullable=False),
    Column("resolved_party", String(8)),
    Column("resolved_by", String(200)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_as_admin", Boolean),
    Column("note", Text),
    Column("result", JSONB),
    Column("override_reason", Text),
    Column("overridden_by", String(200)),
    Column("overridden_at", DateTime(timezone=True)),
)

actions = Table(
    "actions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("contract_id", String(64), ForeignKey("contracts.contract_id"), nullable=False),
    Column("title", Text, nullable=False),
    Column("owner", String(8), nullable=False),
    Column("kpi", String(32)),
    Column("devices", JSONB, nullable=False),
    Column("due", Date, nullable=False),
    Column("proposal_id", BigInteger, ForeignKey("proposals.id")),
    Column("status", String(8), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("closed_by", String(200)),
    Column("closed_at", DateTime(timezone=True)),
    Column("note", Text),
)

# --- Sparkplug B connection state (migration 0010)

sparkplug_events = Table(
    "sparkplug_events",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("group_id", Text, nullable=False),
    Column("edge_node", Text, nullable=False),
    Column("device_id", String(64)),
    Column("kind", String(16), nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("seq", Integer),
    Column("bd_seq", BigInteger),
    Column("reason", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

device_connectivity = Table(
    "device_connectivity",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("ts", DateTime(timezone=True), primary_key=True),
    Column("online", Boolean, nullable=False),
    Column("cause", String(8), primary_key=True),
    Column("group_id", Text, nullable=False),
    Column("edge_node", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
