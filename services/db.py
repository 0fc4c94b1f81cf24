"""Database connection and migrations.

The engine is created explicitly and passed in; nothing connects at import
time, so ``viu --help`` never touches the database.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, text

from services.config import Settings

log = logging.getLogger(__name__)

MIGRATIONS = "schemas.migrations"


def sqlalchemy_url(url: str) -> str:
    """Normalise any postgres URL to SQLAlchemy's psycopg 3 dialect."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def libpq_url(url: str) -> str:
    """The same URL as plain libpq understands it (for psycopg.connect)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def make_engine(
    url: str,
    settings: Settings | None = None,
    *,
    application_name: str = "viu",
    pool_size: int | None = None,
    pre_ping: bool = True,
) -> Engine:
    """An engine with its own pool, sized and timed by ``settings`` (VIU_DB_POOL_*).

    Each part of viu gets an engine of its own (API, ingest, scheduler), so one
    part exhausting its pool never starves another; a checkout that waits
    longer than VIU_DB_POOL_TIMEOUT_S fails (the API answers 503) rather than
    hanging. ``pre_ping`` checks a connection with a round trip at every
    checkout; a caller that retries a transaction on a transient error itself
    (the ingest writer) can do without that round trip.
    """
    s = settings or Settings()
    return create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size or s.db_pool_size,
        max_overflow=s.db_max_overflow,
        pool_timeout=s.db_pool_timeout_s,
        pool_pre_ping=pre_ping,
        connect_args={
            "application_name": application_name,
            "connect_timeout": s.db_connect_timeout_s,
        },
    )


def alembic_config(engine_conn: object, settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(MIGRATIONS)))
    cfg.attributes["connection"] = engine_conn
    cfg.attributes["timeseries"] = {
        "chunk_interval": settings.timescale_chunk_interval,
        "compress_after": settings.timescale_compress_after,
        "retention": settings.timescale_retention,
        "partitions_ahead": settings.sample_partitions_ahead,
    }
    return cfg


def upgrade(engine: Engine, settings: Settings, revision: str = "head") -> None:
    """Apply migrations; serialised by an advisory lock so replicas can start together."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('viu.migrations'))"))
        command.upgrade(alembic_config(conn, settings), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
        if exists is None:
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception as exc:  # readiness must report, never raise
        log.debug("database ping failed: %s", exc)
        return False


def driver_connection(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy one, in the same transaction.

    For what SQLAlchemy has no words for: COPY, and several statements sent
    in one round trip (``psycopg.Connection.pipeline``).
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw  # type: ignore[no-any-return]
