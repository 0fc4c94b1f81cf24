"""MQTT framing: variable byte integers read as ``varint`` writes them; acknowledgements."""

from __future__ import annotations

import socket

import pytest

from services.config import load_settings
from services.ingest.mqtt import (
    AckToken,
    ConnectionLost,
    MqttConsumer,
    PubAcks,
    pubacks,
    read_varint,
    varint,
)


@pytest.mark.parametrize("n", [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455])
def test_read_varint_reads_what_varint_writes(n: int) -> None:
    raw = b"\xff" + varint(n) + b"rest"
    assert read_varint(raw, 1) == (n, 1 + len(varint(n)))


def test_read_varint_waits_for_the_rest_of_a_split_integer() -> None:
    raw = varint(300_000)
    assert read_varint(raw[:-1], 0) is None
    assert read_varint(raw, 0, end=len(raw) - 1) is None
    assert read_varint(b"", 0) is None


def test_read_varint_refuses_a_fifth_byte() -> None:
    with pytest.raises(ConnectionLost):
        read_varint(b"\x80\x80\x80\x80\x01", 0)


def test_prepared_acknowledgements_are_those_of_ack_many_and_only_for_their_connection() -> None:
    """PUBACKs built before the commit go out only on the connection that delivered the messages.

    A packet id is only unique within one connection: acknowledging an older
    connection's id on the new one would acknowledge a different message,
    which the broker then never redelivers.
    """
    tokens = [AckToken(1, 0x0102, 1), AckToken(1, 7, 0), AckToken(1, 0xFFFF, 1)]
    acks = pubacks(tokens)
    assert acks == PubAcks(1, b"\x40\x02\x01\x02" + b"\x40\x02\xff\xff")  # QoS 0 needs none
    assert pubacks([AckToken(1, 5, 1), AckToken(2, 6, 1)]) is None  # across a reconnect
    assert pubacks([]) is None

    consumer = MqttConsumer(load_settings(), "mqtt://127.0.0.1:1", lambda items: None)
    ours, broker_side = socket.socketpair()
    with ours, broker_side:
        broker_side.settimeout(0.2)
        consumer._sock, consumer._generation = ours, 2
        consumer._connected.set()
        consumer.send_pubacks(acks)  # connection 1 is gone: nothing is sent
        consumer.ack_many(tokens)  # nor by the writer's fallback
        with pytest.raises(TimeoutError):
            broker_side.recv(64)
        consumer._generation = 1
        consumer.send_pubacks(acks)
        consumer.ack_many(tokens)
        expected = acks.data * 2
        got = b""
        while len(got) < len(expected):
            got += broker_side.recv(64)
        assert got == expected
