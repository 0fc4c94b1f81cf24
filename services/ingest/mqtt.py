"""The MQTT side of ingest: a persistent QoS 1 session with manual acknowledgements.

- MQTT v5 with ``clean_start=False`` and a session expiry, so the broker keeps
  messages (and unacknowledged ones) while the ingester is away; v3.1.1 with
  ``clean_session=False`` when the broker refuses v5.
- ``manual_ack_set(True)``: a PUBACK is sent only when the writer says the
  message is committed. An ack is tied to the connection that delivered the
  message: after a reconnect the broker redelivers what was unacknowledged
  and only the new copy is acknowledged (an old packet id may name another
  message on a new connection).
- The callback only hands bytes over; decoding happens in the writer thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from services.config import Settings
from services.ingest import metrics
from services.ingest.decode import Message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AckToken:
    """Which connection delivered a message, and its packet id there."""

    generation: int
    mid: int
    qos: int


Deliver = Callable[[Message, AckToken], None]


def subscription(settings: Settings) -> str:
    topic = f"{settings.mqtt_topic_prefix}/+/telemetry"
    group = settings.mqtt_shared_group
    return f"$share/{group}/{topic}" if group else topic


class MqttConsumer:
    def __init__(self, settings: Settings, url: str, deliver: Deliver) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883
        self.settings = settings
        self.deliver = deliver
        self.topic = subscription(settings)
        self._generation = 0
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self.client = self._client(paho.MQTTv5)

    def _client(self, protocol: MQTTProtocolVersion) -> paho.Client:
        s = self.settings
        kwargs: dict[str, Any] = {} if protocol == paho.MQTTv5 else {"clean_session": False}
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=s.mqtt_client_id, protocol=protocol, **kwargs
        )
        _credentials(client, s)
        client.manual_ack_set(True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect (falling back to v3.1.1 if v5 is refused) and keep reconnecting."""
        if not self._supports_v5():
            # Shared subscriptions are an MQTT 5 feature: a v3 broker would take
            # "$share/..." for a literal topic and deliver nothing.
            self.topic = f"{self.settings.mqtt_topic_prefix}/+/telemetry"
            log.info(
                "broker refused MQTT v5; using v3.1.1, a persistent session and %s", self.topic
            )
            self.client = self._client(paho.MQTTv311)
            self.client.connect_async(self.host, self.port, keepalive=30)
        else:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.settings.mqtt_session_expiry_s
            self.client.connect_async(
                self.host, self.port, keepalive=30, clean_start=False, properties=props
            )
        self.client.loop_start()

    def _supports_v5(self, timeout: float = 5.0) -> bool:
        """Probe with a throwaway session; an unreachable broker counts as v5 (retried later)."""
        answer: dict[str, bool] = {}
        done = threading.Event()
        probe = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{self.settings.mqtt_client_id}-probe",
            protocol=paho.MQTTv5,
        )

        def on_connect(c: paho.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
            answer["v5"] = not rc.is_failure or rc.value != 0x84
            done.set()

        def on_disconnect(c: paho.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
            answer.setdefault("v5", False)
            done.set()

        _credentials(probe, self.settings)
        probe.on_connect = on_connect
        probe.on_disconnect = on_disconnect
        try:
            probe.connect(self.host, self.port, keepalive=10, clean_start=True)
        except OSError:
            return True
        probe.loop_start()
        done.wait(timeout)
        probe.disconnect()
        probe.loop_stop()
        return answer.get("v5", True)

    def _on_connect(self, client: paho.Client, _: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            log.warning("broker refused the connection: %s", rc)
            return
        with self._lock:
            self._generation += 1
        client.subscribe(self.topic, qos=1)
        self._connected.set()
        metrics.CONNECTED.set(1)
        log.info(
            "connected to %s:%s (session present: %s), subscribed to %s",
            self.host,
            self.port,
            flags.session_present,
            self.topic,
        )

    def _on_disconnect(self, client: paho.Client, _: Any, flags: Any, rc: Any, p: Any) -> None:
        self._connected.clear()
        metrics.CONNECTED.set(0)
        log.warning("disconnected from the broker (%s); paho reconnects", rc)

    def _on_message(self, client: paho.Client, _: Any, msg: paho.MQTTMessage) -> None:
        token = AckToken(self._generation, msg.mid, msg.qos)
        self.deliver(Message(msg.topic, bytes(msg.payload), datetime.now(UTC)), token)

    def ack(self, token: AckToken) -> None:
        """Acknowledge a committed message, unless its connection is gone (then it returns)."""
        if token.qos == 0:
            return
        with self._lock:
            current = self._generation == token.generation and self._connected.is_set()
        if current:
            self.client.ack(token.mid, token.qos)

    def is_connected(self) -> bool:
        return self._connected.is_set()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()


def _credentials(client: paho.Client, s: Settings) -> None:
    """Every connection, the v5 probe included, authenticates (production brokers refuse anonymous)."""
    if s.mqtt_username:
        password = s.mqtt_password.get_secret_value() if s.mqtt_password else None
        client.username_pw_set(s.mqtt_username, password)
