"""Sparkplug B end to end: a real edge node (paho + Tahu protobuf) → a real broker → viu ingest.

Births, data stored as samples, a sequence gap answered with a rebirth
request on the NCMD topic, deaths recorded as offline intervals (DDEATH, and
NDEATH as the broker's Will), a stale death ignored, a rebirth after death,
data before birth and an unknown alias dead-lettered, a malformed payload
dead-lettered while ingest goes on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from services.ingest.formats import sparkplug
from services.ingest.formats.sparkplug_b_pb2 import DataType, Payload
from services.ingest.service import IngestService
from tests.ingest.conftest import T0, refusing, register, rows, sample
from tests.ingest.mqtt_helpers import stored, wait_until
from tests.ingest.sparkplug_node import SparkplugNode

DEVICE = "spb-press-1"


def events(db: Engine, group: str) -> list[str]:
    return [
        r["kind"]
        for r in rows(
            db, "SELECT kind FROM sparkplug_events WHERE group_id = :g ORDER BY id", g=group
        )
    ]


def states(db: Engine, device: str = DEVICE) -> list[tuple[bool, str]]:
    return [
        (r["online"], r["cause"])
        for r in rows(
            db,
            "SELECT online, cause FROM device_connectivity WHERE device_id = :d ORDER BY ts, received_at",
            d=device,
        )
    ]


def dead(db: Engine) -> list[dict[str, Any]]:
    return rows(db, "SELECT topic, device_id, reason FROM dead_letters ORDER BY id")


@pytest.fixture
def group() -> str:
    return f"g{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ingest(start_service: Callable[..., IngestService], group: str) -> IngestService:
    return start_service(sparkplug_group=group)


@pytest.fixture
def node(mqtt_url: str, group: str, ingest: IngestService) -> Any:
    n = SparkplugNode(mqtt_url, group)
    yield n
    n.close()


def test_births_data_gap_deaths_and_rebirth(db: Engine, node: SparkplugNode, group: str) -> None:
    register(db, DEVICE)
    node.answer_rebirth = True
    node.nbirth()
    node.dbirth(DEVICE)
    node.ddata(DEVICE, sample(0, seq=7))
    node.ddata(DEVICE, sample(5))
    wait_until(lambda: stored(db, DEVICE) == 2, 10, "two Sparkplug samples")
    first = rows(db, "SELECT * FROM samples WHERE device_id = :d ORDER BY ts", d=DEVICE)[0]
    assert first["ts"] == T0 and first["interval_s"] == 300 and first["seq"] == 7
    assert (first["uptime_min"], first["quality_min"], first["throughput"]) == (
        Decimal("4.5"),
        Decimal("4.25"),
        Decimal("12.125"),
    )
    assert states(db) == [(True, "DBIRTH")]

    # A sequence gap: the data is kept, viu asks for a rebirth, the node answers.
    node.ddata(DEVICE, sample(10), seq=(node.seq + 3) % 256)
    wait_until(lambda: node.rebirths() == 1, 10, "the rebirth request on NCMD")
    assert node.commands[0][0] == f"spBv1.0/{group}/NCMD/gw-1"
    wait_until(lambda: events(db, group).count("NBIRTH") == 2, 10, "the rebirth")
    (request,) = rows(db, "SELECT * FROM sparkplug_events WHERE kind = 'REBIRTH_REQUEST'")
    assert request["reason"].startswith("sequence gap: expected seq")
    node.ddata(DEVICE, sample(15))
    wait_until(lambda: stored(db, DEVICE) == 4, 10, "data after the rebirth")
    assert node.rebirths() == 1
    # The new session's NBIRTH took the device offline until its DBIRTH.
    assert states(db) == [(True, "DBIRTH"), (False, "NBIRTH"), (True, "DBIRTH")]

    # DDEATH, DBIRTH again; then the connection drops and the broker publishes the Will.
    node.ddeath(DEVICE)
    node.dbirth(DEVICE)
    node.vanish()
    wait_until(lambda: "NDEATH" in events(db, group), 15, "the NDEATH Will")
    assert states(db)[-3:] == [(False, "DDEATH"), (True, "DBIRTH"), (False, "NDEATH")]

    # A new session (bdSeq 1); the old session's death certificate arriving late changes nothing.
    node.reconnect()
    node.nbirth()
    node.dbirth(DEVICE)
    stale = Payload(timestamp=1)
    stale.metrics.add(name="bdSeq", datatype=DataType.Int64, long_value=0)
    node.publish_raw("NDEATH", stale.SerializeToString())
    node.ddata(DEVICE, sample(20))
    wait_until(lambda: stored(db, DEVICE) == 5, 10, "data after the reconnect")
    wait_until(lambda: "NDEATH_STALE" in events(db, group), 10, "the stale death")
    assert states(db)[-1] == (True, "DBIRTH")
    assert not dead(db)


def test_malformed_payload_is_dead_lettered_and_ingest_goes_on(
    db: Engine, node: SparkplugNode
) -> None:
    register(db, DEVICE)
    node.nbirth()
    node.dbirth(DEVICE)
    node.publish_raw("DDATA", b"\xff\xfe not a protobuf", DEVICE)
    node.ddata(DEVICE, sample(0))
    wait_until(lambda: stored(db, DEVICE) == 1, 10, "the sample after the bad payload")
    (letter,) = dead(db)
    assert letter["reason"].startswith("malformed Sparkplug B payload")
    assert letter["device_id"] == DEVICE


def test_data_before_birth_and_unknown_alias_are_dead_lettered_with_a_rebirth_request(
    db: Engine, node: SparkplugNode, group: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sparkplug, "REBIRTH_EVERY_S", 0.0)
    register(db, DEVICE)
    node.ddata(DEVICE, sample(0))  # no NBIRTH yet
    wait_until(lambda: len(dead(db)) == 1, 10, "the dead letter")
    assert dead(db)[0]["reason"] == f"DDATA of '{DEVICE}' before NBIRTH of its edge node"
    wait_until(lambda: node.rebirths() == 1, 10, "a rebirth request")

    node.nbirth()
    node.dbirth(DEVICE)
    unknown = Payload(timestamp=int(T0.timestamp() * 1000), seq=node.next_seq())
    unknown.metrics.add(alias=999, datatype=DataType.Double, double_value=1.0)
    node.publish_raw("DDATA", unknown.SerializeToString(), DEVICE)
    node.ddata(DEVICE, sample(5))
    wait_until(lambda: stored(db, DEVICE) == 1, 10, "the good sample")
    wait_until(lambda: len(dead(db)) == 2, 10, "the unknown alias")
    assert dead(db)[1]["reason"] == "unknown metric alias 999"
    wait_until(lambda: node.rebirths() == 2, 10, "the second rebirth request")
    assert events(db, group).count("REBIRTH_REQUEST") == 2


def test_data_before_birth_is_replayable_once_the_births_arrived(
    db: Engine, node: SparkplugNode
) -> None:
    from services.ingest.replay import replay

    register(db, DEVICE)
    node.ddata(DEVICE, sample(0))  # viu knows no session of this node yet
    wait_until(lambda: len(dead(db)) == 1, 10, "the dead letter")
    node.nbirth()
    node.dbirth(DEVICE)
    wait_until(lambda: "DBIRTH" in events(db, node.group), 10, "the births")
    (letter,) = rows(db, "SELECT id FROM dead_letters")
    with db.begin() as conn:
        entry, outcome = replay(conn, letter["id"], "operator")
    assert entry["status"] == "replayed" and outcome is not None and outcome.stored == 1
    assert stored(db, DEVICE) == 1


def _bd_seq_payload(datatype: int, **value: Any) -> bytes:
    payload = Payload(timestamp=int(T0.timestamp() * 1000), seq=0)
    payload.metrics.add(name="bdSeq", datatype=datatype, **value)
    return payload.SerializeToString()


def test_values_the_database_cannot_store_are_dead_lettered_and_ingest_goes_on(
    db: Engine, node: SparkplugNode, group: str
) -> None:
    """seq beyond 0..255, bdSeq beyond a bigint or not an integer, an over-long edge node id."""
    register(db, DEVICE)
    node.nbirth()
    node.dbirth(DEVICE)
    node.publish_raw("DDATA", node.data_payload(DEVICE, sample(0), seq=2**31), DEVICE)
    node.publish_raw("DDEATH", Payload(timestamp=1, seq=2**40).SerializeToString(), DEVICE)
    node.publish_raw("NBIRTH", _bd_seq_payload(DataType.UInt64, long_value=2**64 - 1))
    node.publish_raw("NDEATH", _bd_seq_payload(DataType.Boolean, boolean_value=True))
    long_id = "n" * 3000
    node._publish(sparkplug.topic(group, "NBIRTH", long_id), _bd_seq_payload(DataType.Int64))
    node.ddata(DEVICE, sample(5))
    wait_until(lambda: stored(db, DEVICE) == 1, 10, "the good sample after the hostile ones")
    wait_until(lambda: len(dead(db)) == 5, 10, "five dead letters")
    reasons = [d["reason"] for d in dead(db)]
    assert reasons[:2] == [
        "seq 2147483648 is outside 0..255",
        "seq 1099511627776 is outside 0..255",
    ]
    assert reasons[2] == f"bdSeq must be an integer metric within 0..{2**63 - 1}, not {2**64 - 1}"
    assert reasons[3] == f"bdSeq must be an integer metric within 0..{2**63 - 1}, not no integer"
    assert reasons[4].startswith("invalid topic: group and edge node ids must match")
    assert events(db, group) == ["NBIRTH", "DBIRTH"]  # nothing hostile changed any state
    assert states(db) == [(True, "DBIRTH")]

    # Every batch was acknowledged: no decode is kept for a retry any more.
    def kept() -> bool:
        with sparkplug.SPARKPLUG._lock:
            return any(m.topic.startswith(f"spBv1.0/{group}/") for m in sparkplug.SPARKPLUG._seen)

    wait_until(lambda: not kept(), 5, "the acknowledged decodes forgotten")


@pytest.fixture
def refuse_node(db: Engine) -> Any:
    """An operator's trigger refusing every event row of one edge node, for good."""
    with refusing(db, "sparkplug_events", "NEW.edge_node = 'gw-bad'", "operator rule: no gw-bad"):
        yield


def test_an_event_row_the_database_refuses_is_dead_lettered_and_ingest_goes_on(
    db: Engine, node: SparkplugNode, group: str, mqtt_url: str, refuse_node: None
) -> None:
    register(db, DEVICE)
    bad = SparkplugNode(mqtt_url, group, "gw-bad")
    try:
        bad.nbirth()
        node.nbirth()
        node.dbirth(DEVICE)
        node.ddata(DEVICE, sample(0))
        wait_until(lambda: stored(db, DEVICE) == 1, 10, "the good node's sample")
        wait_until(lambda: len(dead(db)) == 1, 10, "the refused NBIRTH's dead letter")
    finally:
        bad.close()
    (letter,) = dead(db)
    assert letter["topic"] == f"spBv1.0/{group}/NBIRTH/gw-bad"
    assert letter["reason"].startswith("refused by the database:")
    assert "operator rule: no gw-bad" in letter["reason"]
    assert events(db, group) == ["NBIRTH", "DBIRTH"]
