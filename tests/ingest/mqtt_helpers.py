"""Publishing over a real broker and running ``viu ingest`` as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from tests.ingest.conftest import payload, rows, sample


class Publisher:
    """A QoS 1 publisher that knows when the broker has taken each message."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()

    def publish(self, topic: str, raw: bytes) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, raw, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_samples(
    url: str,
    topic: str,
    count: int,
    *,
    start: int = 0,
    chunk: int = 250,
    between: Callable[[], None] | None = None,
) -> None:
    """Publish one-sample messages (distinct ts), each chunk confirmed by the broker.

    ``between()`` runs after every confirmed chunk (to kill or restart things mid-stream).
    """
    pub = Publisher(url)
    try:
        for first in range(start, start + count, chunk):
            infos = [
                pub.publish(topic, payload(sample(i, seq=i)))
                for i in range(first, min(first + chunk, start + count))
            ]
            for info in infos:
                info.wait_for_publish(30)
                assert info.is_published()
            if between is not None:
                between()
    finally:
        pub.close()


def restart_mosquitto(broker: Any) -> subprocess.Popen[bytes]:
    """Start Mosquitto again on the same port and persistence (the sessions survive)."""
    args = broker.process.args
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = int(broker.url.rsplit(":", 1)[1])
    from services.embedded import wait_port

    assert wait_port("127.0.0.1", port), "mosquitto did not come back"
    return proc


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def stored(engine: Engine, device: str) -> int:
    (r,) = rows(engine, "SELECT count(*) n FROM samples WHERE device_id = :d", d=device)
    return int(r["n"])


def totals(engine: Engine) -> dict[str, Any]:
    (r,) = rows(
        engine,
        "SELECT coalesce(sum(stored), 0) stored, "
        "coalesce(sum(dead_lettered), 0) dead FROM ingest_counters",
    )
    return r


class Ingester:
    """``viu ingest`` in a subprocess, killable and restartable with the same client id."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "ingest"],
            env=self.env,
            stdout=out,
            stderr=out,
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def ingester_env(
    database_url: str, mqtt_url: str, prefix: str, data_dir: Path, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIU_")}
    env |= {
        "VIU_DATABASE_URL": database_url,
        "VIU_MQTT_URL": mqtt_url,
        "VIU_MQTT_TOPIC_PREFIX": prefix,
        "VIU_MQTT_CLIENT_ID": f"ingest-{uuid.uuid4().hex[:8]}",
        "VIU_DATA_DIR": str(data_dir),
        "VIU_LOG_LEVEL": "INFO",
    }
    return env | extra


def wait_subscribed(engine: Engine, url: str, prefix: str, timeout: float = 30) -> None:
    """Publish a probe sample until it is stored: the session and subscription exist."""
    pub = Publisher(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pub.publish(f"{prefix}/probe/telemetry", payload(sample(0))).wait_for_publish(5)
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                if stored(engine, "probe"):
                    return
                time.sleep(0.05)
        raise AssertionError("the ingester never subscribed")
    finally:
        pub.close()


def missing(engine: Engine, device: str, n: int) -> str:
    """The seq numbers not stored yet, as ranges (for failure messages)."""
    have = {
        r["seq"] for r in rows(engine, "SELECT seq FROM samples WHERE device_id = :d", d=device)
    }
    gone = [i for i in range(n) if i not in have]
    return f"{len(gone)} e.g. {gone[:5]}…{gone[-5:]}"
