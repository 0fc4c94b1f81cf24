"""Decoding rules of spec §1.2: what a payload may contain, and what becomes a dead letter."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.telemetry import MAX_BATCH
from services.ingest import jsonx
from services.ingest.decode import Decoded, Message, decode

TOPIC = "viu/crusher-07/telemetry"
GOOD = {
    "ts": "2026-10-25T01:30:00+02:00",
    "interval_s": 60,
    "uptime_min": 1,
    "quality_min": 0.5,
    "throughput": 3.25,
}


def run(body: str | bytes, topic: str = TOPIC) -> Decoded:
    raw = body.encode() if isinstance(body, str) else body
    return decode(Message(topic, raw, datetime.now(UTC)))


def one(**fields: Any) -> Decoded:
    doc = {k: v for k, v in (GOOD | fields).items() if v is not ...}
    return run(jsonx.dumps(doc))


def test_rfc3339_with_offset_becomes_utc() -> None:
    (s,) = one().samples
    assert s.ts == datetime(2026, 10, 24, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize("ts", [1792891800, 1792891800.0])
def test_epoch_seconds_are_accepted(ts: Any) -> None:
    (s,) = one(ts=ts).samples
    assert s.ts == datetime.fromtimestamp(1792891800, UTC)


@pytest.mark.parametrize("ts", ["2026-10-25T01:30:00", "2026-10-25", "yesterday", True, None])
def test_timestamps_without_offset_or_garbage_are_rejected(ts: Any) -> None:
    d = one(ts=ts)
    assert not d.samples and "ts" in d.rejects[0].reason


def test_numbers_stay_exact_decimals() -> None:
    (s,) = run(
        '{"ts": 0, "interval_s": 60, "uptime_min": 0.1, "quality_min": 0.1, "throughput": 1e2}'
    ).samples
    assert s.uptime_min == Decimal("0.1") and isinstance(s.throughput, Decimal)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"interval_s": 0}, "interval_s"),
        ({"interval_s": 86_401}, "interval_s"),
        ({"interval_s": 60.5}, "interval_s"),
        ({"interval_s": "60"}, "interval_s"),
        ({"uptime_min": -0.1}, "uptime_min"),
        ({"uptime_min": 1.01}, "uptime_min"),
        ({"quality_min": -1}, "quality_min"),
        ({"quality_min": 1.5}, "quality_min"),
        ({"throughput": -0.001}, "throughput"),
        ({"throughput": "3"}, "throughput"),
        ({"downtime_cause": "weather"}, "downtime_cause"),
        ({"seq": 1.5}, "seq"),
        ({"colour": "red"}, "colour"),
        ({"throughput": ...}, "throughput"),
    ],
)
def test_every_range_rule_rejects(fields: dict[str, Any], field: str) -> None:
    d = one(**fields)
    assert not d.samples
    (reject,) = d.rejects
    assert field in reject.reason
    assert reject.payload.startswith(b"{")


def test_boundaries_are_inclusive() -> None:
    assert one(interval_s=86_400, uptime_min=1440, quality_min=1440).samples
    assert one(interval_s=1, uptime_min=Decimal(1) / 60, quality_min=0).samples == []
    assert one(interval_s=6, uptime_min=0.1, quality_min=0.1, throughput=0).samples


def test_default_cause_is_unplanned_and_others_are_kept() -> None:
    assert one().samples[0].downtime_cause == "unplanned"
    assert one(downtime_cause="customer").samples[0].downtime_cause == "customer"


def test_device_in_sample_must_match_topic() -> None:
    assert one(device_id="crusher-07").samples
    d = one(device_id="crusher-08")
    assert "device/topic mismatch" in d.rejects[0].reason


@pytest.mark.parametrize(
    "topic", ["viu/bad id/telemetry", "viu/x/status", "telemetry", "viu/" + "x" * 65 + "/telemetry"]
)
def test_bad_topics_reject_the_whole_payload(topic: str) -> None:
    d = run(b'{"ts": 0}', topic)
    assert d.device_id is None and len(d.rejects) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b"42",
        b'{"samples": 3}',
        b"\xff",
        b'{"samples": [], "extra": 1}',
        b'{"ts": NaN}',
    ],
)
def test_malformed_payload_is_one_reject_of_the_raw_bytes(body: bytes) -> None:
    d = run(body)
    assert d.samples == [] and [r.payload for r in d.rejects] == [body]
    assert d.received == 1


def test_batch_keeps_valid_items_and_rejects_each_invalid_one() -> None:
    items = [GOOD, GOOD | {"interval_s": 0}, GOOD, GOOD | {"quality_min": 9}]
    d = run(json.dumps({"samples": items}))
    assert len(d.samples) == 2 and len(d.rejects) == 2
    assert d.rejects[0].reason.startswith("samples[1]")
    assert json.loads(d.rejects[1].payload)["quality_min"] == 9


def test_oversize_batch_is_refused_whole() -> None:
    body = json.dumps({"samples": [GOOD] * (MAX_BATCH + 1)})
    d = run(body)
    assert d.samples == [] and "at most 10000" in d.rejects[0].reason
    assert len(run(json.dumps({"samples": [GOOD] * MAX_BATCH})).samples) == MAX_BATCH


def test_http_pseudo_topic_names_the_device() -> None:
    d = run(
        b'{"ts": 0, "interval_s": 60, "uptime_min": 1, "quality_min": 1, "throughput": 0}',
        "http:/v1/telemetry/gw-1",
    )
    assert d.device_id == "gw-1" and len(d.samples) == 1


def test_an_unexpected_error_dead_letters_only_that_payload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bulkhead: whatever a validator raises, one payload becomes one dead letter."""
    import services.ingest.formats.json as decoding

    real, real_fast = decoding._sample, decoding.fast_values

    def fragile(item: Any, device_id: str) -> Any:
        if item.get("throughput") == 666:
            raise RuntimeError("a validator nobody foresaw")
        return real(item, device_id)

    def fragile_fast(*values: Any) -> Any:  # the one-pass path's validator (``_plainly_valid``)
        if values[4] == 666:
            raise RuntimeError("a validator nobody foresaw")
        return real_fast(*values)

    monkeypatch.setattr(decoding, "_sample", fragile)
    monkeypatch.setattr(decoding, "fast_values", fragile_fast)
    for bad in (
        one(throughput=666),
        run(json.dumps({"samples": [GOOD, {**GOOD, "throughput": 666}]})),
    ):
        assert not bad.samples
        assert (
            bad.rejects[0].reason == "cannot be decoded: RuntimeError: a validator nobody foresaw"
        )
    assert one().samples


def test_nesting_deeper_than_the_parser_takes_is_a_reject_not_a_recursion_error() -> None:
    d = run(b"[" * 100_000 + b"]" * 100_000)
    assert d.rejects[0].reason == "bad JSON: nested too deeply"
    nested_item = run('{"samples": [' + "[" * 990 + "]" * 990 + "]}")
    assert not nested_item.samples and nested_item.rejects


def test_an_oversized_payload_keeps_its_first_bytes_and_says_why() -> None:
    from schemas.telemetry import MAX_PAYLOAD_BYTES
    from services.ingest.decode import KEPT_OF_OVERSIZE

    raw = b'{"samples": [' + b" " * MAX_PAYLOAD_BYTES + b"]}"
    (reject,) = run(raw).rejects
    assert reject.payload == raw[:KEPT_OF_OVERSIZE]
    assert reject.reason.startswith(f"payload of {len(raw)} bytes is over the limit")


@pytest.mark.parametrize(
    ("device", "shown"),
    [("\ud800", "\\ud800"), ("a\x00b", "a\\x00b"), ("\udcff\x00", "\\udcff\\x00")],
)
def test_reasons_quoting_the_input_are_always_storable(device: str, shown: str) -> None:
    raw = json.dumps(GOOD | {"device_id": device}).encode()
    (reject,) = run(raw).rejects
    assert reject.reason == f"device/topic mismatch: sample says '{shown}'"
    reject.reason.encode("utf-8")  # no lone surrogate left
    assert "\x00" not in reject.reason


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"]
)
def test_json_in_any_encoding_json_allows_parses_to_the_same_exact_values(encoding: str) -> None:
    """UTF-8 takes a shortcut past ``json.detect_encoding``; every other encoding still goes through it."""
    text = '{"a": 1.25, "b": "é", "c": [0.1]}'
    assert jsonx.loads(text.encode(encoding)) == {
        "a": Decimal("1.25"),
        "b": "é",
        "c": [Decimal("0.1")],
    }


def test_topics_are_remembered_only_at_ordinary_length() -> None:
    """Many distinct 64 kB topics (a hostile publisher) must not fill the lookups' memory."""
    from services.ingest import formats
    from services.ingest.formats import json as json_format

    caches = (formats._remembered_format, json_format._remembered_device)
    before = [c.cache_info().currsize for c in caches]
    for i in range(200):
        long_topic = f"{'p' * 65_000}/dev-{i}/telemetry"
        assert formats.format_of(long_topic) is formats.JSON
        assert json_format.topic_device(long_topic) == f"dev-{i}"
    assert [c.cache_info().currsize for c in caches] == before
    topic = f"viu/dev-{uuid.uuid4().hex[:8]}/telemetry"
    assert json_format.topic_device(topic) == json_format.topic_device(topic)
    assert json_format._remembered_device.cache_info().currsize == before[1] + 1


def _typed(value: Any) -> Any:
    """A value with every type spelt out: Decimal('1.0') and Decimal('1') differ, as 1 and True do."""
    if isinstance(value, dict):
        return ("dict", [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    return (type(value).__name__, str(value))


_SCALAR_TEXT = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["true", "false", "null", "NaN", "Infinity", "-0", "1.", ".5", "+1", "01"]),
    st.text(max_size=8).map(lambda s: json.dumps(s, ensure_ascii=False)),
    st.sampled_from(['"\\ud800"', '"\\u0000"', '"a\x01b"', '"\\uD83D\\uDE00"', '"\\/"']),
)


def _object_text(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    keys = st.sampled_from(["ts", "interval_s", "uptime_min", "samples", "a", "ts", "é"])
    pair = st.tuples(keys, values).map(lambda kv: f"{json.dumps(kv[0])}:{kv[1]}")
    return st.lists(pair, max_size=5).map(lambda ps: "{" + ",".join(ps) + "}")


_JSON_TEXT = st.recursive(
    _SCALAR_TEXT,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda vs: "[" + ", ".join(vs) + "]"),
        _object_text(inner),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(body=_object_text(_JSON_TEXT), mutation=st.binary(max_size=3), at=st.integers(0, 200))
def test_the_fast_parser_accepts_nothing_the_standard_one_reads_differently(
    body: str, mutation: bytes, at: int
) -> None:
    """msgspec parses first (``jsonx.loads``); where it accepts, json must give the same values."""
    raw = body.encode()
    for candidate in (raw, raw[:at] + mutation + raw[at:]):
        try:
            fast = jsonx._FAST.decode(candidate)
        except Exception:
            continue  # refused: the standard parser alone decides
        assert _typed(fast) == _typed(jsonx.standard_loads(candidate))
        assert _typed(jsonx.loads(candidate)) == _typed(fast)
