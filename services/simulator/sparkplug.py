"""A Sparkplug B edge node: what a gateway in front of viu's devices publishes.

Built on the Tahu protobuf (``sparkplug_b_pb2``) and any publish function
(paho in the simulator and the tests): NBIRTH with ``bdSeq`` (and the same
bdSeq in the death certificate, set as the MQTT Will), one DBIRTH per device
declaring the sample metrics with aliases, DDATA with aliases only and a
sequence number 0-255 that wraps, DDEATH and NDEATH on the way out. An NCMD
``Node Control/Rebirth`` makes it publish its births again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from schemas.telemetry import parse_ts
from services.config import Settings
from services.ingest import jsonx
from services.ingest.formats.sparkplug import BD_SEQ, REBIRTH_METRIC, topic
from services.ingest.formats.sparkplug_b_pb2 import DataType, Payload
from services.simulator.transport import MqttSink

# The sample fields as metrics, in alias order (alias = device slot * 16 + index + 1).
FIELDS: tuple[tuple[str, int], ...] = (
    ("interval_s", DataType.Int32),
    ("uptime_min", DataType.Double),
    ("quality_min", DataType.Double),
    ("throughput", DataType.Double),
    ("downtime_cause", DataType.String),
    ("seq", DataType.Int64),
)
Send = Callable[[str, bytes], None]


def millis(ts: datetime | float) -> int:
    seconds = ts.timestamp() if isinstance(ts, datetime) else ts
    return round(seconds * 1000)


def set_value(metric: Payload.Metric, datatype: int, value: Any) -> None:
    metric.datatype = datatype
    if datatype == DataType.Int32:
        metric.int_value = int(value) & 0xFFFFFFFF
    elif datatype in (DataType.Int64, DataType.UInt64):
        metric.long_value = int(value) & 0xFFFFFFFFFFFFFFFF
    elif datatype == DataType.Double:
        metric.double_value = float(Decimal(str(value)))
    elif datatype == DataType.Boolean:
        metric.boolean_value = bool(value)
    else:
        metric.string_value = str(value)


class EdgeNode:
    """One edge node of a Sparkplug group; ``send`` publishes (QoS 0 or 1, the caller's choice)."""

    def __init__(self, send: Send, group: str, edge_node: str, bd_seq: int = 0) -> None:
        self.send, self.group, self.edge_node = send, group, edge_node
        self.bd_seq = bd_seq % 256
        self.seq = 0
        self.devices: list[str] = []  # born devices, in slot order
        self._slots: dict[str, int] = {}

    # ------------------------------------------------------------------ payloads

    def death_certificate(self) -> tuple[str, bytes]:
        """The NDEATH topic and payload (set it as the MQTT Will before connecting)."""
        payload = Payload(timestamp=millis(datetime.now(UTC)))
        set_value(payload.metrics.add(name=BD_SEQ), DataType.Int64, self.bd_seq)
        return topic(self.group, "NDEATH", self.edge_node), payload.SerializeToString()

    def next_seq(self) -> int:
        seq = self.seq
        self.seq = (self.seq + 1) % 256
        return seq

    def alias(self, device: str, index: int) -> int:
        slot = self._slots.setdefault(device, len(self._slots))
        return slot * 16 + index + 1

    # ------------------------------------------------------------------ messages

    def nbirth(self) -> None:
        """A new session: seq starts at 0; devices must be born again."""
        self.seq = 0
        self.devices = []
        payload = Payload(timestamp=millis(datetime.now(UTC)), seq=self.next_seq())
        set_value(payload.metrics.add(name=BD_SEQ), DataType.Int64, self.bd_seq)
        set_value(payload.metrics.add(name=REBIRTH_METRIC), DataType.Boolean, False)
        self.send(topic(self.group, "NBIRTH", self.edge_node), payload.SerializeToString())

    def dbirth(self, device: str, values: dict[str, Any] | None = None) -> None:
        """The device comes online, declaring the sample metrics with their aliases."""
        payload = Payload(timestamp=millis(datetime.now(UTC)), seq=self.next_seq())
        for index, (name, datatype) in enumerate(FIELDS):
            metric = payload.metrics.add(name=name, alias=self.alias(device, index))
            metric.timestamp = payload.timestamp
            if values is not None and name in values:
                set_value(metric, datatype, values[name])
            else:
                metric.datatype = datatype
                metric.is_null = True
        if device not in self.devices:
            self.devices.append(device)
        self.send(topic(self.group, "DBIRTH", self.edge_node, device), payload.SerializeToString())

    def data_payload(self, device: str, sample: dict[str, Any], seq: int | None = None) -> bytes:
        """DDATA of one sample: its fields by alias, its ``ts`` as the payload timestamp."""
        ts = sample["ts"]
        stamp = millis(ts if isinstance(ts, datetime) else float(ts))
        payload = Payload(timestamp=stamp)
        for index, (name, datatype) in enumerate(FIELDS):
            if name in sample:
                metric = payload.metrics.add(alias=self.alias(device, index), timestamp=stamp)
                set_value(metric, datatype, sample[name])
        payload.seq = self.next_seq() if seq is None else seq  # last: a bad value takes none
        return payload.SerializeToString()

    def ddata(self, device: str, sample: dict[str, Any], seq: int | None = None) -> None:
        raw = self.data_payload(device, sample, seq)
        self.send(topic(self.group, "DDATA", self.edge_node, device), raw)

    def ddeath(self, device: str) -> None:
        payload = Payload(timestamp=millis(datetime.now(UTC)), seq=self.next_seq())
        if device in self.devices:
            self.devices.remove(device)
        self.send(topic(self.group, "DDEATH", self.edge_node, device), payload.SerializeToString())

    def ndeath(self) -> None:
        """Going away on purpose: the death certificate, published by the node itself."""
        self.send(*self.death_certificate())

    def rebirth(self, devices: Iterable[str] | None = None) -> None:
        """NBIRTH and the DBIRTH of every device again (what an NCMD Rebirth asks for)."""
        born = list(self.devices if devices is None else devices)
        self.nbirth()
        for device in born:
            self.dbirth(device)

    def next_session(self) -> None:
        """A reconnect: the next bdSeq (set the new death certificate as the Will)."""
        self.bd_seq = (self.bd_seq + 1) % 256


class SparkplugSink:
    """The simulator's live stream as one Sparkplug B edge node over an ``MqttSink``.

    ``send(device_id, json_payload)``: the first sample of a device is
    preceded by its DBIRTH; each sample becomes a DDATA (aliases, seq). A
    payload the fault injector made malformed is sent as bytes no protobuf
    parser accepts, so it is dead-lettered as JSON garbage would be. ``close``
    publishes every DDEATH and the NDEATH before disconnecting.
    """

    def __init__(self, url: str, settings: Settings, group: str, edge_node: str) -> None:
        self.node = EdgeNode(self._publish, group, edge_node, bd_seq=int(time.time()))
        self.mqtt = MqttSink(url, settings, will=self.node.death_certificate())

    def _publish(self, topic_: str, raw: bytes) -> None:
        self.mqtt.send(topic_, raw)

    def connect(self) -> None:
        self.mqtt.connect()
        self.node.nbirth()

    def send(self, device_id: str, payload: bytes) -> None:
        if device_id not in self.node.devices:
            self.node.dbirth(device_id)
        try:
            sample = jsonx.loads(payload)
            sample["ts"] = parse_ts(sample["ts"])
            raw = self.node.data_payload(device_id, sample)
        except Exception:  # the injector's malformed payload: malformed protobuf too
            raw = b"\xff" + payload
        self.mqtt.send(topic(self.node.group, "DDATA", self.node.edge_node, device_id), raw)

    def drain(self, timeout: float = 60.0) -> None:
        self.mqtt.drain(timeout)

    def close(self) -> None:
        for device in list(self.node.devices):
            self.node.ddeath(device)
        self.node.ndeath()
        self.mqtt.drain()
        self.mqtt.close()


def is_rebirth(raw: bytes) -> bool:
    """Whether an NCMD payload asks for a rebirth."""
    payload = Payload.FromString(raw)
    return any(m.name == REBIRTH_METRIC and m.boolean_value for m in payload.metrics)
