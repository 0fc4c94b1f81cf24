"""The fast validation path never disagrees with the pydantic model it short-cuts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.telemetry import Sample, fast_sample

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
