"""Helpers of the ingest tests: registering devices and writing payloads directly."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text

from services.config import Settings
from services.ingest import jsonx, pipeline, writer
from services.ingest.decode import Message, decode, http_topic
from services.ingest.service import IngestService
from services.ingest.stats import Outcome

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def register(
    engine: Engine,
    *device_ids: str,
    contract: str = "C-1",
    provider: str = "Connectcorp",
    customer: str = "MineCo",
) -> None:
    """Insert a contract and its devices directly (the contracts API is not ours)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contracts (contract_id, provider, customer) VALUES (:c, :p, :u) "
                "ON CONFLICT DO NOTHING"
            ),
            {"c": contract, "p": provider, "u": customer},
        )
        for d in device_ids:
            conn.execute(
                text("INSERT INTO devices (device_id, contract_id) VALUES (:d, :c)"),
                {"d": d, "c": contract},
            )


def sample(minute: int = 0, **over: Any) -> dict[str, Any]:
    """A valid 5-minute sample starting ``minute`` minutes after T0."""
    base: dict[str, Any] = {
        "ts": int(T0.timestamp()) + minute * 60,
        "interval_s": 300,
        "uptime_min": Decimal("4.5"),
        "quality_min": Decimal("4.25"),
        "throughput": Decimal("12.125"),
    }
    base.update(over)
    return base


def payload(*items: dict[str, Any], batch: bool | None = None) -> bytes:
    """JSON bytes of one sample, or of a ``{"samples": [...]}`` batch (Decimals exact)."""
    if batch is False or (batch is None and len(items) == 1):
        return jsonx.dumps(items[0]).encode()
    return jsonx.dumps({"samples": list(items)}).encode()


def message(device_id: str, raw: bytes, topic: str | None = None) -> Message:
    return Message(topic or http_topic(device_id), raw, datetime.now(UTC))


@pytest.fixture(params=["prepared", "unprepared"])
def write(db: Engine, request: pytest.FixtureRequest) -> Callable[..., Outcome]:
    """Write payloads of one device through the shared pipeline.

    Both ways the rows reach the staging table: formatted ahead by the MQTT
    decoder thread (``writer.prepare``, COPY text, and the batch's staging
    worked out there) and by the writer itself (HTTP, replay, retries:
    binary COPY).
    """

    def run(device_id: str, *raws: bytes, topic: str | None = None) -> Outcome:
        decoded = [decode(message(device_id, r, topic)) for r in raws]
        if request.param == "prepared":
            return pipeline.ingest_decoded(db, decoded, staging=writer.prepare(decoded))
        return pipeline.ingest_decoded(db, decoded)

    return run


@contextlib.contextmanager
def refusing(db: Engine, table: str, condition: str, rule: str) -> Iterator[None]:
    """What an operator might add: a trigger refusing rows of ``table`` where ``condition``, for good."""
    name = f"refuse_{uuid.uuid4().hex[:8]}"
    with db.begin() as conn:
        conn.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN IF {condition} THEN RAISE EXCEPTION '{rule}'; END IF; RETURN NEW; END $$"
            )
        )
        conn.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
        )
    try:
        yield
    finally:
        with db.begin() as conn:
            conn.execute(text(f"DROP TRIGGER {name} ON {table}"))
            conn.execute(text(f"DROP FUNCTION {name}()"))


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def ids(items: Iterable[dict[str, Any]], key: str = "id") -> list[Any]:
    return [i[key] for i in items]


@pytest.fixture
def start_service(
    settings: Settings, db: Engine, mqtt_url: str
) -> Iterator[Callable[..., IngestService]]:
    """Start IngestServices on the test broker (own client id and topic prefix); stopped after."""
    from tests.ingest.mqtt_helpers import wait_until  # it imports this module

    started: list[IngestService] = []

    def start(**update: Any) -> IngestService:
        own = settings.model_copy(
            update={
                "mqtt_client_id": f"t-{uuid.uuid4().hex[:8]}",
                "mqtt_topic_prefix": f"t{uuid.uuid4().hex[:8]}",
                "ingest_flush_ms": 50,
            }
            | update
        )
        svc = IngestService(own, db, mqtt_url)
        svc.start()
        started.append(svc)
        wait_until(svc.is_connected, 10, "the broker connection")
        return svc

    yield start
    for svc in started:
        svc.stop()


@pytest.fixture
def service(start_service: Callable[..., IngestService]) -> IngestService:
    """An IngestService on the test broker, flushing every 50 ms."""
    return start_service()
