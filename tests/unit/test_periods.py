"""Billing periods in the contract's time zone (spec §3.1), DST months included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.periods import (
    InvalidPeriod,
    InvalidQuarter,
    NaiveDatetime,
    Period,
    Quarter,
    UnknownTimezone,
    day_bounds,
    minutes_between,
    parse_timestamp,
    period_bounds,
    period_minutes,
    period_of,
)

ZONES = [
    "UTC",
    "Europe/Stockholm",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
]
periods = st.builds(Period, st.integers(2000, 2040), st.integers(1, 12))
zones = st.sampled_from(ZONES)


def test_october_stockholm_has_44700_minutes() -> None:
    assert period_minutes(Period(2026, 10), "Europe/Stockholm") == 44_700


def test_march_stockholm_has_44580_minutes() -> None:
    assert period_minutes(Period(2026, 3), "Europe/Stockholm") == 44_580


def test_utc_month_has_whole_days() -> None:
    assert period_minutes(Period(2026, 9), "UTC") == 30 * 1440
    assert period_minutes(Period(2028, 2), "UTC") == 29 * 1440


def test_period_bounds_are_aware_utc_at_local_midnight() -> None:
    start, end = period_bounds(Period(2026, 3), "Europe/Stockholm")
    assert start == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 22, tzinfo=UTC)
    assert start.utcoffset() == timedelta(0)


def test_dst_day_has_23_hours() -> None:
    start, end = day_bounds(Period(2026, 3).days()[28], "Europe/Stockholm")
    assert minutes_between(start, end) == 23 * 60


def test_sample_belongs_to_the_period_of_the_contract_zone() -> None:
    ts = datetime(2026, 9, 30, 22, 30, tzinfo=UTC)
    assert period_of(ts, "Europe/Stockholm") == Period(2026, 10)
    assert period_of(ts, "UTC") == Period(2026, 9)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(NaiveDatetime):
        period_of(datetime(2026, 10, 1), "UTC")


def test_unknown_zone_is_an_error() -> None:
    with pytest.raises(UnknownTimezone, match="Mars/Olympus"):
        period_minutes(Period(2026, 1), "Mars/Olympus")


def test_period_parses_and_prints_as_year_month() -> None:
    assert Period.parse("2026-10") == Period(2026, 10)
    assert str(Period(2026, 1)) == "2026-01"


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "26-10", "2026-10-01", "", "x"])
def test_invalid_period_is_a_domain_error(text: str) -> None:
    with pytest.raises(InvalidPeriod, match="YYYY-MM"):
        Period.parse(text)


def test_next_and_prev_cross_year_boundaries() -> None:
    assert Period(2026, 12).next() == Period(2027, 1)
    assert Period(2027, 1).prev() == Period(2026, 12)
    assert Period(2026, 5).next().prev() == Period(2026, 5)


def test_periods_order_chronologically() -> None:
    assert sorted([Period(2027, 1), Period(2026, 12), Period(2026, 2)]) == [
        Period(2026, 2),
        Period(2026, 12),
        Period(2027, 1),
    ]


def test_quarter_parses_and_lists_its_months() -> None:
    quarter = Quarter.parse("2026-Q3")
    assert str(quarter) == "2026-Q3"
    assert quarter.months() == (Period(2026, 7), Period(2026, 8), Period(2026, 9))
    assert Period(2026, 8).quarter == quarter
    assert Quarter(2026, 1).prev() == Quarter(2025, 4)


def test_invalid_quarter_is_a_domain_error() -> None:
    with pytest.raises(InvalidQuarter):
        Quarter.parse("2026-Q5")


def test_timestamps_accept_rfc3339_with_offset_and_epoch_seconds() -> None:
    expected = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)
    assert parse_timestamp("2026-10-01T02:00:00+02:00") == expected
    assert parse_timestamp("2026-10-01T00:00:00Z") == expected
    assert parse_timestamp(int(expected.timestamp())) == expected
    with pytest.raises(ValueError, match="offset"):
        parse_timestamp("2026-10-01T00:00:00")


@given(periods, zones)
def test_period_bounds_contain_exactly_the_period(period: Period, tz: str) -> None:
    start, end = period_bounds(period, tz)
    assert start < end
    assert period_of(start, tz) == period
    assert period_of(end - timedelta(microseconds=1), tz) == period
    assert period_of(end, tz) == period.next()
    assert period_bounds(period.next(), tz)[0] == end


@given(periods, zones)
def test_days_add_up_to_the_period(period: Period, tz: str) -> None:
    total = sum(minutes_between(*day_bounds(day, tz)) for day in period.days())
    assert total == period_minutes(period, tz)
