"""A row the database refuses for good never stalls ingest (spec §1.1).

An operator's trigger refuses one value. The sample carrying it is
dead-lettered with the database's own message, everything before, around and
after it is stored within seconds, over MQTT and HTTP, and the counters are
exact. Only a lost connection is retried (HTTP 503); a failure that not even
a dead letter can absorb is a logged 500, never a silent retry loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from services import db as viu_db
from services.api.app import create_app
from services.config import Settings
from services.ingest.service import IngestService
from tests.ingest.conftest import payload, refusing, register, rows, sample
from tests.ingest.mqtt_helpers import Publisher, wait_until
from tests.ingest.proxy import Proxy

Headers = dict[str, str]
REFUSED = 13
RULE = f"operator rule: throughput {REFUSED} is not allowed"


@pytest.fixture
def trigger(db: Engine) -> Iterator[None]:
    """What an operator might add: a trigger that refuses one value, for good."""
    with refusing(db, "samples", f"NEW.throughput = {REFUSED}", RULE):
        yield


def counters(db: Engine) -> dict[str, int]:
    (r,) = rows(
        db,
        "SELECT coalesce(sum(received), 0) received, coalesce(sum(stored), 0) stored, "
        "coalesce(sum(dead_lettered), 0) dead_lettered FROM ingest_counters",
    )
    return {k: int(v) for k, v in r.items()}


def stored_minutes(db: Engine, device: str) -> list[int]:
    found = rows(
        db,
        "SELECT extract(epoch FROM ts)::bigint t FROM samples WHERE device_id = :d ORDER BY ts",
        d=device,
    )
    first = int(sample(0)["ts"])
    return [(r["t"] - first) // 60 for r in found]


def test_http_refused_sample_alone_is_a_dead_letter_and_422(
    api: Any, admin: Headers, db: Engine, trigger: None
) -> None:
    register(db, "h1")
    r = api.post("/v1/telemetry/h1", content=payload(sample(0, throughput=REFUSED)), headers=admin)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["dead_letters"][0]["reason"] == f"refused by the database: {RULE}"
    after = api.post("/v1/telemetry/h1", content=payload(sample(5)), headers=admin)
    assert after.status_code == 200 and after.json()["stored"] == 1
    (dead,) = rows(db, "SELECT device_id, payload, reason FROM dead_letters")
    assert dead["device_id"] == "h1" and bytes(dead["payload"]) == payload(
        sample(0, throughput=REFUSED)
    )


def test_http_batch_stores_all_but_the_refused_sample_and_reports_it_in_the_202(
    api: Any, admin: Headers, db: Engine, trigger: None
) -> None:
    register(db, "h2")
    items = [sample(5 * i, throughput=REFUSED if i == 3 else i) for i in range(8)]
    r = api.post("/v1/telemetry/h2", content=payload(*items), headers=admin)
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["received"], body["stored"], body["dead_lettered"]) == (8, 7, 1)
    assert [d["reason"] for d in body["dead_letters"]] == [f"refused by the database: {RULE}"]
    assert stored_minutes(db, "h2") == [0, 5, 10, 20, 25, 30, 35]
    assert counters(db) == {"received": 8, "stored": 7, "dead_lettered": 1}
    replay = api.post(f"/v1/dead-letters/{body['dead_letter_ids'][0]}/replay", headers=admin)
    assert replay.status_code == 200
    assert replay.json()["status"] == "open"
    assert replay.json()["replay_result"] == f"still refused by the database: {RULE}"


@pytest.fixture
def service(start_service: Callable[..., IngestService]) -> IngestService:
    return start_service(ingest_flush_ms=200)  # several messages per batch: a refusal hits a batch


def test_mqtt_refused_samples_alone_and_in_a_batch_do_not_stall_ingest(
    service: IngestService, db: Engine, mqtt_url: str, trigger: None
) -> None:
    register(db, "q1")
    topic = f"{service.settings.mqtt_topic_prefix}/q1/telemetry"
    messages = [
        payload(sample(0)),
        payload(sample(5, throughput=REFUSED)),  # refused, alone
        payload(sample(10), sample(15, throughput=REFUSED), sample(20)),  # refused, in a batch
        payload(sample(25)),
    ]
    messages += [payload(sample(i)) for i in range(30, 130, 5)]  # and a stream behind them
    pub = Publisher(mqtt_url)
    try:
        for info in [pub.publish(topic, m) for m in messages]:
            info.wait_for_publish(10)
    finally:
        pub.close()
    wait_until(lambda: counters(db)["received"] == 26, 15, "every sample received")
    assert counters(db) == {"received": 26, "stored": 24, "dead_lettered": 2}
    assert stored_minutes(db, "q1") == [0, 10, 20, 25, *range(30, 130, 5)]
    dead = rows(db, "SELECT payload, reason FROM dead_letters ORDER BY id")
    assert [d["reason"] for d in dead] == [f"refused by the database: {RULE}"] * 2
    assert {bytes(d["payload"]) for d in dead} == {
        payload(sample(5, throughput=REFUSED)),
        b'{"ts":"2026-10-01T00:15:00Z","interval_s":300,"uptime_min":4.5,'
        b'"quality_min":4.25,"throughput":13}',
    }
    assert service.is_connected()


def test_http_is_503_only_while_the_database_is_unreachable(
    settings: Settings, db: Engine, admin: Headers
) -> None:
    assert settings.database_url is not None
    register(db, "u1")
    parts = urlsplit(settings.database_url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    netloc = parts.netloc.replace(f":{parts.port}", f":{proxy.port}")
    engine = viu_db.make_engine(urlunsplit(parts._replace(netloc=netloc)))
    try:
        with TestClient(create_app(settings, engine), raise_server_exceptions=False) as client:
            ok = client.post("/v1/telemetry/u1", content=payload(sample(0)), headers=admin)
            assert ok.status_code == 200
            proxy.stop()
            down = client.post("/v1/telemetry/u1", content=payload(sample(5)), headers=admin)
            assert down.status_code == 503, down.text
            assert down.headers["content-type"] == "application/problem+json"
    finally:
        engine.dispose()
        proxy.stop()


def test_http_failure_that_not_even_a_dead_letter_absorbs_is_a_logged_500(
    api: Any, admin: Headers, db: Engine, trigger: None, caplog: pytest.LogCaptureFixture
) -> None:
    register(db, "f1")
    with db.begin() as conn:
        conn.execute(
            text("CREATE RULE no_dead_letters AS ON INSERT TO dead_letters DO INSTEAD SELECT 1 / 0")
        )
    try:
        with caplog.at_level(logging.ERROR):
            r = api.post(
                "/v1/telemetry/f1",
                content=payload(sample(0, throughput=REFUSED)),
                headers=admin | {"X-Request-ID": "req-500-test"},
            )
    finally:
        with db.begin() as conn:
            conn.execute(text("DROP RULE no_dead_letters ON dead_letters"))
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["request_id"] == "req-500-test"
    assert r.headers["x-request-id"] == "req-500-test"
    (record,) = [rec for rec in caplog.records if "unhandled error" in rec.getMessage()]
    assert "req-500-test" in record.getMessage() and record.exc_info is not None
