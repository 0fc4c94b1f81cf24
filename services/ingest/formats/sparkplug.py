"""Sparkplug B (Eclipse Tahu) over MQTT: ``spBv1.0/{group}/{type}/{edge_node}[/{device}]``.

Payloads are the Tahu protobuf ``Payload`` (``sparkplug_b_pb2``, generated
from the vendored ``sparkplug_b.proto`` by ``make protobuf``). What viu does
with each message type (spec §1.1):

- **NBIRTH** starts an edge node's session: its ``bdSeq`` metric, its
  sequence number and the metric aliases of its births are remembered.
- **DBIRTH** brings a device online (its aliases join the node's).
- **DDATA** becomes one sample: metrics named like the sample fields
  (``interval_s``, ``uptime_min``, ``quality_min``, ``throughput``,
  ``downtime_cause``, ``seq``; by name or by a birth's alias), the payload
  timestamp as ``ts``, the Sparkplug device id as viu's ``device_id``. Other
  metrics are ignored. A DDATA without any sample field stores nothing.
- **DDEATH** takes a device offline; a valid **NDEATH** (its ``bdSeq`` is
  the live session's) takes the node and every device online under it
  offline. A death with another session's ``bdSeq`` is recorded as stale and
  changes nothing.
- Every message but NBIRTH/NDEATH carries ``seq`` (0 to 255, wrapping): a gap,
  data before its birth, or an unknown alias makes viu ask the node for its
  births again (NCMD ``Node Control/Rebirth``), recorded as REBIRTH_REQUEST;
  a DDATA that cannot be read is dead-lettered with the reason.

Nothing a node sends stops ingest: a message the database could not store is
dead-lettered with the reason before it touches any state (a payload that is
not a Sparkplug B protobuf, a group or edge node id not matching the device
id rule ``^[A-Za-z0-9._-]{1,64}$``, a ``seq`` outside 0..255, a ``bdSeq``
that is not an integer metric within 0..2^63-1); a row the database still
refuses is dead-lettered by ``pipeline`` with the database's reason.

The state (sessions, aliases, sequence numbers) lives in this process: the
decoder thread decodes messages in arrival order. A decode that changed state
is remembered per message until its batch is acknowledged (``forget``), so a
retried write (``pipeline``) gets the same result instead of seeing its own
sequence number again as a gap. The memory is bounded in messages and in
payload bytes (``REMEMBERED``, ``REMEMBERED_BYTES``): the bounds hold every
batch the service has in flight (two batches of at most 100,000 messages), so
only what a caller never acknowledged is evicted. After a restart viu knows no
session: the first message of each node asks for a rebirth.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from google.protobuf.message import DecodeError
from pydantic import ValidationError

from schemas.telemetry import DEVICE_ID, MAX_PAYLOAD_BYTES, Sample
from services.config import Settings
from services.ingest.formats.base import Command, Decoded, Message, Reject, StateEvent, whole
from services.ingest.formats.json import reason_of
from services.ingest.formats.sparkplug_b_pb2 import DataType, Payload

NAMESPACE = "spBv1.0"
NODE_TYPES = ("NBIRTH", "NDEATH", "NDATA")
DEVICE_TYPES = ("DBIRTH", "DDEATH", "DDATA")
REBIRTH_METRIC = "Node Control/Rebirth"
BD_SEQ = "bdSeq"
SAMPLE_FIELDS = frozenset(Sample.model_fields) - {"ts", "device_id"}
REBIRTH_EVERY_S = 5.0  # at most one rebirth request per node in this time
REMEMBERED = 250_000  # decodes kept for retried writes (two batches in flight, at most)
REMEMBERED_BYTES = 1 << 30  # ... and the payload bytes they hold
# A state event's time is its payload timestamp when plausible, else the time it arrived: a
# node's clock ahead by more than this must not keep devices online after its death ...
EVENT_AHEAD = timedelta(minutes=5)
# ... nor backdate states further than the broker keeps a queued message (mosquitto.prod.conf
# persistent_client_expiration 7d).
EVENT_BEHIND = timedelta(days=7)
MAX_NODES = 10_000  # sessions kept; the least recently heard node is forgotten (it rebirths)
MAX_ALIASES = 10_000  # metric aliases per node
MAX_DEVICES = 1_000  # born devices per node
WEIGHT_BYTES = 65_536  # a message counts one more against the ingest buffer per this many bytes
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SIGNED32 = {DataType.Int8, DataType.Int16, DataType.Int32}
_INTEGERS = _SIGNED32 | {
    DataType.Int64,
    DataType.UInt8,
    DataType.UInt16,
    DataType.UInt32,
    DataType.UInt64,
}
MAX_BD_SEQ = 2**63 - 1  # sparkplug_events.bd_seq is a bigint


class Invalid(ValueError):
    """A message viu cannot take as it is: dead-lettered with this reason, no state changed."""


def topic(group: str, kind: str, edge_node: str, device: str | None = None) -> str:
    tail = f"/{device}" if device is not None else ""
    return f"{NAMESPACE}/{group}/{kind}/{edge_node}{tail}"


def rebirth_command(group: str, edge_node: str, now: datetime | None = None) -> Command:
    """NCMD ``Node Control/Rebirth`` = true: the node publishes its births again."""
    stamp = _millis(now or datetime.now(UTC))
    payload = Payload(timestamp=stamp)
    payload.metrics.add(
        name=REBIRTH_METRIC, timestamp=stamp, datatype=DataType.Boolean, boolean_value=True
    )
    return Command(topic(group, "NCMD", edge_node), payload.SerializeToString())


@dataclass
class _Node:
    """What viu knows of one edge node's live session."""

    born: bool = False
    bd_seq: int | None = None
    seq: int | None = None
    aliases: dict[int, str] = field(default_factory=dict)
    devices: set[str] = field(default_factory=set)
    asked_at: float = float("-inf")  # monotonic time of the last rebirth request
    last_at: datetime | None = None  # the latest time of a state event recorded for it


class SparkplugFormat:
    name = "sparkplug"

    def __init__(self) -> None:
        self._nodes: OrderedDict[tuple[str, str], _Node] = OrderedDict()
        self._seen: OrderedDict[Message, Decoded] = OrderedDict()
        self._seen_bytes = 0
        self._lock = threading.Lock()  # the decoder thread decodes; the writer retries

    def topics(self, settings: Settings) -> list[str]:
        group = settings.sparkplug_group
        if not group:
            return []
        return [f"{NAMESPACE}/{group}/{kind}/+" for kind in NODE_TYPES] + [
            f"{NAMESPACE}/{group}/{kind}/+/+" for kind in DEVICE_TYPES
        ]

    def accepts(self, topic: str) -> bool:
        return topic.startswith(NAMESPACE + "/")

    def weight(self, payload: bytes) -> int:
        """Proportional to the payload's size, so the ingest buffer bounds bytes too."""
        return 1 + len(payload) // WEIGHT_BYTES

    def forget(self, messages: Iterable[Message]) -> None:
        """The messages are acknowledged: no retry will decode them again."""
        with self._lock:
            for message in messages:
                if self._seen.pop(message, None) is not None:
                    self._seen_bytes -= len(message.payload)

    def reset(self) -> None:
        """Forget every session (as a restart does)."""
        with self._lock:
            self._nodes.clear()
            self._seen.clear()
            self._seen_bytes = 0

    def decode(self, message: Message, *, live: bool = True) -> Decoded:
        with self._lock:
            if live and (done := self._seen.get(message)) is not None:
                return _copy(done)
            decoder = _Decoder(self, message, live)
            try:
                out = decoder.run()
            except Exception as exc:  # the bulkhead: no payload may stop ingest
                out = whole(message, None, f"cannot be decoded: {type(exc).__name__}: {exc}")
            if decoder.stateful:  # the rest decodes the same again: nothing to remember
                self._remember(message, out)
            return out

    def _remember(self, message: Message, out: Decoded) -> None:
        if message not in self._seen:
            self._seen_bytes += len(message.payload)
        self._seen[message] = _copy(out)
        while self._seen and (len(self._seen) > REMEMBERED or self._seen_bytes > REMEMBERED_BYTES):
            old, _ = self._seen.popitem(last=False)
            self._seen_bytes -= len(old.payload)

    def node(self, group: str, edge_node: str, *, create: bool) -> _Node | None:
        """A node's session; ``create``: heard now (the least recently heard beyond the cap go)."""
        key = (group, edge_node)
        if not create:
            return self._nodes.get(key)
        node = self._nodes.setdefault(key, _Node())
        self._nodes.move_to_end(key)
        while len(self._nodes) > MAX_NODES:  # forgotten: its next message asks for a rebirth
            self._nodes.popitem(last=False)
        return node


class _Decoder:
    """One message against the format's state."""

    def __init__(self, fmt: SparkplugFormat, message: Message, live: bool) -> None:
        self.fmt = fmt
        self.message = message
        self.live = live
        self.out = Decoded(message, None)
        self.bd_seq: int | None = None
        self.stateful = False  # reached the node's state (live only)

    def run(self) -> Decoded:
        parts = self.message.topic.split("/")
        if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
            return self._reject(None, "topic is not spBv1.0/{group}/{type}/{edge_node}[/{device}]")
        group, kind, edge_node = parts[1], parts[2], parts[3]
        device = parts[4] if len(parts) == 5 else None
        if (device is None) != (kind in NODE_TYPES) or kind not in NODE_TYPES + DEVICE_TYPES:
            return self._reject(None, f"Sparkplug message type {kind[:16]!r} is not ingested")
        if not (DEVICE_ID.match(group) and DEVICE_ID.match(edge_node)):
            return self._reject(
                None, f"invalid topic: group and edge node ids must match {DEVICE_ID.pattern}"
            )
        if device is not None and not DEVICE_ID.match(device):
            return self._reject(
                None, f"device id '{device[:80]}' does not match {DEVICE_ID.pattern}"
            )
        self.out.device_id = device
        if len(self.message.payload) > MAX_PAYLOAD_BYTES:
            return self._reject(device, f"payload is over the limit of {MAX_PAYLOAD_BYTES} bytes")
        try:
            payload = Payload.FromString(self.message.payload)
        except DecodeError as exc:
            return self._reject(device, f"malformed Sparkplug B payload: {exc}")
        self.group, self.edge_node, self.device, self.payload = group, edge_node, device, payload
        try:
            self.bd_seq = _bd_seq(payload) if kind in ("NBIRTH", "NDEATH") else None
            _seq(payload)
        except Invalid as exc:
            return self._reject(device, str(exc))
        if not self.live:
            return self._replay(kind)
        self.stateful = True
        node = self.fmt.node(group, edge_node, create=True)
        assert node is not None
        self.node = node
        return getattr(self, f"_{kind.lower()}")()

    # ------------------------------------------------------------------ node messages

    def _nbirth(self) -> Decoded:
        node, payload = self.node, self.payload
        aliases = _aliases(payload)
        if len(aliases) > MAX_ALIASES:
            return self._reject(None, f"NBIRTH declares over {MAX_ALIASES} metric aliases")
        node.born = True
        node.bd_seq = self.bd_seq
        node.seq = payload.seq if payload.HasField("seq") else None
        node.aliases = aliases
        node.devices = set()
        self._event("NBIRTH", seq=node.seq, bd_seq=node.bd_seq)
        return self.out

    def _ndeath(self) -> Decoded:
        node = self.node
        bd_seq = self.bd_seq
        if node.bd_seq is not None and bd_seq is not None and bd_seq != node.bd_seq:
            why = f"bdSeq {bd_seq} is not the live session's {node.bd_seq}: ignored"
            self._event("NDEATH_STALE", bd_seq=bd_seq, reason=why)
            return self.out
        node.born, node.seq, node.bd_seq = False, None, None
        node.aliases, node.devices = {}, set()
        # A death certificate is the broker's Will, built when the node connected:
        # its timestamp is old, the time it arrived is when the node died; and
        # never before what the node said before it (a clock a little ahead).
        at = self.message.received_at
        self._event(
            "NDEATH", bd_seq=bd_seq, at=at if node.last_at is None else max(at, node.last_at)
        )
        return self.out

    def _ndata(self) -> Decoded:
        if self._sequence():
            return self.out
        if not self.node.born:
            self._rebirth("NDATA before NBIRTH")
        return self.out

    # ------------------------------------------------------------------ device messages

    def _dbirth(self) -> Decoded:
        node = self.node
        self._sequence()
        if not node.born:
            self._rebirth(f"DBIRTH of '{self.device}' before NBIRTH")
        aliases = node.aliases | _aliases(self.payload)
        if len(aliases) > MAX_ALIASES:
            return self._reject(self.device, f"edge node would have over {MAX_ALIASES} aliases")
        if self.device not in node.devices and len(node.devices) >= MAX_DEVICES:
            return self._reject(self.device, f"edge node has {MAX_DEVICES} devices online")
        node.aliases = aliases
        node.devices.add(str(self.device))
        self._event("DBIRTH", seq=_seq(self.payload))
        return self.out

    def _ddeath(self) -> Decoded:
        self._sequence()
        self.node.devices.discard(str(self.device))
        self._event("DDEATH", seq=_seq(self.payload))
        return self.out

    def _ddata(self) -> Decoded:
        node = self.node
        self._sequence()
        if not node.born:
            return self._refuse(f"DDATA of '{self.device}' before NBIRTH of its edge node")
        if self.device not in node.devices:
            return self._refuse(f"DDATA of '{self.device}' before its DBIRTH")
        return self._sample(node.aliases)

    def _replay(self, kind: str) -> Decoded:
        """A replayed dead letter: DDATA is read with the aliases known now; nothing changes."""
        if kind != "DDATA":
            return self.out
        node = self.fmt.node(self.group, self.edge_node, create=False)
        return self._sample({} if node is None else node.aliases)

    # ------------------------------------------------------------------ helpers

    def _sample(self, aliases: dict[int, str]) -> Decoded:
        item: dict[str, Any] = {}
        for metric in self.payload.metrics:
            name = metric.name if metric.HasField("name") else aliases.get(metric.alias)
            if name is None:
                if not metric.HasField("alias"):
                    continue
                return self._refuse(f"unknown metric alias {metric.alias}")
            if name in SAMPLE_FIELDS and not metric.is_null:
                item[name] = _value(metric)
        if not item:
            return self.out  # no sample field: not viu's data
        if not self.payload.HasField("timestamp"):
            return self._reject(self.device, "DDATA without a payload timestamp (the sample's ts)")
        try:
            item["ts"] = _EPOCH + timedelta(milliseconds=self.payload.timestamp)
        except OverflowError:
            return self._reject(
                self.device, f"payload timestamp {self.payload.timestamp} ms is out of range"
            )
        try:
            self.out.samples.append(Sample.model_validate(item))
        except ValidationError as exc:
            return self._reject(self.device, reason_of(exc))
        return self.out

    def _sequence(self) -> bool:
        """Check the message's seq against the node's; a gap asks for a rebirth."""
        node, seq = self.node, _seq(self.payload)
        if seq is None:
            return False
        expected = None if node.seq is None else (node.seq + 1) % 256
        node.seq = seq
        if expected is not None and seq != expected:
            self._rebirth(f"sequence gap: expected seq {expected}, got {seq}")
            return True
        return False

    def _refuse(self, reason: str) -> Decoded:
        """DDATA viu cannot read yet: dead-lettered (replayable), and the births asked for."""
        self._rebirth(reason)
        return self._reject(self.device, reason)

    def _reject(self, device: str | None, reason: str) -> Decoded:
        m = self.message
        self.out.rejects = [Reject(m.topic, device, m.payload, reason)]
        return self.out

    def _rebirth(self, reason: str) -> None:
        now = time.monotonic()
        if not self.live or now - self.node.asked_at < REBIRTH_EVERY_S:
            return
        self.node.asked_at = now
        self._event("REBIRTH_REQUEST", seq=_seq(self.payload), reason=reason, node_level=True)
        self.out.commands.append(rebirth_command(self.group, self.edge_node))

    def _event(
        self,
        kind: str,
        *,
        seq: int | None = None,
        bd_seq: int | None = None,
        reason: str | None = None,
        at: datetime | None = None,
        node_level: bool = False,
    ) -> None:
        if at is None:
            at = self.message.received_at
            if kind != "REBIRTH_REQUEST":
                at = _plausible(self.payload.timestamp, at)
        if self.node.last_at is None or at > self.node.last_at:
            self.node.last_at = at
        who = None if node_level else self.device
        self.out.events.append(
            StateEvent(self.group, self.edge_node, who, kind, at, seq, bd_seq, reason)
        )


def _copy(d: Decoded) -> Decoded:
    return Decoded(
        d.message,
        d.device_id,
        list(d.samples),
        list(d.rejects),
        d.batch,
        list(d.events),
        list(d.commands),
    )


def _seq(payload: Payload) -> int | None:
    if not payload.HasField("seq"):
        return None
    if payload.seq > 255:
        raise Invalid(f"seq {payload.seq} is outside 0..255")
    return payload.seq


def _aliases(payload: Payload) -> dict[int, str]:
    return {m.alias: m.name for m in payload.metrics if m.HasField("alias") and m.name}


def _bd_seq(payload: Payload) -> int | None:
    """The ``bdSeq`` metric: an integer metric within 0..2^63-1, or none at all."""
    for m in payload.metrics:
        if m.name == BD_SEQ:
            value = _value(m) if m.datatype in _INTEGERS else None
            if type(value) is not int or not 0 <= value <= MAX_BD_SEQ:
                shown = str(value)[:32] if value is not None else "no integer"
                raise Invalid(
                    f"bdSeq must be an integer metric within 0..{MAX_BD_SEQ}, not {shown}"
                )
            return value
    return None


def _value(metric: Payload.Metric) -> Any:
    """A metric's value as viu's validators take it: ints, exact Decimals, bools, strings."""
    which = metric.WhichOneof("value")
    if which == "int_value":
        v: Any = metric.int_value
        if metric.datatype in _SIGNED32 and v >= 2**31:
            v -= 2**32
        return v
    if which == "long_value":
        v = metric.long_value
        if metric.datatype == DataType.Int64 and v >= 2**63:
            v -= 2**64
        return v
    if which == "float_value":  # float32: its 7 significant digits, not the binary noise
        return Decimal(format(metric.float_value, ".7g"))
    if which == "double_value":
        return Decimal(repr(metric.double_value))
    if which == "boolean_value":
        return metric.boolean_value
    if which == "string_value":
        return metric.string_value
    return None


def _plausible(millis: int, received: datetime) -> datetime:
    """A payload timestamp within EVENT_BEHIND before to EVENT_AHEAD after arrival, else arrival."""
    if _millis(received - EVENT_BEHIND) <= millis <= _millis(received + EVENT_AHEAD):
        return _EPOCH + timedelta(milliseconds=millis)
    return received


def _millis(ts: datetime) -> int:
    return int((ts - _EPOCH).total_seconds() * 1000)


SPARKPLUG = SparkplugFormat()
