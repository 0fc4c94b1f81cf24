"""Transports: MQTT at QoS 1 counting PUBACKs, and backfill through the one write path."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTProtocolVersion
from sqlalchemy import Engine

from services import broker
from services.config import Settings
from services.errors import Unavailable
from services.ingest import jsonx, pipeline
from services.ingest.decode import Message, http_topic
from services.ingest.stats import Outcome
from services.simulator.faults import FaultInjector
from services.simulator.generator import SimSample

# ---------------------------------------------------------------- MQTT transport


class MqttSink:
    """Publishes at QoS 1 and counts PUBACKs: what the broker took responsibility for."""

    def __init__(
        self,
        url: str,
        settings: Settings,
        window: int = 500,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        where = broker.endpoint(url)
        self.will = will  # (topic, payload) the broker publishes if the connection drops
        self.url, self.host, self.port, self.where = url, where.host, where.port, where
        self.settings, self.window = settings, window
        self.published = self.acknowledged = self.refused = 0
        self._done = threading.Condition()
        self._connack: Any = None
        self.client = self._client(MQTTProtocolVersion.MQTTv5)

    def _client(self, protocol: MQTTProtocolVersion) -> paho.Client:
        client = broker.paho_client(
            self.settings, self.url, f"viu-sim-{uuid.uuid4().hex[:8]}", protocol
        )
        client.max_inflight_messages_set(100)
        if self.will is not None:
            client.will_set(*self.will, qos=1)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        return client

    def connect(self, timeout: float = 10.0) -> None:
        """Connect (MQTT 5, else 3.1.1); ``Unavailable`` with the reason when that fails."""
        if self._try(timeout):
            return
        refusal = self._connack
        self.client = self._client(MQTTProtocolVersion.MQTTv311)
        if not self._try(timeout):
            why = refusal or self._connack or "no answer"
            raise Unavailable(f"MQTT broker at {self.url} refused the simulator: {why}")

    def _try(self, timeout: float) -> bool:
        self._connack = None
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise Unavailable(
                f"MQTT broker unreachable ({broker.describe(exc, self.where)}); start `viu up` "
                "or point VIU_MQTT_URL at the broker the ingester uses"
            ) from None
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while self._connack is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._connack is not None and not self._connack.is_failure:
            return True
        self.client.loop_stop()
        self.client.disconnect()
        return False

    def _on_connect(self, client: paho.Client, _: Any, flags: Any, rc: Any, props: Any) -> None:
        self._connack = rc

    def _on_publish(self, client: paho.Client, _: Any, mid: int, rc: Any, props: Any) -> None:
        with self._done:
            if rc.is_failure:
                self.refused += 1
            else:
                self.acknowledged += 1
            self._done.notify_all()

    def send(self, topic: str, payload: bytes) -> None:
        """Publish, waiting while ``window`` messages are still unacknowledged."""
        with self._done:
            self._done.wait_for(lambda: self.in_flight < self.window, timeout=60)
            self.published += 1
        self.client.publish(topic, payload, qos=1)

    @property
    def in_flight(self) -> int:
        return self.published - self.acknowledged - self.refused

    def drain(self, timeout: float = 60.0) -> None:
        with self._done:
            self._done.wait_for(lambda: self.in_flight == 0, timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Sink(Protocol):
    """Where live samples go: ``MqttSink`` (viu's JSON) or a Sparkplug B edge node."""

    def send(self, topic: str, payload: bytes) -> None: ...
    def drain(self, timeout: float = 60.0) -> None: ...


def publish_live(
    sink: Sink,
    stream: Iterable[SimSample],
    injector: FaultInjector,
    *,
    topic: Callable[[str], str],
    start: int,
    speedup: float,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Send each sample when its interval closes on the simulated clock, faults included.

    Returns whether Ctrl-C cut the run short; even then the held (late,
    out-of-order) samples are sent, so the printed counts stay exact.
    """
    t0, interrupted = time.monotonic(), False
    try:
        for s in stream:
            wait = t0 + (s.ts + s.interval_s - start) / speedup - time.monotonic()
            if wait > 0:
                sleep(wait)
            for o in injector.feed(s):
                sink.send(topic(o.device_id), o.payload)
    except KeyboardInterrupt:
        interrupted = True
    for o in injector.finish():
        sink.send(topic(o.device_id), o.payload)
    sink.drain()
    return interrupted


# ---------------------------------------------------------------- backfill


OnBatch = Callable[[SimSample, int], None]
"""Called after each committed batch with its last sample and the samples written so far."""


def backfill(
    engine: Engine,
    stream: Iterable[SimSample],
    *,
    batch: int = 5000,
    on_batch: OnBatch | None = None,
) -> Outcome:
    """Write samples through the ingest pipeline, ``batch`` samples per transaction.

    One message per device and batch (``{"samples": [...]}``), exactly what a
    gateway would POST, so backfilled history is indistinguishable from live data.
    """
    total, count = Outcome(), 0
    pending: dict[str, list[SimSample]] = {}
    last: SimSample | None = None
    for last in stream:
        pending.setdefault(last.device_id, []).append(last)
        count += 1
        if count % batch == 0:
            total += pipeline.ingest(engine, _messages(pending))
            pending = {}
            if on_batch is not None:
                on_batch(last, count)
    if pending:
        total += pipeline.ingest(engine, _messages(pending))
    if on_batch is not None and last is not None:
        on_batch(last, count)
    return total


def _messages(pending: dict[str, list[SimSample]]) -> list[Message]:
    now = datetime.now(UTC)
    return [
        Message(http_topic(d), jsonx.dumps({"samples": [s.body() for s in items]}).encode(), now)
        for d, items in pending.items()
    ]


def progress_bar(
    fraction: float, count: int, *, started: float | None = None, done: bool = False
) -> None:
    """One redrawn line on stderr: bar, percent, samples written, rate."""
    width = 30
    filled = int(width * min(fraction, 1.0))
    elapsed = time.monotonic() - started if started is not None else 0.0
    rate = f"  {count / elapsed:,.0f}/s" if elapsed > 0 else ""
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}  {count:,} samples{rate}"
    )
    if done:
        sys.stderr.write("\n")
    sys.stderr.flush()
