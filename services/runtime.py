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

from services import db
from services.api.tokens import ensure_bootstrap
from services.config import Settings
from services.embedded import (
    EmbeddedBroker,
    broker_reachable,
    remember_broker,
    start_broker,
    start_postgres,
)

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


@contextlib.contextmanager
def resolved(
    settings: Settings, *, need_broker: bool = True, say: Any = print
) -> Iterator[Resolved]:
    """Start embedded PostgreSQL/broker when unconfigured, migrate, bootstrap; clean up after."""
    pg_server = None
    broker: EmbeddedBroker | None = None
    database_url = settings.database_url
    if database_url is None:
        database_url, pg_server = start_postgres(settings.data_dir)
        say(
            f"viu: embedded PostgreSQL at {database_url} (data in {settings.data_dir / 'postgres'})"
        )
    mqtt_url = settings.mqtt_url or ""
    if need_broker and not mqtt_url:
        broker = start_broker(settings.data_dir)
        mqtt_url = broker.url
        remember_broker(settings.data_dir, mqtt_url)
        say(f"viu: embedded MQTT broker ({broker.kind}) at {mqtt_url}")
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine, settings)
        secret = settings.bootstrap_secret
        if secret:
            with engine.begin() as conn:
                ensure_bootstrap(conn, secret)
        yield Resolved(database_url=database_url, mqtt_url=mqtt_url, engine=engine)
    finally:
        engine.dispose()
        if broker is not None:
            broker.stop()
        if pg_server is not None:
            pg_server.cleanup()


def _ingester(settings: Settings, res: Resolved) -> Component:
    from services.ingest.service import IngestService

    return IngestService(settings, res.engine, res.mqtt_url)


def _scheduler(settings: Settings, res: Resolved) -> Component:
    from services.settlement.scheduler import SettlementScheduler

    return SettlementScheduler(settings, res.engine, mqtt_url=res.mqtt_url)


def run(settings: Settings, components: set[str], say: Any = print) -> int:
    """Run components until SIGINT/SIGTERM. ``components`` ⊆ {ingest, settle, api}."""
    with resolved(
        settings, need_broker=bool(components & {"ingest", "api", "settle"}), say=say
    ) as res:
        started: list[Component] = []
        try:
            if "ingest" in components:
                started.append(_ingester(settings, res))
            if "settle" in components:
                started.append(_scheduler(settings, res))
            for c in started:
                c.start()
            if "api" not in components and settings.metrics_port:
                from prometheus_client import start_http_server

                start_http_server(settings.metrics_port, addr=settings.api_host)
                say(f"viu: metrics on http://{settings.api_host}:{settings.metrics_port}/metrics")
            if "api" in components:
                probe = (
                    getattr(started[0], "is_connected", None) if "ingest" in components else None
                )
                _serve_api(settings, res, say, probe)
            else:
                _wait_for_signal()
        finally:
            for c in reversed(started):
                c.stop()
    say("viu: stopped")
    return 0


def _wait_for_signal() -> None:
    done = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def _serve_api(settings: Settings, res: Resolved, say: Any, broker_probe: Any = None) -> None:
    """Serve in a thread; the main thread owns the signals so cleanup always runs.

    (uvicorn re-raises a captured SIGTERM after its own shutdown, which would
    kill the process before embedded PostgreSQL and the broker are stopped.)
    """
    import uvicorn

    from services.api.app import create_app

    probe = broker_probe or (lambda: broker_reachable(res.mqtt_url))
    app = create_app(settings, res.engine, broker_probe=probe)
    app.state.mqtt_url = res.mqtt_url
    config = uvicorn.Config(
        app, host=settings.api_host, port=settings.api_port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
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
