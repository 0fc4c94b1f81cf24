"""Where samples live: a TimescaleDB hypertable when the extension can be created, else
native monthly partitions, decided once when the database is created."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text

from schemas.timeseries import PARTITIONED, samples_backend
from services import db as viu_db
from services.config import load_settings
from services.ingest import pipeline
from tests.conftest import TIMESCALEDB_TOOL
from tests.ingest.conftest import message, payload, register, sample


def test_samples_are_a_compressed_hypertable_on_timescaledb(db: Engine, timescale: None) -> None:
    with db.connect() as conn:
        (dimension,) = conn.execute(
            text(
                "SELECT column_name FROM timescaledb_information.dimensions "
                "WHERE hypertable_name = 'samples'"
            )
        ).one()
        compression = conn.execute(
            text(
                "SELECT attname, segmentby_column_index, orderby_column_index "
                "FROM timescaledb_information.compression_settings "
                "WHERE hypertable_name = 'samples' ORDER BY attname"
            )
        ).all()
        policy = conn.execute(
            text(
                "SELECT config->>'compress_after' FROM timescaledb_information.jobs "
                "WHERE hypertable_name = 'samples' AND proc_name = 'policy_compression'"
            )
        ).scalar()
    assert dimension == "ts"
    assert [tuple(r) for r in compression] == [("device_id", 1, None), ("ts", None, 1)]
    assert policy == "30 days"


def test_ingest_creates_no_partitions_on_timescaledb(db: Engine, timescale: None) -> None:
    register(db, "d1")
    pipeline.ingest(db, [message("d1", payload(sample(0), sample(60 * 24 * 40)))])
    with db.connect() as conn:
        partitioned = conn.execute(
            text("SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'samples'::regclass")
        ).scalar()
        chunks = conn.execute(text("SELECT count(*) FROM show_chunks('samples')")).scalar()
    assert partitioned == 0 and chunks == 2


def test_samples_and_their_chunks_are_indexed_by_device_and_time_only(db: Engine) -> None:
    """Migration 0013: TimescaleDB's default index on ts alone is gone (every query names the
    device); on both backends a stored sample costs one index entry, the primary key's."""
    register(db, "d1")
    pipeline.ingest(db, [message("d1", payload(sample(0), sample(60 * 24 * 40)))])
    with db.connect() as conn:
        indexes = conn.execute(
            text(
                "SELECT DISTINCT substring(pg_get_indexdef(i.indexrelid) FROM '\\((.*)\\)') "
                "FROM pg_index i WHERE i.indrelid = 'samples'::regclass "
                "OR i.indrelid IN (SELECT inhrelid FROM pg_inherits "
                "                  WHERE inhparent = 'samples'::regclass)"
            )
        ).scalars()
        children = conn.execute(
            text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'samples'::regclass")
        ).scalar()
    assert children and sorted(indexes) == ["device_id, ts"]


# --------------------------------------------- installed but not preloaded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def unpreloaded() -> Iterator[str]:
    """A private PostgreSQL with TimescaleDB installed but not in shared_preload_libraries."""
    if not TIMESCALEDB_TOOL.exists():
        pytest.skip(f"{TIMESCALEDB_TOOL} not found")
    home = Path(tempfile.mkdtemp(prefix="viu-nopreload-"))
    try:
        out = subprocess.run(
            ["bash", str(TIMESCALEDB_TOOL), "start", str(_free_port()), str(home), "--no-preload"],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        admin = out.stdout.strip().splitlines()[-1]
        name = f"viu_nopreload_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        subprocess.run(["bash", str(TIMESCALEDB_TOOL), "stop", str(home)], timeout=60)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(900)
def test_installed_but_not_preloaded_falls_back_to_partitions_with_one_warning(
    unpreloaded: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIU_")}
    env |= {"VIU_DATABASE_URL": unpreloaded, "VIU_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
    warnings = [line for line in output.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, output
    assert "not in shared_preload_libraries" in warnings[0]
    assert "shared_preload_libraries = 'timescaledb'" in warnings[0]

    engine = viu_db.make_engine(unpreloaded)
    try:
        with engine.connect() as conn:
            assert samples_backend(conn) == PARTITIONED
        register(engine, "d1")
        out = pipeline.ingest(engine, [message("d1", payload(sample(0), sample(5)))])
        assert out.stored == 2
        again = pipeline.ingest(engine, [message("d1", payload(sample(0, throughput=1)))])
        assert again.corrections == 1
        viu_db.upgrade(engine, load_settings(database_url=unpreloaded))  # a restart: no change
    finally:
        engine.dispose()


def test_a_user_who_may_not_create_the_extension_gets_partitions_and_one_warning(
    pg_admin_url: str, timescale: None, caplog: pytest.LogCaptureFixture
) -> None:
    suffix = uuid.uuid4().hex[:8]
    role, name = f"viu_noext_{suffix}", f"viu_noext_{suffix}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_admin_url.rsplit("/", 1)[0].replace("postgres@", f"{role}@") + "/" + name
    admin_of_db = pg_admin_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin_of_db, autocommit=True) as conn:
        conn.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
    engine = viu_db.make_engine(url)
    try:
        with caplog.at_level(logging.WARNING, logger="viu.storage"):
            viu_db.upgrade(engine, load_settings(database_url=url))
        with engine.connect() as conn:
            assert samples_backend(conn) == PARTITIONED
    finally:
        engine.dispose()
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE {role}")
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "viu.storage"]
    assert 'permission denied to create extension "timescaledb"' in warning
