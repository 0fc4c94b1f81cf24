"""No single message or request can stop ingest (issue 16).

Each hostile input goes over MQTT and over HTTP; it becomes a dead letter
with a reason that could be stored, or a 4xx, never a 500; and the good
messages sent behind it are all stored, exactly once, with exact counters.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from services.config import Settings
from services.ingest import jsonx, metrics
from services.ingest.service import IngestService
from tests.ingest.conftest import T0, payload, rows, sample
from tests.ingest.mqtt_helpers import Publisher, wait_until
from tests.settlement.helpers import ok
from tests.settlement.test_lifecycle import CONTRACT

Headers = dict[str, str]
DEVICE = "hx-1"
FIRST_PERIOD_STARTS = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)  # 2026-01 in Stockholm

SURROGATE = (
    b'{"ts":"2026-03-05T00:00:00Z","interval_s":60,"uptime_min":1,"quality_min":1,'
    b'"throughput":1,"device_id":"\\ud800"}'
)
NUL = SURROGATE.replace(b"\\ud800", b"a\\u0000b")
DEEP = b"[" * 100_000 + b"]" * 100_000


def _iso(ts: datetime) -> str:
    return jsonx.iso(ts)


MONTHS = [datetime(y, m, 1, 12, tzinfo=UTC) for y in range(1970, 2100) for m in range(1, 13)]


def monthly_1970_to_2099() -> bytes:
    return payload(*(sample(0) | {"ts": _iso(ts)} for ts in MONTHS), batch=True)


def months_inside_the_window() -> list[datetime]:
    latest = datetime.now(UTC) + timedelta(days=1)
    return [ts for ts in MONTHS if FIRST_PERIOD_STARTS <= ts <= latest]


def hostile(now: datetime) -> list[tuple[str, bytes, str]]:
    """(name, payload, reason of its dead letter)."""
    old = sample(0) | {"ts": "1970-01-01T00:00:00Z"}
    ahead = now + timedelta(days=3)
    future = sample(0) | {"ts": _iso(ahead.replace(microsecond=0))}
    return [
        ("deep", DEEP, "bad JSON: nested too deeply"),
        ("surrogate", SURROGATE, "device/topic mismatch: sample says '\\ud800'"),
        ("nul", NUL, "device/topic mismatch: sample says 'a\\x00b'"),
        (
            "before the contract",
            payload(old),
            "ts 1970-01-01T00:00:00Z is before the device's first contract period 2026-01 "
            f"(accepted from {_iso(FIRST_PERIOD_STARTS)})",
        ),
        ("far future", payload(future), "is more than 1 day in the future"),
    ]


@pytest.fixture
def device(api: Any, admin: Headers) -> str:
    """A device whose contract starts in 2026-01, Europe/Stockholm."""
    body = copy.deepcopy(CONTRACT) | {
        "contract_id": "HX-1",
        "devices": [DEVICE],
        "timezone": "Europe/Stockholm",
    }
    ok(api.post("/v1/contracts", json=body, headers=admin), 201)
    return DEVICE


def counters(db: Engine) -> dict[str, int]:
    (r,) = rows(
        db,
        "SELECT coalesce(sum(received), 0) received, coalesce(sum(stored), 0) stored, "
        "coalesce(sum(duplicates), 0) duplicates, coalesce(sum(dead_lettered), 0) dead_lettered "
        "FROM ingest_counters",
    )
    return {k: int(v) for k, v in r.items()}


def stored_ts(db: Engine) -> list[datetime]:
    return [r["ts"] for r in rows(db, "SELECT ts FROM samples ORDER BY ts")]


def storage_units(db: Engine) -> set[str]:
    """Partitions (plain PostgreSQL) or chunks (TimescaleDB) of ``samples``."""
    with db.connect() as conn:
        partitioned = conn.execute(
            text("SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'samples'::regclass")
        ).scalar()
        query = (
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'samples'::regclass"
            if partitioned
            else "SELECT c::text FROM show_chunks('samples') c"
        )
        return set(conn.execute(text(query)).scalars())


GOOD = [payload(sample(5 * i)) for i in range(40)]


# ---------------------------------------------------------------- HTTP


@pytest.mark.parametrize("index", range(5), ids=[h[0] for h in hostile(datetime.now(UTC))])
def test_hostile_payload_over_http_is_a_4xx_dead_letter_and_ingest_goes_on(
    api: Any, admin: Headers, db: Engine, device: str, index: int
) -> None:
    _, raw, reason = hostile(datetime.now(UTC))[index]
    r = api.post(f"/v1/telemetry/{device}", content=raw, headers=admin)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert reason in r.json()["dead_letters"][0]["reason"]
    (dead,) = rows(db, "SELECT payload, reason FROM dead_letters")
    assert reason in dead["reason"] and bytes(dead["payload"]) == raw
    for good in GOOD:
        assert api.post(f"/v1/telemetry/{device}", content=good, headers=admin).status_code == 200
    assert counters(db) == {"received": 41, "stored": 40, "duplicates": 0, "dead_lettered": 1}
    assert len(stored_ts(db)) == 40


def test_1560_monthly_samples_from_1970_to_2099_create_no_partition_outside_the_window(
    api: Any, admin: Headers, db: Engine, device: str
) -> None:
    before = storage_units(db)
    r = api.post(f"/v1/telemetry/{device}", content=monthly_1970_to_2099(), headers=admin)
    assert r.status_code == 202, r.text
    body = r.json()
    inside = months_inside_the_window()
    assert (body["received"], body["stored"], body["dead_lettered"]) == (
        1560,
        len(inside),
        1560 - len(inside),
    )
    assert stored_ts(db) == inside
    created = storage_units(db) - before
    assert len(created) <= len(inside), created  # at most one per accepted month


def test_samples_query_out_of_range_is_422(api: Any, admin: Headers, device: str) -> None:
    for query in (
        "from=99999999999",
        "to=" + "9" * 5000,
        "from=-1",
        "cursor=99999-01-01T00:00:00Z",
    ):
        r = api.get(f"/v1/devices/{device}/samples?{query}", headers=admin)
        assert r.status_code == 422, (query, r.text)
        assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/v1/telemetry/hx-1", "/v1/contracts"])
def test_a_chunked_body_over_the_limit_is_413(
    api: Any, admin: Headers, settings: Settings, device: str, path: str
) -> None:
    def chunks() -> Iterator[bytes]:
        piece = b" " * (1 << 20)
        for _ in range(settings.max_body_bytes // len(piece) + 4):
            yield piece

    r = api.post(path, content=chunks(), headers=admin | {"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"


# ---------------------------------------------------------------- MQTT


def publish_all(mqtt_url: str, topic: str, payloads: list[bytes]) -> None:
    pub = Publisher(mqtt_url)
    try:
        for info in [pub.publish(topic, raw) for raw in payloads]:
            info.wait_for_publish(30)
            assert info.is_published()
    finally:
        pub.close()


def test_hostile_payloads_over_mqtt_are_dead_lettered_and_ingest_goes_on(
    service: IngestService, db: Engine, device: str, mqtt_url: str
) -> None:
    cases = hostile(datetime.now(UTC))
    before = storage_units(db)
    stream: list[bytes] = []
    for i, (_, raw, _) in enumerate(cases):
        stream += [GOOD[2 * i], raw, GOOD[2 * i + 1]]  # each one between two good messages
    stream.append(monthly_1970_to_2099())
    stream += GOOD[2 * len(cases) :]
    topic = f"{service.settings.mqtt_topic_prefix}/{device}/telemetry"
    publish_all(mqtt_url, topic, stream)
    accepted = len(months_inside_the_window())  # 2026-01 … this month
    expected = {
        "received": 40 + len(cases) + 1560,
        "stored": 40 + accepted,
        "duplicates": 0,
        "dead_lettered": len(cases) + 1560 - accepted,
    }
    wait_until(lambda: counters(db)["received"] >= expected["received"], 30, "every message")
    assert counters(db) == expected
    assert len(stored_ts(db)) == 40 + accepted
    reasons = [r["reason"] for r in rows(db, "SELECT reason FROM dead_letters ORDER BY id")]
    for (name, _, reason), got in zip(cases, reasons, strict=False):
        assert reason in got, (name, got)
    assert len(storage_units(db) - before) <= accepted
    assert service.is_connected()


def test_a_failing_decoder_thread_is_restarted_and_readyz_says_so_meanwhile(
    service: IngestService,
    db: Engine,
    device: str,
    mqtt_url: str,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(settings, db, broker_probe=service.is_connected)
    take = service.buffer.take
    calls: list[int] = []

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            calls.append(1)
            raise RuntimeError("injected decoder failure")
        return take(*args, **kwargs)

    restarts = metrics.THREAD_RESTARTS.labels(thread="decoder")._value.get()
    with TestClient(app) as client, caplog.at_level(logging.ERROR):
        service.buffer.take = failing_once  # type: ignore[method-assign]
        topic = f"{service.settings.mqtt_topic_prefix}/{device}/telemetry"
        publish_all(mqtt_url, topic, GOOD[:1])  # wakes the decoder, which then fails
        wait_until(lambda: client.get("/readyz").status_code == 503, 10, "not ready")
        assert client.get("/readyz").json()["checks"]["broker"] is False
        publish_all(mqtt_url, topic, GOOD[1:])
        wait_until(lambda: len(stored_ts(db)) == 40, 20, "every message after the failure")
        wait_until(lambda: client.get("/readyz").status_code == 200, 10, "ready again")
    assert counters(db) == {"received": 40, "stored": 40, "duplicates": 0, "dead_lettered": 0}
    assert metrics.THREAD_RESTARTS.labels(thread="decoder")._value.get() == restarts + 1
    assert any("decoder thread failed" in r.getMessage() and r.exc_info for r in caplog.records)


def acks_failing_once(service: IngestService) -> list[int]:
    """The writer's first acknowledgement after a commit raises (the thread fails there)."""
    send_pubacks = service.consumer.send_pubacks
    calls: list[int] = []

    def failing_once(acks: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected writer failure")
        send_pubacks(acks)

    service.consumer.send_pubacks = failing_once  # type: ignore[method-assign]
    return calls


def test_a_failing_writer_thread_is_restarted_without_losing_its_batch(
    service: IngestService, db: Engine, device: str, mqtt_url: str
) -> None:
    calls = acks_failing_once(service)
    publish_all(mqtt_url, f"{service.settings.mqtt_topic_prefix}/{device}/telemetry", GOOD)
    wait_until(lambda: len(stored_ts(db)) == 40 and service.is_connected(), 20, "all 40 stored")
    assert len(calls) >= 2  # it failed once, then acknowledged
    got = counters(db)
    # the failed batch was committed before its ack failed: written again, it is all duplicates
    assert got["stored"] == 40 and got["dead_lettered"] == 0
    assert got["received"] == 40 + got["duplicates"]
    assert stored_ts(db) == [T0 + timedelta(minutes=5 * i) for i in range(40)]


def test_a_restarted_writer_never_stores_what_the_screen_refused_before_it_failed(
    service: IngestService, db: Engine, device: str, mqtt_url: str
) -> None:
    """The batch written again after a restart was screened by the failed write.

    Its staging is worked out again from what the payloads hold after the
    screen; the one the decoder prepared still holds the refused sample.
    """
    far = datetime(2099, 1, 1, tzinfo=UTC)
    future = payload({**sample(0), "ts": jsonx.iso(far)})
    calls = acks_failing_once(service)
    topic = f"{service.settings.mqtt_topic_prefix}/{device}/telemetry"
    publish_all(mqtt_url, topic, [future, *GOOD])  # the first batch holds the refused one
    wait_until(lambda: len(stored_ts(db)) == 40 and service.is_connected(), 20, "all 40 stored")
    wait_until(lambda: counters(db)["received"] >= 41, 20, "every message counted")
    assert len(calls) >= 2
    assert far not in stored_ts(db)
    assert stored_ts(db) == [T0 + timedelta(minutes=5 * i) for i in range(40)]
    assert counters(db)["dead_lettered"] >= 1


def test_a_failing_receive_thread_reconnects_and_the_broker_redelivers(
    service: IngestService,
    db: Engine,
    device: str,
    mqtt_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deliver = service.consumer.deliver
    calls: list[int] = []

    def failing_once(*args: Any) -> None:
        if not calls:
            calls.append(1)
            raise RuntimeError("injected receive failure")
        deliver(*args)

    service.consumer.deliver = failing_once
    with caplog.at_level(logging.ERROR):
        publish_all(mqtt_url, f"{service.settings.mqtt_topic_prefix}/{device}/telemetry", GOOD)
        wait_until(lambda: len(stored_ts(db)) == 40, 30, "all 40 stored")
    assert counters(db)["stored"] == 40 and counters(db)["dead_lettered"] == 0
    assert any("receiving from the broker failed" in r.getMessage() for r in caplog.records)
    wait_until(service.is_connected, 10, "connected again")
