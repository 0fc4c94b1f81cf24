"""TLS and mutual TLS to the broker (spec §1.1, §6): real Mosquitto listeners, real certificates.

Every MQTT connection viu makes is covered: the ingester (its own session and
its paho v5 probe) end to end into the database, the alert publisher, the
simulator and the readiness check. A broker whose certificate does not verify,
a host name the certificate does not carry and a missing client certificate
each fail with one clear log line, and viu stays not ready.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from services import broker
from services.api.app import create_app
from services.config import ConfigError, Settings, load_settings
from services.embedded import EmbeddedBroker, free_port
from services.ingest.service import IngestService
from services.settlement.outlook import publish
from services.simulator.transport import MqttSink
from tests.ingest.conftest import payload, register, sample
from tests.ingest.mqtt_helpers import stored, wait_until
from tests.tls import MOSQUITTO, OPENSSL, Pki, make_pki, start_tls_broker

pytestmark = pytest.mark.skipif(
    MOSQUITTO is None or OPENSSL is None, reason="needs mosquitto and the openssl CLI"
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    b = start_tls_broker(tmp_path_factory.mktemp("tls"), pki, mutual=False)
    yield b
    b.stop()


@pytest.fixture(scope="module")
def mtls_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    b = start_tls_broker(tmp_path_factory.mktemp("mtls"), pki, mutual=True)
    yield b
    b.stop()


def tls_settings(base: Settings, url: str, **files: Any) -> Settings:
    return load_settings(
        database_url=base.database_url,
        mqtt_url=url,
        data_dir=base.data_dir,
        mqtt_client_id=f"viu-tls-{uuid.uuid4().hex[:8]}",
        mqtt_topic_prefix=f"tls{uuid.uuid4().hex[:6]}",
        **files,
    )


def mutual_settings(base: Settings, url: str, pki: Pki, *, stranger: bool = False) -> Settings:
    """TLS settings with a client certificate: viu's own, or one of another CA."""
    cert, key = (
        (pki.stranger_cert, pki.stranger_key) if stranger else (pki.client_cert, pki.client_key)
    )
    return tls_settings(base, url, mqtt_ca_file=pki.ca, mqtt_cert_file=cert, mqtt_key_file=key)


def device_client(settings: Settings, url: str, pki: Pki, *, with_cert: bool) -> Any:
    """A device publishing over TLS (with its own client certificate on mutual TLS)."""
    client = broker.paho_client(
        load_settings(
            mqtt_url=url,
            mqtt_ca_file=pki.ca,
            **(
                {"mqtt_cert_file": pki.client_cert, "mqtt_key_file": pki.client_key}
                if with_cert
                else {}
            ),
        ),
        url,
        f"device-{uuid.uuid4().hex[:6]}",
    )
    where = broker.endpoint(url)
    client.connect(where.host, where.port)
    client.loop_start()
    return client


def ingest_one_sample(
    db: Engine, settings: Settings, pki: Pki, *, with_cert: bool
) -> tuple[IngestService, int]:
    register(db, "tls-1")
    service = IngestService(settings, db, settings.mqtt_url or "")
    service.start()
    try:
        wait_until(service.is_connected, 20, "the ingester to connect over TLS")
        device = device_client(settings, settings.mqtt_url or "", pki, with_cert=with_cert)
        info = device.publish(
            f"{settings.mqtt_topic_prefix}/tls-1/telemetry", payload(sample(3)), qos=1
        )
        info.wait_for_publish(10)
        assert info.is_published()
        device.loop_stop()
        device.disconnect()
        wait_until(lambda: stored(db, "tls-1") == 1, 20, "the sample to be stored")
        return service, stored(db, "tls-1")
    finally:
        service.stop()


def test_ingest_over_tls_end_to_end(db, settings, pki, tls_broker) -> None:  # type: ignore[no-untyped-def]
    s = tls_settings(settings, tls_broker.url, mqtt_ca_file=pki.ca)
    service, n = ingest_one_sample(db, s, pki, with_cert=False)
    assert n == 1
    assert service.consumer.v5, "the paho probe reached the broker over TLS too"


def test_ingest_over_mutual_tls_end_to_end(db, settings, pki, mtls_broker) -> None:  # type: ignore[no-untyped-def]
    s = mutual_settings(settings, mtls_broker.url, pki)
    _, n = ingest_one_sample(db, s, pki, with_cert=True)
    assert n == 1


def refused(
    settings: Settings, db: Engine, caplog: pytest.LogCaptureFixture
) -> tuple[list[logging.LogRecord], int]:
    """Run the ingester ~6 s against a broker that must refuse it; (its log records, /readyz)."""
    caplog.set_level(logging.DEBUG, logger="services.ingest.mqtt")
    service = IngestService(settings, db, settings.mqtt_url or "")
    service.start()
    try:
        time.sleep(6)  # the session retries at 1, 2 and 4 s: three failures, one line
        assert not service.is_connected()
        from fastapi.testclient import TestClient

        app = create_app(settings, db, broker_probe=service.is_connected)
        with TestClient(app) as client:
            ready = client.get("/readyz")
    finally:
        service.stop()
    records = [r for r in caplog.records if r.name == "services.ingest.mqtt"]
    return records, ready.status_code


def one_clear_line(records: list[logging.LogRecord], *expected: str) -> str:
    errors = [r for r in records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].exc_info is None, "no traceback"
    line = errors[0].getMessage()
    assert "\n" not in line
    for text in expected:
        assert text in line, line
    assert sum(r.levelno == logging.DEBUG and "still" in r.getMessage() for r in records) >= 1
    return line


def test_a_broker_certificate_from_another_ca_is_refused_clearly(  # type: ignore[no-untyped-def]
    db, settings, pki, tls_broker, caplog
) -> None:
    s = tls_settings(settings, tls_broker.url, mqtt_ca_file=pki.other_ca)
    records, ready = refused(s, db, caplog)
    one_clear_line(records, "certificate", "not accepted", "VIU_MQTT_CA_FILE")
    assert ready == 503
    assert "certificate" in (broker.check(s, tls_broker.url) or "")


def test_a_host_name_the_certificate_does_not_carry_is_refused(  # type: ignore[no-untyped-def]
    db, settings, pki, tls_broker, caplog
) -> None:
    url = tls_broker.url.replace("localhost", "127.0.0.1")  # the certificate names localhost only
    s = tls_settings(settings, url, mqtt_ca_file=pki.ca)
    records, ready = refused(s, db, caplog)
    line = one_clear_line(records, "not accepted")
    assert "hostname" in line.lower() or "ip address mismatch" in line.lower(), line
    assert ready == 503


def test_a_missing_client_certificate_is_refused_clearly(  # type: ignore[no-untyped-def]
    db, settings, pki, mtls_broker, caplog
) -> None:
    s = tls_settings(settings, mtls_broker.url, mqtt_ca_file=pki.ca)
    records, ready = refused(s, db, caplog)
    one_clear_line(records, "requires a client certificate", "VIU_MQTT_CERT_FILE")
    assert ready == 503
    assert broker.check(s, mtls_broker.url) is not None


def test_a_client_certificate_of_another_ca_is_refused(  # type: ignore[no-untyped-def]
    db, settings, pki, mtls_broker, caplog
) -> None:
    s = mutual_settings(settings, mtls_broker.url, pki, stranger=True)
    records, ready = refused(s, db, caplog)
    one_clear_line(records, "TLS")
    assert ready == 503


def test_the_readiness_check_needs_a_verified_broker(
    settings, pki, tls_broker, mtls_broker
) -> None:  # type: ignore[no-untyped-def]
    good = tls_settings(settings, tls_broker.url, mqtt_ca_file=pki.ca)
    assert broker.check(good, tls_broker.url) is None
    mutual = mutual_settings(settings, mtls_broker.url, pki)
    assert broker.check(mutual, mtls_broker.url) is None
    plain = tls_broker.url.replace("mqtts://", "mqtt://")  # plain MQTT to a TLS port
    assert broker.check(settings, plain) is not None


def subscriber(
    settings: Settings, url: str, topic: str
) -> tuple[Any, list[bytes], threading.Event]:
    got: list[bytes] = []
    arrived = threading.Event()
    subscribed = threading.Event()
    client = broker.paho_client(settings, url, f"sub-{uuid.uuid4().hex[:6]}")
    client.on_message = lambda c, u, m: (got.append(m.payload), arrived.set())
    client.on_subscribe = lambda *a: subscribed.set()
    where = broker.endpoint(url)
    client.connect(where.host, where.port)
    client.loop_start()
    client.subscribe(topic, qos=1)
    assert subscribed.wait(10)
    return client, got, arrived


def test_alerts_are_published_over_mutual_tls(settings, pki, mtls_broker) -> None:  # type: ignore[no-untyped-def]
    s = mutual_settings(settings, mtls_broker.url, pki)
    topic = f"{s.mqtt_topic_prefix}/C-1/alerts"
    client, got, arrived = subscriber(s, mtls_broker.url, topic)
    try:
        publish(mtls_broker.url, topic, {"flags": ["availability"]}, s)
        assert arrived.wait(10)
        assert json.loads(got[0]) == {"flags": ["availability"]}
    finally:
        client.loop_stop()
        client.disconnect()


def test_the_simulator_publishes_over_tls_and_says_why_it_cannot(settings, pki, tls_broker) -> None:  # type: ignore[no-untyped-def]
    s = tls_settings(settings, tls_broker.url, mqtt_ca_file=pki.ca)
    topic = f"{s.mqtt_topic_prefix}/sim-1/telemetry"
    client, got, arrived = subscriber(s, tls_broker.url, topic)
    try:
        sink = MqttSink(tls_broker.url, s)
        sink.connect()
        sink.send(topic, b'{"x": 1}')
        sink.drain(10)
        sink.close()
        assert sink.acknowledged == 1
        assert arrived.wait(10)
        assert got == [b'{"x": 1}']
    finally:
        client.loop_stop()
        client.disconnect()
    wrong = tls_settings(settings, tls_broker.url, mqtt_ca_file=pki.other_ca)
    from services.errors import Unavailable

    with pytest.raises(Unavailable, match="not accepted"):
        MqttSink(tls_broker.url, wrong).connect()


def test_unreadable_tls_files_stop_viu_naming_the_variable(tmp_path: Path, pki: Pki) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match="VIU_MQTT_CA_FILE"):
        broker.tls_context(load_settings(mqtt_url="mqtts://h", mqtt_ca_file=missing))
    with pytest.raises(ConfigError, match="VIU_MQTT_CERT_FILE"):
        broker.tls_context(
            load_settings(mqtt_url="mqtts://h", mqtt_cert_file=missing, mqtt_key_file=missing)
        )
    with pytest.raises(ConfigError, match="go together"):
        load_settings(mqtt_url="mqtts://h", mqtt_cert_file=pki.client_cert)
    assert broker.endpoint("mqtts://broker.example").port == 8883
    assert broker.endpoint("mqtt://broker.example").port == 1883
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIU_")}
    env |= {"VIU_MQTT_URL": "mqtts://localhost:8883", "VIU_MQTT_CA_FILE": str(missing)}
    env["VIU_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"  # never reached
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "ingest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "VIU_MQTT_CA_FILE: cannot load" in done.stderr and "Traceback" not in done.stderr


def test_viu_up_against_a_refusing_broker_logs_one_line_and_stays_not_ready(  # type: ignore[no-untyped-def]
    database_url, pki, mtls_broker, tmp_path
) -> None:
    """A real process: no traceback anywhere in its output, /readyz 503 while refused."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIU_")}
    env |= {
        "VIU_DATABASE_URL": database_url,
        "VIU_MQTT_URL": mtls_broker.url,
        "VIU_MQTT_CA_FILE": str(pki.ca),
        "VIU_API_PORT": str(port),
        "VIU_DATA_DIR": str(tmp_path),
        "VIU_MQTT_CLIENT_ID": f"tls-up-{uuid.uuid4().hex[:6]}",
    }
    log = tmp_path / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up"], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                status = r.status_code
                if "requires a client certificate" in log.read_text():
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        time.sleep(4)  # let it retry a few times
        r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert r.status_code == 503 and r.json()["checks"]["broker"] is False, (status, r.text)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    text = log.read_text()
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if "client certificate" in line]
    assert len(lines) == 1, text
    assert proc.returncode == 0, text
