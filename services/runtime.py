"""Starting viu: resolve embedded defaults, migrate, then run the chosen components.

``viu up`` runs ingester, scheduler and API in one process (threads), and
``viu ingest`` / ``viu settle`` / ``viu api`` run one each; all stop cleanly
on SIGINT/SIGTERM and leave no child process behind.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine

from services import broker, db
from services.api.tokens import ensure_bootstrap
from services.config import Settings
from services.embedded import (
    EmbeddedBroker,
    PortsTaken,
    port_free,
    remember_broker,
    start_broker,
    start_postgres,
)
from services.errors import Unavailable

log = logging.getLogger("viu")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""SIGHUP too: a closed terminal must still stop embedded PostgreSQL and the broker."""


class Component(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Resolved:
    """Where the database and the broker really are, after embedded defaults."""

    database_url: str
    mqtt_url: str
    engine: Engine

    def engine_for(self, settings: Settings, part: str) -> Engine:
        """A separate engine (own pool) for one part of ``viu up``: ingest, settle or api.

        The ingester's pool does not ping a connection before each batch: its
        writer keeps a batch that failed on a dead connection and writes it
        again on a fresh one (``IngestService._commit``), so the ping would
        only add a round trip to every transaction.
        """
        return db.make_engine(
            self.database_url,
            settings,
            application_name=f"viu-{part}",
            pre_ping=part != "ingest",
        )


@contextlib.contextmanager
def resolved(
    settings: Settings, *, need_broker: bool = True, say: Any = print
) -> Iterator[Resolved]:
    """Start embedded PostgreSQL/broker when unconfigured, migrate, bootstrap; clean up after."""
    pg_server = None
    embedded: EmbeddedBroker | None = None
    if settings.mqtt_tls:
        broker.tls_context(settings)  # an unreadable certificate stops viu now, by name
    database_url = settings.database_url
    if database_url is None:
        ports = (settings.embedded_pg_port, settings.embedded_pg_fallback_port)
        try:
            database_url, pg_server = start_postgres(settings.data_dir, ports)
        except PortsTaken as exc:
            raise Unavailable(f"embedded PostgreSQL: {exc}") from None
        say(
            f"viu: embedded PostgreSQL at {database_url} (data in {settings.data_dir / 'postgres'})"
        )
    mqtt_url = settings.mqtt_url or ""
    try:
        if need_broker and not mqtt_url:
            mqtt_url, embedded = local_broker(settings, say)
        engine = db.make_engine(database_url, settings, application_name="viu-migrate")
        try:
            db.upgrade(engine, settings)
            secret = settings.bootstrap_secret
            if secret:
                with engine.begin() as conn:
                    ensure_bootstrap(conn, secret)
            yield Resolved(database_url=database_url, mqtt_url=mqtt_url, engine=engine)
        finally:
            engine.dispose()
    finally:
        if embedded is not None:
            embedded.stop()
        if pg_server is not None:
            pg_server.cleanup()


def local_broker(settings: Settings, say: Any) -> tuple[str, EmbeddedBroker | None]:
    """VIU_MQTT_URL unset: the broker answering on 127.0.0.1:1883, else one started there.

    Devices following the README publish to 127.0.0.1:1883; viu must read from
    whatever broker they reach there, never from a second one elsewhere.
    """
    port = settings.embedded_mqtt_port
    url = f"mqtt://127.0.0.1:{port}"
    problem = broker.check(settings, url)
    if problem is None:
        say(f"viu: using the MQTT broker already answering at {url} (VIU_MQTT_URL is unset)")
        remember_broker(settings.data_dir, url)
        return url, None
    if not port_free(port):
        raise Unavailable(
            f"127.0.0.1:{port} is taken by something viu cannot use as its MQTT broker "
            f"({problem}); set VIU_MQTT_URL to your broker, or VIU_EMBEDDED_MQTT_PORT "
            "to a free port"
        )
    embedded = start_broker(settings.data_dir, port)
    remember_broker(settings.data_dir, embedded.url)
    say(f"viu: embedded MQTT broker ({embedded.kind}) at {embedded.url}")
    return embedded.url, embedded


def _ingester(settings: Settings, engine: Engine, res: Resolved) -> Component:
    from services.ingest.service import IngestService

    return IngestService(settings, engine, res.mqtt_url)


def _scheduler(
    settings: Settings, engine: Engine, res: Resolved, ingester: Component | None
) -> Component:
    from services.settlement.scheduler import SettlementScheduler

    return SettlementScheduler(
        settings,
        engine,
        mqtt_url=res.mqtt_url,
        first_tick_when=getattr(ingester, "caught_up", None),
    )


def run(settings: Settings, components: set[str], say: Any = print) -> int:
    """Run components until SIGINT/SIGTERM. ``components`` ⊆ {ingest, settle, api}.

    Each component gets an engine (and so a connection pool) of its own: a
    burst of API requests can never take the connections the ingester needs.
    """
    with resolved(
        settings, need_broker=bool(components & {"ingest", "api", "settle"}), say=say
    ) as res:
        parts: list[Component] = []
        started: list[Component] = []
        engines: list[Engine] = []

        def engine_for(part: str) -> Engine:
            engines.append(res.engine_for(settings, part))
            return engines[-1]

        try:
            if "ingest" in components:
                parts.append(_ingester(settings, engine_for("ingest"), res))
                say(
                    f"viu: devices publish telemetry to {res.mqtt_url}, topic "
                    f"{settings.mqtt_topic_prefix}/<device_id>/telemetry (QoS 1)"
                )
            if "settle" in components:
                ingester = parts[0] if "ingest" in components else None
                parts.append(_scheduler(settings, engine_for("settle"), res, ingester))
            server = None
            if "api" in components:
                # Built before anything starts: the API's imports and start-up take
                # seconds of CPU that would otherwise compete with the ingester
                # draining the broker's backlog (docs/benchmarks.md, viu up).
                probe = getattr(parts[0], "is_connected", None) if "ingest" in components else None
                server = _api_server(settings, res, engine_for("api"), probe)
            for c in parts:
                c.start()
                started.append(c)
            if server is None and settings.metrics_port:
                from prometheus_client import start_http_server

                start_http_server(settings.metrics_port, addr=settings.api_host)
                say(f"viu: metrics on http://{settings.api_host}:{settings.metrics_port}/metrics")
            if server is not None:
                _serve_api(settings, server, say)
            else:
                _wait_for_signal()
        finally:
            for c in reversed(started):
                c.stop()
            for e in engines:
                e.dispose()
    say("viu: stopped")
    return 0


def _wait_for_signal() -> None:
    done = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def _api_server(settings: Settings, res: Resolved, engine: Engine, broker_probe: Any = None) -> Any:
    """The API's uvicorn server, built (its imports done) but not serving yet."""
    import uvicorn

    from services.api.app import create_app

    probe = broker_probe or (lambda: broker.check(settings, res.mqtt_url) is None)
    app = create_app(settings, engine, broker_probe=probe)
    app.state.mqtt_url = res.mqtt_url
    config = uvicorn.Config(
        app, host=settings.api_host, port=settings.api_port, log_config=None, access_log=False
    )
    return uvicorn.Server(config)


def _serve_api(settings: Settings, server: Any, say: Any) -> None:
    """Serve in a thread; the main thread owns the signals so cleanup always runs.

    (uvicorn re-raises a captured SIGTERM after its own shutdown, which would
    kill the process before embedded PostgreSQL and the broker are stopped.)
    """
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    say(f"viu: API on http://{settings.api_host}:{settings.api_port} (docs at /docs)")
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if not thread.is_alive():
            raise RuntimeError(f"the API server stopped (is port {settings.api_port} free?)")
    server.should_exit = True
    thread.join(15)
