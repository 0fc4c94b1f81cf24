"""`viu up` end to end: a real process, real PostgreSQL, a real MQTT broker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as mqtt
import pytest

from services.embedded import free_port
from tests.settlement.test_lifecycle import CONTRACT

TOKEN = "smoke-" + uuid.uuid4().hex


def _lines_so_far(cwd: Path) -> list[str]:
    return (cwd / "viu-up.log").read_text().splitlines() if (cwd / "viu-up.log").exists() else []


def _start(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up"],
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(base: str, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"viu up exited early:\n{proc.stdout.read() if proc.stdout else ''}"
            )
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("viu up never became ready")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def _publish(mqtt_url: str, topic: str, payload: dict[str, Any]) -> None:
    parts = urlsplit(mqtt_url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"smoke-pub-{uuid.uuid4().hex[:6]}"
    )
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    info = client.publish(topic, json.dumps(payload), qos=1)
    info.wait_for_publish(10)
    assert info.is_published()
    client.loop_stop()
    client.disconnect()


def _publish_and_read_back(base: str, auth: dict[str, str], mqtt_url: str, prefix: str) -> Any:
    sample = {
        "ts": "2026-02-01T00:00:00Z",
        "interval_s": 60,
        "uptime_min": 1,
        "quality_min": 1,
        "throughput": 4.5,
    }
    _publish(mqtt_url, f"{prefix}/lc-a/telemetry", sample)
    deadline = time.monotonic() + 30
    items: list[Any] = []
    while time.monotonic() < deadline and not items:
        r = httpx.get(f"{base}/v1/devices/lc-a/samples", headers=auth, timeout=5)
        items = r.json()["items"]
        time.sleep(0.3)
    return items


def test_viu_up_ingests_a_sample_published_over_mqtt(database_url, mqtt_url, tmp_path, db) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    prefix = "smoke" + uuid.uuid4().hex[:6]
    env = {
        "VIU_DATABASE_URL": database_url,
        "VIU_MQTT_URL": mqtt_url,
        "VIU_API_PORT": str(port),
        "VIU_BOOTSTRAP_TOKEN": TOKEN,
        "VIU_MQTT_TOPIC_PREFIX": prefix,
        "VIU_MQTT_CLIENT_ID": "smoke-" + uuid.uuid4().hex[:8],
        "VIU_DATA_DIR": str(tmp_path),
    }
    base = f"http://127.0.0.1:{port}"
    proc = _start(env, tmp_path)
    try:
        _wait_ready(base, proc)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = httpx.post(f"{base}/v1/contracts", json=CONTRACT, headers=auth, timeout=10)
        assert r.status_code == 201, r.text
        items = _publish_and_read_back(base, auth, mqtt_url, prefix)
        assert len(items) == 1
        assert float(items[0]["throughput"]) == 4.5
    finally:
        if proc.poll() is None:
            out = _stop(proc)
            assert "stopped" in out
            assert TOKEN not in out, "secrets never reach the logs"


@pytest.fixture
def short_tmp() -> Any:
    """A short path: PostgreSQL's Unix socket path must stay under ~107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="viu-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_viu_up_runs_on_embedded_defaults_when_nothing_is_configured(short_tmp, broker) -> None:  # type: ignore[no-untyped-def]
    """No database or broker configured: embedded PostgreSQL, and mosquitto if on PATH else amqtt."""
    tmp_path = short_tmp
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIU_")}
    env.update(
        {
            "VIU_API_PORT": str(port),
            "VIU_DATA_DIR": str(tmp_path / "data"),
            "VIU_BOOTSTRAP_TOKEN": TOKEN,
        }
    )
    if broker == "amqtt":  # hide mosquitto
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if not Path(p, "mosquitto").exists()
        )
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "viu-up.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_ready(base, proc, timeout=180)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = httpx.post(f"{base}/v1/contracts", json=CONTRACT, headers=auth, timeout=10)
        assert r.status_code == 201, r.text
        mqtt_url = next(
            line.split(" at ")[-1] for line in _lines_so_far(tmp_path) if "MQTT broker" in line
        )
        items = _publish_and_read_back(base, auth, mqtt_url, "viu")
        assert len(items) == 1
        assert (tmp_path / "data" / "broker-url").read_text().strip() == mqtt_url
    finally:
        if proc.poll() is None:  # a closed terminal (SIGHUP) must clean up like SIGTERM
            proc.send_signal(signal.SIGHUP if broker == "amqtt" else signal.SIGTERM)
            proc.wait(30)
        log.close()
    out = "\n".join(_lines_so_far(tmp_path))
    assert proc.returncode == 0, out
    assert "embedded PostgreSQL" in out and f"embedded MQTT broker ({broker})" in out
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "data")], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == "", "no orphan postgres or broker processes"
