"""Test harness: the real PostgreSQL and MQTT broker, never mocks.

Uses PostgreSQL on 127.0.0.1:5432 and Mosquitto on 127.0.0.1:1883 when they
answer, else the embedded ones viu itself falls back to. Each test run gets a
fresh database, migrated once; ``db`` empties the data tables before a test.

Two lanes (``make test``): the whole suite on plain PostgreSQL, then, with
``VIU_TEST_LANE=timescaledb`` and ``VIU_TEST_PG_ADMIN_URL`` pointing at a
TimescaleDB cluster (``.ci/timescaledb-lane``), only the tests that use the
database again. A test that holds for one storage only asks for ``backend``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text

from schemas.timeseries import TIMESCALE, samples_backend
from services import db as viu_db
from services.config import Settings, load_settings
from services.embedded import (
    EmbeddedBroker,
    free_port,
    start_broker,
    start_mosquitto,
    start_postgres,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TIMESCALEDB_TOOL = SHARED / "tools" / "timescaledb.sh"
LANE = os.environ.get("VIU_TEST_LANE", "")


def pytest_report_header() -> str:
    return f"viu test lane: {LANE or 'postgresql'}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the TimescaleDB lane run only what touches the database (the rest ran already)."""
    if LANE != "timescaledb":
        return
    uses = ["pg_admin_url" in getattr(i, "fixturenames", ()) for i in items]
    config.hook.pytest_deselected(items=[i for i, db in zip(items, uses, strict=True) if not db])
    items[:] = [i for i, db in zip(items, uses, strict=True) if db]


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("viu-data")


@pytest.fixture(scope="session")
def pg_admin_url(data_dir: Path) -> Iterator[str]:
    url = os.environ.get("VIU_TEST_PG_ADMIN_URL")
    if url:
        yield url
    elif _reachable("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
    else:
        # A port of its own: parallel test runs must not share one fixed port.
        embedded_url, server = start_postgres(data_dir, (free_port(),))
        yield (
            embedded_url.rsplit("/", 1)[0] + "/postgres"
            if "?" not in embedded_url
            else (embedded_url.replace("/viu?", "/postgres?"))
        )
        server.cleanup()


def _with_db(admin_url: str, name: str) -> str:
    if "?" in admin_url:
        head, query = admin_url.split("?", 1)
        return f"{head.rsplit('/', 1)[0]}/{name}?{query}"
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="session")
def database_url(pg_admin_url: str) -> Iterator[str]:
    name = f"viu_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield _with_db(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def mqtt_url(data_dir: Path) -> Iterator[str]:
    if _reachable("127.0.0.1", 1883):
        yield "mqtt://127.0.0.1:1883"
        return
    broker = start_broker(data_dir)
    yield broker.url
    broker.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A private Mosquitto with viu's deploy limits (for volume and broker-restart tests)."""
    broker = start_mosquitto(tmp_path, port=None)
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, mqtt_url: str, data_dir: Path) -> Settings:
    return load_settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        data_dir=data_dir,
        mqtt_client_id=f"viu-test-{uuid.uuid4().hex[:8]}",
        mqtt_topic_prefix=f"viutest{uuid.uuid4().hex[:6]}",
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    assert settings.database_url is not None
    eng = viu_db.make_engine(settings.database_url)
    viu_db.upgrade(eng, settings)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def backend(engine: Engine) -> str:
    """How this database stores samples: ``timescaledb`` or ``partitioned``."""
    with engine.connect() as conn:
        return samples_backend(conn)


@pytest.fixture
def timescale(backend: str) -> None:
    """For tests of TimescaleDB itself: they run on the TimescaleDB lane only."""
    if backend != TIMESCALE:
        pytest.skip("TimescaleDB only (runs on the TimescaleDB lane of make test)")


KEEP = {"alembic_version"}


def empty_database(engine: Engine) -> None:
    """Remove all data (append-only and immutable tables included), keep the schema."""
    with engine.begin() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') "
                    "AND NOT c.relispartition"
                )
            )
            if r[0] not in KEEP
        ]
        if tables:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def db(engine: Engine) -> Engine:
    """The migrated database, emptied of data."""
    empty_database(engine)
    return engine


@pytest.fixture
def make_token(db: Engine) -> Callable[..., str]:
    from services.api.tokens import create_token

    def make(role: str = "admin", party: str | None = None) -> str:
        with db.begin() as conn:
            return create_token(conn, role, party)[1]

    return make


@pytest.fixture
def api(settings: Settings, db: Engine) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from services.api.app import create_app
    from tests.conformance import conforming

    app = create_app(settings, db)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield conforming(client, app)


@pytest.fixture
def admin(make_token: Callable[..., str]) -> dict[str, str]:
    """Authorization headers of an admin token."""
    return {"Authorization": f"Bearer {make_token('admin')}"}
