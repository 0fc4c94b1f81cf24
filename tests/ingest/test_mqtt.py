"""MQTT ingest (spec §1.1): QoS 1, ack after commit, nothing lost, nothing counted twice."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import Engine

from services.config import Settings
from services.embedded import EmbeddedBroker, start_mosquitto
from services.ingest import metrics
from services.ingest.service import IngestService
from tests.ingest.conftest import payload, register, rows, sample
from tests.ingest.mqtt_helpers import (
    Ingester,
    Publisher,
    ingester_env,
    missing,
    publish_samples,
    restart_mosquitto,
    stored,
    totals,
    wait_subscribed,
    wait_until,
)
from tests.ingest.proxy import Proxy


def test_mqtt_and_http_share_the_write_path(
    service: IngestService, db: Engine, mqtt_url: str, api: object, admin: dict[str, str]
) -> None:
    register(db, "probe", "m1")
    wait_subscribed(db, mqtt_url, service.settings.mqtt_topic_prefix)
    topic = f"{service.settings.mqtt_topic_prefix}/m1/telemetry"
    pub = Publisher(mqtt_url)
    pub.publish(topic, payload(sample(0), sample(5, interval_s=0))).wait_for_publish(5)
    pub.publish(topic, b"not json").wait_for_publish(5)
    pub.publish(
        f"{service.settings.mqtt_topic_prefix}/ghost/telemetry", payload(sample(0))
    ).wait_for_publish(5)
    pub.close()
    wait_until(lambda: len(rows(db, "SELECT 1 FROM dead_letters")) == 3, 10, "dead letters")
    assert stored(db, "m1") == 1
    http = api.post("/v1/telemetry/m1", content=payload(sample(0)), headers=admin)  # type: ignore[attr-defined]
    assert http.json()["duplicates"] == 1
    topics = {r["topic"] for r in rows(db, "SELECT topic FROM dead_letters")}
    assert topics == {topic, f"{service.settings.mqtt_topic_prefix}/ghost/telemetry"}


def test_the_ingester_hands_the_gil_over_as_configured(
    start_service: Callable[..., IngestService],
) -> None:
    """``VIU_INGEST_SWITCH_INTERVAL_US`` is the GIL switch interval while ingest runs."""
    before = sys.getswitchinterval()
    service = start_service(ingest_switch_interval_us=250)
    assert sys.getswitchinterval() == pytest.approx(250e-6)
    service.stop()
    assert sys.getswitchinterval() == before


def test_many_messages_are_stored_exactly_once(
    service: IngestService, db: Engine, mqtt_url: str
) -> None:
    register(db, "probe", "m2")
    vacuums = "SELECT vacuum_count AS n FROM pg_stat_user_tables WHERE relname = 'rollup_deltas'"
    before = rows(db, vacuums)[0]["n"]
    folds = metrics.FOLDS.labels(outcome="folded")
    folded_before = folds._value.get()
    prefix = service.settings.mqtt_topic_prefix
    wait_subscribed(db, mqtt_url, prefix)
    publish_samples(mqtt_url, f"{prefix}/m2/telemetry", 500)
    wait_until(lambda: stored(db, "m2") == 500, 30, "500 samples")
    assert totals(db)["stored"] == 501
    # the ingester folds the writes' rollup deltas by itself, every second
    folded = "SELECT coalesce(sum(samples), 0) AS n FROM rollups WHERE device_id = 'm2'"
    wait_until(lambda: rows(db, folded) == [{"n": 500}], 10, "500 samples folded into rollups")
    assert rows(db, "SELECT count(*) AS n FROM rollup_deltas WHERE device_id = 'm2'") == [{"n": 0}]
    # and vacuums them, so the next deltas reuse the room (statistics lag a little)
    wait_until(lambda: rows(db, vacuums)[0]["n"] > before, 10, "rollup_deltas vacuumed")
    assert folds._value.get() > folded_before  # what /metrics shows


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A private Mosquitto that can persist its sessions even after dropping root.

    pytest's tmp_path is private to root (0700); Mosquitto started as root
    runs as user ``mosquitto`` and could not save its database there.
    """
    base = Path(tempfile.mkdtemp(prefix="viu-mq-"))
    base.chmod(0o755)
    (base / "mosquitto").mkdir(mode=0o777)
    (base / "mosquitto").chmod(0o777)
    b = start_mosquitto(base)
    yield b
    b.stop()
    shutil.rmtree(base, ignore_errors=True)


def _ingester(
    settings: Settings, broker_url: str, tmp_path: Path, prefix: str, **extra: str
) -> Ingester:
    assert settings.database_url is not None
    env = ingester_env(settings.database_url, broker_url, prefix, tmp_path, **extra)
    return Ingester(env, tmp_path / "ingest.log")


def test_kill_9_mid_stream_then_restart_stores_each_message_once(
    settings: Settings, db: Engine, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    register(db, "probe", "k1")
    prefix = f"k{uuid.uuid4().hex[:6]}"
    ing = _ingester(settings, broker.url, tmp_path, prefix)
    ing.start()
    events: list[str] = []

    def chaos() -> None:
        if not events and stored(db, "k1") > 0:
            ing.kill()
            events.append(f"killed at {stored(db, 'k1')}")
        elif len(events) == 1:
            ing.start()
            events.append("restarted")

    try:
        wait_subscribed(db, broker.url, prefix)
        n = 4000
        publish_samples(broker.url, f"{prefix}/k1/telemetry", n, between=chaos)
        assert len(events) == 2, events
        wait_until(lambda: stored(db, "k1") == n, 60, f"{n} samples")
        assert ing.terminate() == 0
        assert stored(db, "k1") == n
        assert totals(db)["stored"] == n + 1
    finally:
        ing.ensure_stopped()


def test_broker_restart_mid_stream_loses_nothing(
    settings: Settings, db: Engine, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    register(db, "probe", "b1")
    prefix = f"b{uuid.uuid4().hex[:6]}"
    ing = _ingester(settings, broker.url, tmp_path, prefix, VIU_MQTT_SHARED_GROUP="")
    ing.start()
    try:
        wait_subscribed(db, broker.url, prefix)
        topic = f"{prefix}/b1/telemetry"
        publish_samples(broker.url, topic, 1500)
        broker.stop()
        assert broker.process is not None
        broker.process = restart_mosquitto(broker)
        publish_samples(broker.url, topic, 1500, start=1500)
        wait_until(
            lambda: stored(db, "b1") == 3000, 30, f"3000 samples; missing {missing(db, 'b1', 3000)}"
        )
        assert ing.terminate() == 0
        assert totals(db)["stored"] == 3001
    finally:
        ing.ensure_stopped()


def test_sigterm_flushes_and_exits_0(
    settings: Settings, db: Engine, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    register(db, "probe", "s1")
    prefix = f"s{uuid.uuid4().hex[:6]}"
    ing = _ingester(settings, broker.url, tmp_path, prefix)
    ing.start()
    try:
        wait_subscribed(db, broker.url, prefix)
        publish_samples(broker.url, f"{prefix}/s1/telemetry", 300)
        assert ing.terminate() == 0
        before = stored(db, "s1")
        ing.start()
        wait_until(lambda: stored(db, "s1") == 300, 30, "300 samples after restart")
        assert before <= 300
    finally:
        ing.ensure_stopped()


def test_database_outage_mid_stream_loses_nothing(
    settings: Settings, db: Engine, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    assert settings.database_url is not None
    register(db, "probe", "o1")
    parts = urlsplit(settings.database_url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    via_proxy = urlunsplit(
        parts._replace(netloc=parts.netloc.replace(f":{parts.port}", f":{proxy.port}"))
    )
    prefix = f"o{uuid.uuid4().hex[:6]}"
    env = ingester_env(via_proxy, broker.url, prefix, tmp_path, VIU_INGEST_BATCH_SIZE="200")
    ing = Ingester(env, tmp_path / "ingest.log")
    ing.start()
    cut: list[int] = []

    def outage() -> None:
        if not cut and stored(db, "o1") > 0:
            proxy.stop()
            cut.append(stored(db, "o1"))

    try:
        wait_subscribed(db, broker.url, prefix)
        publish_samples(broker.url, f"{prefix}/o1/telemetry", 3000, between=outage)
        assert cut and cut[0] < 3000
        time.sleep(2)
        proxy.start()
        wait_until(lambda: stored(db, "o1") == 3000, 60, f"3000 samples, have {stored(db, 'o1')}")
        assert ing.terminate() == 0
        assert totals(db)["stored"] == 3001
        # folds failed while the database was away; the deltas waited, and the
        # folds after it (the last one at stop) moved every one into rollups
        folded = "SELECT sum(samples) AS n FROM rollups WHERE device_id = 'o1'"
        assert rows(db, folded) == [{"n": 3000}]
        assert rows(db, "SELECT count(*) AS n FROM rollup_deltas") == [{"n": 0}]
    finally:
        ing.ensure_stopped()
        proxy.stop()
