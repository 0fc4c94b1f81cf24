"""A real Sparkplug B edge node on a real broker, for the ingest tests.

paho-mqtt with the Tahu protobuf (``services.simulator.sparkplug.EdgeNode``
builds the payloads): the death certificate is the MQTT Will, messages go out
at QoS 1 and wait for the broker's PUBACK (so a test knows they arrived), and
every NCMD the node receives is kept (``commands``), answered with a rebirth
when ``answer_rebirth`` is set.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from services.ingest.formats.sparkplug import topic
from services.simulator.sparkplug import EdgeNode, is_rebirth


class SparkplugNode(EdgeNode):
    def __init__(self, url: str, group: str, edge_node: str = "gw-1", bd_seq: int = 0) -> None:
        super().__init__(self._publish, group, edge_node, bd_seq)
        self.url = url
        self.commands: list[tuple[str, bool]] = []  # (topic, asks for a rebirth)
        self.answer_rebirth = False
        self._subscribed = threading.Event()
        self.client = self._connect()

    def _connect(self) -> paho.Client:
        parts = urlsplit(self.url)
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"spb-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv311,
        )
        client.will_set(*self.death_certificate(), qos=1)
        client.on_message = self._on_message
        client.on_subscribe = lambda *a: self._subscribed.set()
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        client.loop_start()
        client.subscribe(topic(self.group, "NCMD", self.edge_node), qos=1)
        assert self._subscribed.wait(10), "no SUBACK for the NCMD topic"
        return client

    def _publish(self, topic_: str, raw: bytes) -> None:
        info = self.client.publish(topic_, raw, qos=1)
        info.wait_for_publish(10)
        assert info.is_published(), f"the broker did not take {topic_}"

    def _on_message(self, client: paho.Client, _: Any, message: paho.MQTTMessage) -> None:
        rebirth = is_rebirth(message.payload)
        self.commands.append((message.topic, rebirth))
        if rebirth and self.answer_rebirth:
            threading.Thread(target=self.rebirth, daemon=True).start()

    def publish_raw(self, kind: str, raw: bytes, device: str | None = None) -> None:
        self._publish(topic(self.group, kind, self.edge_node, device), raw)

    def rebirths(self) -> int:
        return sum(1 for _, rebirth in self.commands if rebirth)

    def vanish(self) -> None:
        """Drop the connection without DISCONNECT: the broker publishes the Will (NDEATH)."""
        sock = self.client.socket()
        self.client.loop_stop()
        if sock is not None:
            sock.close()

    def reconnect(self) -> None:
        """A new session: the next bdSeq in the new Will, then NBIRTH (and DBIRTHs by the test)."""
        self.next_session()
        self.client = self._connect()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
