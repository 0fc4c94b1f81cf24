"""`viu up` end to end: a real process, real PostgreSQL, a real MQTT broker."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
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

from services.config import Settings
from services.embedded import free_port
from tests.conftest import REPO
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


def readme_device_command() -> list[str]:
    """The README's device example: ``mosquitto_pub`` to the address ``make run`` prints."""
    text = (REPO / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", text, re.S) if "mosquitto_pub" in b)
    return shlex.split(block.replace("\\\n", " "))


def publish_like_the_readme(port: int, device: str) -> None:
    """Run the README's command with only the port and the device changed (tests share 1883)."""
    cmd = readme_device_command()
    assert cmd[cmd.index("-h") + 1] == "127.0.0.1"
    assert cmd[cmd.index("-p") + 1] == str(Settings.model_fields["embedded_mqtt_port"].default)
    cmd[cmd.index("-p") + 1] = str(port)
    topic = cmd.index("-t") + 1
    cmd[topic] = re.sub(r"^viu/[^/]+/", f"viu/{device}/", cmd[topic])
    subprocess.run(cmd, check=True, timeout=30)


def embedded_env(tmp_path: Path, **ports: int) -> dict[str, str]:
    """Nothing configured but where the embedded parts may listen (tests must not share ports)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIU_")}
    env.update(
        {
            "VIU_API_PORT": str(free_port()),
            "VIU_DATA_DIR": str(tmp_path / "data"),
            "VIU_BOOTSTRAP_TOKEN": TOKEN,
            "VIU_EMBEDDED_MQTT_PORT": str(ports.get("mqtt") or free_port()),
            "VIU_EMBEDDED_PG_PORT": str(ports.get("pg") or free_port()),
            "VIU_EMBEDDED_PG_FALLBACK_PORT": str(ports.get("pg_fallback") or free_port()),
        }
    )
    return env


def up_in_background(env: dict[str, str], tmp_path: Path) -> subprocess.Popen[str]:
    log = (tmp_path / "viu-up.log").open("a")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        log.close()


def stop_and_read(proc: subprocess.Popen[str], tmp_path: Path, sig: int = signal.SIGTERM) -> str:
    if proc.poll() is None:
        proc.send_signal(sig)
        proc.wait(30)
    out = "\n".join(_lines_so_far(tmp_path))
    assert proc.returncode == 0, out
    return out


def assert_no_leftovers(tmp_path: Path) -> None:
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "data")], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == "", "no orphan postgres or broker processes"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_viu_up_runs_on_embedded_defaults_when_nothing_is_configured(short_tmp, broker) -> None:  # type: ignore[no-untyped-def]
    """No database or broker configured: embedded PostgreSQL, and mosquitto if on PATH else amqtt,
    each at the fixed address printed; a device following the README reaches the ingester."""
    tmp_path = short_tmp
    mqtt_port, pg_port = free_port(), free_port()
    env = embedded_env(tmp_path, mqtt=mqtt_port, pg=pg_port)
    if broker == "amqtt":  # hide mosquitto
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if not Path(p, "mosquitto").exists()
        )
        env["PATH"] += os.pathsep + str(Path(shutil.which("mosquitto_pub") or "/usr/bin").parent)
    base = f"http://127.0.0.1:{env['VIU_API_PORT']}"
    proc = up_in_background(env, tmp_path)
    try:
        _wait_ready(base, proc, timeout=180)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = httpx.post(f"{base}/v1/contracts", json=CONTRACT, headers=auth, timeout=10)
        assert r.status_code == 201, r.text
        # The 201 means committed: the device is known the moment the sample arrives.
        publish_like_the_readme(mqtt_port, "lc-a")
        items = _read_back(base, auth)
        assert len(items) == 1, _dead_letters(base, auth)
    finally:  # a closed terminal (SIGHUP) must clean up like SIGTERM
        out = stop_and_read(proc, tmp_path, signal.SIGHUP if broker == "amqtt" else signal.SIGTERM)
    url = f"mqtt://127.0.0.1:{mqtt_port}"
    assert f"embedded MQTT broker ({broker}) at {url}" in out, out
    assert f"embedded PostgreSQL at postgresql://postgres@127.0.0.1:{pg_port}/viu" in out, out
    assert f"devices publish telemetry to {url}, topic viu/<device_id>/telemetry" in out, out
    assert (tmp_path / "data" / "broker-url").read_text().strip() == url
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    assert_no_leftovers(tmp_path)


@pytest.mark.timeout(300)
def test_viu_up_uses_the_broker_already_answering_and_one_fixed_fallback_for_postgres(  # type: ignore[no-untyped-def]
    short_tmp, own_broker
) -> None:
    """A broker on the MQTT port is used (and named); PostgreSQL's port taken: the fallback,
    the same on the next start."""
    tmp_path = short_tmp
    mqtt_port = int(own_broker.url.rsplit(":", 1)[1])
    with socket.socket() as squatter:  # something else holds PostgreSQL's default port
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        pg_port, fallback = squatter.getsockname()[1], free_port()
        env = embedded_env(tmp_path, mqtt=mqtt_port, pg=pg_port, pg_fallback=fallback)
        base = f"http://127.0.0.1:{env['VIU_API_PORT']}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for start in range(2):
            proc = up_in_background(env, tmp_path)
            try:
                _wait_ready(base, proc, timeout=180)
                if start == 0:
                    r = httpx.post(f"{base}/v1/contracts", json=CONTRACT, headers=auth, timeout=10)
                    assert r.status_code == 201, r.text
                    publish_like_the_readme(mqtt_port, "lc-a")
                    assert len(_read_back(base, auth)) == 1
            finally:
                out = stop_and_read(proc, tmp_path)
    url = f"mqtt://127.0.0.1:{mqtt_port}"
    assert out.count(f"using the MQTT broker already answering at {url}") == 2, out
    assert "embedded MQTT broker" not in out
    assert out.count(f"embedded PostgreSQL at postgresql://postgres@127.0.0.1:{fallback}/viu") == 2
    assert_no_leftovers(tmp_path)


def test_viu_up_refuses_an_mqtt_port_held_by_something_else(database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        env = embedded_env(tmp_path, mqtt=squatter.getsockname()[1])
        env["VIU_DATABASE_URL"] = database_url
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot use as its MQTT broker" in done.stderr and "VIU_MQTT_URL" in done.stderr
    assert "Traceback" not in done.stderr


def _read_back(base: str, auth: dict[str, str]) -> list[Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = httpx.get(f"{base}/v1/devices/lc-a/samples", headers=auth, timeout=5)
        if items := r.json()["items"]:
            return list(items)
        time.sleep(0.3)
    return []


def _dead_letters(base: str, auth: dict[str, str]) -> Any:
    return httpx.get(f"{base}/v1/dead-letters", headers=auth, timeout=5).json()
