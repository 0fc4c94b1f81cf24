"""MQTT variable byte integers: what the consumer reads is what ``varint`` writes."""

from __future__ import annotations

import pytest

from services.ingest.mqtt import ConnectionLost, read_varint, varint


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
