"""The Sparkplug B format without a broker: sequence wrap, values, retries, replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.ingest.formats import decode, format_of, sparkplug
from services.ingest.formats.base import Message
from services.ingest.formats.sparkplug_b_pb2 import DataType, Payload
from services.simulator.sparkplug import EdgeNode
from tests.ingest.conftest import sample


def node_and_inbox(group: str = "gd") -> tuple[EdgeNode, list[Message]]:
    inbox: list[Message] = []
    node = EdgeNode(lambda t, raw: inbox.append(Message(t, raw, datetime.now(UTC))), group, "n1")
    return node, inbox


def test_sequence_numbers_wrap_at_255_without_a_rebirth_request() -> None:
    node, inbox = node_and_inbox("wrap")
    node.nbirth()
    node.dbirth("d1")
    for i in range(300):
        node.ddata("d1", sample(i * 5))
    decoded = [decode(m) for m in inbox]
    assert not any(d.commands or d.rejects for d in decoded)
    assert sum(len(d.samples) for d in decoded) == 300
    assert [e.kind for d in decoded for e in d.events] == ["NBIRTH", "DBIRTH"]


def test_a_retried_decode_gives_the_same_result_and_no_second_gap() -> None:
    node, inbox = node_and_inbox("retry")
    node.nbirth()
    node.dbirth("d1")
    node.ddata("d1", sample(0), seq=9)  # a gap
    results = [decode(m) for m in inbox]
    again = decode(inbox[-1])
    assert len(results[-1].commands) == len(again.commands) == 1
    assert again.events == results[-1].events and again.samples == results[-1].samples


def test_metric_types_map_exactly() -> None:
    node, inbox = node_and_inbox("types")
    node.nbirth()
    node.dbirth("d1")
    raw = Payload(timestamp=1_790_000_000_000, seq=node.next_seq())
    for name, datatype, field, value in (
        ("interval_s", DataType.Int32, "int_value", 300),
        ("uptime_min", DataType.Float, "float_value", 4.1),
        ("quality_min", DataType.Double, "double_value", 4.05),
        ("throughput", DataType.UInt64, "long_value", 12),
        ("downtime_cause", DataType.String, "string_value", "planned"),
        ("temperature", DataType.Double, "double_value", 81.5),  # not a sample field: ignored
    ):
        raw.metrics.add(name=name, datatype=datatype, **{field: value})
    inbox.append(
        Message(
            sparkplug.topic("types", "DDATA", "n1", "d1"),
            raw.SerializeToString(),
            datetime.now(UTC),
        )
    )
    (s,) = [s for m in inbox for s in decode(m).samples]
    assert (s.uptime_min, s.quality_min, s.throughput) == (Decimal("4.1"), Decimal("4.05"), 12)
    assert s.downtime_cause == "planned" and s.ts == datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC)


def test_replay_reads_with_the_known_aliases_and_changes_nothing() -> None:
    node, inbox = node_and_inbox("replay")
    node.nbirth()
    node.dbirth("d1")
    for m in inbox:
        decode(m)
    late = Message(
        sparkplug.topic("replay", "DDATA", "n1", "d1"),
        node.data_payload("d1", sample(0), seq=200),
        datetime.now(UTC),
    )
    replayed = decode(late, live=False)
    assert len(replayed.samples) == 1 and not replayed.commands and not replayed.events


def test_topics_and_format_choice() -> None:
    assert format_of("spBv1.0/g/DDATA/n/d").name == "sparkplug"
    assert format_of("viu/d1/telemetry").name == "json"
    bad = decode(Message("spBv1.0/g/DCMD/n/d", b"", datetime.now(UTC)))
    assert bad.rejects[0].reason == "Sparkplug message type 'DCMD' is not ingested"


def test_remembered_decodes_are_bounded_in_bytes_and_forgotten_once_acknowledged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fmt = sparkplug.SparkplugFormat()
    node, inbox = node_and_inbox("bytes")
    node.nbirth()
    node.dbirth("d1")
    for i in range(40):
        node.ddata("d1", sample(i * 5))
    size = sum(len(m.payload) for m in inbox)
    fmt.decode(Message(inbox[0].topic, b"\xff not a protobuf", inbox[0].received_at))
    assert not fmt._seen  # a stateless reject decodes the same again: not kept

    monkeypatch.setattr(sparkplug, "REMEMBERED_BYTES", size // 2)
    for m in inbox:
        fmt.decode(m)
    assert fmt._seen_bytes == sum(len(m.payload) for m in fmt._seen) <= size // 2
    assert list(fmt._seen) == inbox[-len(fmt._seen) :]  # the oldest went first

    monkeypatch.setattr(sparkplug, "REMEMBERED_BYTES", size)
    fmt.reset()
    for m in inbox:
        fmt.decode(m)
    assert list(fmt._seen) == inbox and fmt._seen_bytes == size
    fmt.forget(inbox[:10])
    assert list(fmt._seen) == inbox[10:]
    assert fmt._seen_bytes == size - sum(len(m.payload) for m in inbox[:10])
    fmt.forget(inbox)
    assert not fmt._seen and fmt._seen_bytes == 0


def test_a_message_weighs_by_its_size() -> None:
    assert sparkplug.SPARKPLUG.weight(b"x" * 100) == 1
    assert sparkplug.SPARKPLUG.weight(b"x" * (16 << 20)) == 257


def test_nodes_aliases_and_devices_per_node_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sparkplug, "MAX_NODES", 3)
    monkeypatch.setattr(sparkplug, "MAX_DEVICES", 2)
    monkeypatch.setattr(sparkplug, "MAX_ALIASES", 12)  # the simulator: 6 per device
    fmt = sparkplug.SparkplugFormat()
    inbox: list[Message] = []
    send = lambda t, raw: inbox.append(Message(t, raw, datetime.now(UTC)))  # noqa: E731
    nodes = [EdgeNode(send, "caps", f"n{i}") for i in range(4)]
    for n in nodes:
        n.nbirth()
    for m in inbox:
        fmt.decode(m)
    # The least recently heard node is forgotten: its data asks for its births again.
    assert [k[1] for k in fmt._nodes] == ["n1", "n2", "n3"]
    inbox.clear()
    nodes[0].ddata("d1", sample(0))
    (forgotten,) = [fmt.decode(m) for m in inbox]
    assert forgotten.rejects[0].reason == "DDATA of 'd1' before NBIRTH of its edge node"
    assert [e.kind for e in forgotten.events] == ["REBIRTH_REQUEST"]

    # Devices (and aliases) per node: over the cap, a DBIRTH is dead-lettered with the reason.
    inbox.clear()
    node = nodes[3]
    for device in ("d1", "d2", "d3"):
        node.dbirth(device)
    decoded = [fmt.decode(m) for m in inbox]
    assert [len(d.events) for d in decoded] == [1, 1, 0]
    assert decoded[2].rejects[0].reason == "edge node would have over 12 aliases"
    monkeypatch.setattr(sparkplug, "MAX_ALIASES", 1000)
    inbox.clear()
    node.dbirth("d4")
    (over,) = [fmt.decode(m) for m in inbox]
    assert over.rejects[0].reason == "edge node has 2 devices online"
    assert fmt._nodes[("caps", "n3")].devices == {"d1", "d2"}


def test_state_event_times_come_from_a_plausible_clock_and_a_death_follows_its_births() -> None:
    fmt = sparkplug.SparkplugFormat()
    now = datetime.now(UTC).replace(microsecond=0)  # payload timestamps are milliseconds

    def at(kind: str, stamp: datetime | int, device: str | None = None, **kw: int) -> datetime:
        ms = stamp if isinstance(stamp, int) else round(stamp.timestamp() * 1000)
        payload = Payload(timestamp=ms, **kw)
        if kind in ("NBIRTH", "NDEATH"):
            payload.metrics.add(name="bdSeq", datatype=DataType.Int64, long_value=0)
        msg = Message(
            sparkplug.topic("clock", kind, "n1", device), payload.SerializeToString(), now
        )
        (event,) = [e for e in fmt.decode(msg).events if e.kind == kind]
        return event.ts

    assert at("NBIRTH", now - timedelta(minutes=3), seq=0) == now - timedelta(minutes=3)
    # A clock far ahead or far behind (or nonsense): the time the message arrived.
    assert at("DBIRTH", now + timedelta(hours=1), "d1", seq=1) == now
    assert at("DDEATH", now - timedelta(days=30), "d1", seq=2) == now
    assert at("DBIRTH", 2**64 - 1, "d1", seq=3) == now
    # A clock a little ahead is believed, and the node's death is not before it.
    ahead = now + timedelta(minutes=4)
    assert at("DBIRTH", ahead, "d2", seq=4) == ahead
    assert at("NDEATH", now - timedelta(hours=2)) == ahead


def test_a_data_timestamp_beyond_any_date_is_dead_lettered() -> None:
    node, inbox = node_and_inbox("far")
    node.nbirth()
    node.dbirth("d1")
    raw = Payload.FromString(node.data_payload("d1", sample(0)))
    raw.timestamp = 2**64 - 1
    inbox.append(
        Message(
            inbox[-1].topic.replace("DBIRTH", "DDATA"), raw.SerializeToString(), datetime.now(UTC)
        )
    )
    *_, far = [decode(m) for m in inbox]
    assert far.rejects[0].reason == f"payload timestamp {2**64 - 1} ms is out of range"
