"""The fast validation path never disagrees with the pydantic model it short-cuts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.telemetry import Sample, fast_sample
from services.ingest import jsonx
from services.ingest.formats import json as formats_json
from services.ingest.formats.base import Decoded, Message
from services.ingest.formats.json import http_topic

T0 = datetime(2026, 10, 1, tzinfo=UTC)

WILD: dict[str, Any] = {
    "ts": st.sampled_from(
        [
            "2026-10-25T01:30:00",
            "not a time",
            "1969-12-31T23:59:59Z",
            1.5e12,
            None,
            -1,
            4_102_444_799,  # the last second before 2100
            4_102_444_800,
            10**12,
            Decimal("1772323200.5"),
            True,
        ]
    ),
    "interval_s": st.sampled_from([0, -1, 86_400, 86_401, 60.0, "60", True, None]),
    "uptime_min": st.sampled_from([-1, -0.001, 1e9, "1", float("nan"), None, True]),
    "quality_min": st.sampled_from([-1, 1e9, "1", float("inf"), None]),
    "throughput": st.sampled_from(
        [
            -0.001,
            "3",
            float("nan"),
            None,
            False,
            # the edges of the digit bounds, as integers and as decimals in and
            # out of the short form the fast path checks by its text
            10**20 - 1,
            10**20,
            -(10**20),
            Decimal(10**20 - 1),
            Decimal(10**20),
            Decimal("1E+19"),
            Decimal("1E+20"),
            Decimal("0." + "0" * 29 + "1"),
            Decimal("0." + "0" * 30 + "1"),
            Decimal("1E-30"),
            Decimal("1E-31"),
            Decimal("123456789.0123456789"),
            Decimal("-0"),
            Decimal("-0.000"),
            Decimal("NaN"),
            Decimal("sNaN"),
            Decimal("Infinity"),
        ]
    ),
    "downtime_cause": st.sampled_from(["weather", "", 7, None, "PLANNED"]),
    "seq": st.sampled_from([2**63, -(2**63) - 1, 2**63 - 1, "1", 1.0, True]),
    "device_id": st.sampled_from(["", "a/b", None, 5, "x" * 65]),
    "colour": st.just("red"),
}


@st.composite
def valid(draw: Any) -> dict[str, Any]:
    interval = draw(st.integers(1, 86_400))
    uptime = draw(st.decimals(0, Decimal(interval) / 60, places=draw(st.sampled_from([3, 25]))))
    item: dict[str, Any] = {
        "ts": draw(st.one_of(st.integers(0, 4_102_444_799), st.just("2026-10-25T02:30:00+01:00"))),
        "interval_s": interval,
        "uptime_min": uptime,
        "quality_min": draw(st.decimals(0, uptime, places=3)),
        "throughput": draw(st.one_of(st.integers(0, 10**6), st.decimals(0, 10**6, places=2))),
    }
    if draw(st.booleans()):
        item["downtime_cause"] = draw(
            st.sampled_from(["unplanned", "planned", "customer", "external"])
        )
    if draw(st.booleans()):
        item["seq"] = draw(st.integers(-(2**63), 2**63 - 1))
    return item


@st.composite
def samples(draw: Any) -> dict[str, Any]:
    """Valid samples, or valid ones with one field missing or replaced by an edge case."""
    item = draw(valid())
    change = draw(st.sampled_from([None, "drop", *WILD]))
    if change == "drop":
        item.pop(draw(st.sampled_from(sorted(item))))
    elif change is not None:
        item[change] = draw(WILD[change])
    return item


def _plain(value: Any) -> Any:
    return value.model_dump() if isinstance(value, Sample) else value


@settings(max_examples=3000, deadline=None)
@given(item=samples())
def test_fast_sample_accepts_only_what_pydantic_accepts_and_builds_the_same_sample(item) -> None:  # type: ignore[no-untyped-def]
    fast = fast_sample(dict(item))
    try:
        slow = Sample.model_validate(dict(item))
    except ValidationError:
        assert fast is None, item
        return
    if fast is not None:
        assert _plain(fast) == _plain(slow), item


def _payload(items: list[dict[str, Any]], batch: bool) -> bytes | None:
    """The JSON a device would send; None for values JSON cannot carry (NaN, Infinity)."""
    try:
        return jsonx.dumps({"samples": items} if batch else items[0]).encode()
    except ValueError:
        return None


def _same(a: Decoded, b: Decoded) -> bool:
    return (
        a.batch == b.batch
        and [_plain(s) for s in a.samples] == [_plain(s) for s in b.samples]
        and [s.model_fields_set for s in a.samples] == [s.model_fields_set for s in b.samples]
    )


@settings(max_examples=1000, deadline=None)
@given(
    items=st.lists(samples(), min_size=1, max_size=3),
    batch=st.booleans(),
    said=st.sampled_from([None, "d1", "d2"]),
)
def test_the_one_pass_json_path_takes_only_what_the_general_path_stores_whole(  # type: ignore[no-untyped-def]
    items, batch, said
) -> None:
    """``_plainly_valid`` gives the general path's samples, or None (the general path decides)."""
    if said is not None:
        items = [{**i, "device_id": said} for i in items]
    raw = _payload(items, batch or len(items) > 1)
    if raw is None:
        return
    message = Message(http_topic("d1"), raw, T0)
    fast = formats_json._plainly_valid(message, "d1")
    general = formats_json._general(message, "d1")
    if fast is not None:
        assert not general.rejects, (raw, general.rejects)
        assert _same(fast, general), raw


def test_the_usual_payloads_take_the_one_pass_path() -> None:
    one = b'{"ts":1767225600,"interval_s":60,"uptime_min":1,"quality_min":0.95,"throughput":14.3}'
    many = b'{"samples":[' + one + b"," + one.replace(b"1767225600", b"1767225660") + b"]}"
    for raw, size in ((one, 1), (many, 2)):
        decoded = formats_json._plainly_valid(Message(http_topic("d1"), raw, T0), "d1")
        assert decoded is not None and len(decoded.samples) == size
        assert decoded.samples[0].model_fields_set == {
            "ts",
            "interval_s",
            "uptime_min",
            "quality_min",
            "throughput",
        }
    # a key that is not §1.2's, a string number, a device other than the topic's: the general path
    for raw in (
        one.replace(b'"ts"', b'"colour":"red","ts"'),
        one.replace(b"14.3", b'"14.3"'),
        one.replace(b"}", b',"device_id":"d2"}'),
        b'{"samples":[' + one + b',{"ts":1}]}',
    ):
        assert formats_json._plainly_valid(Message(http_topic("d1"), raw, T0), "d1") is None
