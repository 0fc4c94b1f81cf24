"""Billing periods and every conversion between wall-clock time and UTC.

A billing period is a calendar month in the contract's time zone (spec §3.1), so
its length in minutes depends on the zone's DST rules: October 2026 in
Europe/Stockholm has 44,700 minutes. Everything else in viu works in aware UTC
datetimes; this module is the only place that knows about local calendars.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER_RE = re.compile(r"^(\d{4})-Q([1-4])$")


class InvalidPeriod(ValueError):
    """A billing period that is not a "YYYY-MM" month."""


class InvalidQuarter(InvalidPeriod):
    """A review quarter that is not a "YYYY-Qn" quarter."""


class UnknownTimezone(ValueError):
    """A time zone name that is not in the IANA database."""


class NaiveDatetime(ValueError):
    """A datetime without an offset: its instant is ambiguous."""


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``UnknownTimezone`` if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise UnknownTimezone(f"unknown time zone {name!r}: expected an IANA name") from None


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month, independent of any time zone until bounds are asked for."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9999:
            raise InvalidPeriod(f"invalid period {self.year:04d}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str) -> Period:
        """``Period.parse("2026-10")``; rejects anything but a real "YYYY-MM" month."""
        match = _PERIOD_RE.match(text) if isinstance(text, str) else None
        if match is None or not 1 <= int(match[2]) <= 12:
            raise InvalidPeriod(f"invalid period {text!r}: expected YYYY-MM, e.g. 2026-10")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> Period:
        """The following month."""
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def prev(self) -> Period:
        """The preceding month."""
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @property
    def first_day(self) -> date:
        """The first calendar day of the month."""
        return date(self.year, self.month, 1)

    def days(self) -> list[date]:
        """Every calendar day of the month, in order."""
        count = (self.next().first_day - self.first_day).days
        return [self.first_day + timedelta(days=i) for i in range(count)]

    @property
    def quarter(self) -> Quarter:
        """The quarter that contains this month."""
        return Quarter(self.year, (self.month - 1) // 3 + 1)


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter, the unit of the joint review (spec §5)."""

    year: int
    number: int

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 4 or not 1 <= self.year <= 9999:
            raise InvalidQuarter(f"invalid quarter {self.year:04d}-Q{self.number}")

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """``Quarter.parse("2026-Q3")``."""
        match = _QUARTER_RE.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidQuarter(f"invalid quarter {text!r}: expected YYYY-Qn, e.g. 2026-Q3")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.year:04d}-Q{self.number}"

    def months(self) -> tuple[Period, Period, Period]:
        """The three billing periods of the quarter, in order."""
        first = 3 * (self.number - 1) + 1
        return (
            Period(self.year, first),
            Period(self.year, first + 1),
            Period(self.year, first + 2),
        )

    def prev(self) -> Quarter:
        """The preceding quarter."""
        return Quarter(self.year - (self.number == 1), (self.number - 2) % 4 + 1)


def _local_midnight_utc(day: date, tz: str) -> datetime:
    """The first instant of ``day`` in ``tz``, as aware UTC.

    A midnight skipped by a DST jump resolves (fold=0) to the first instant
    after the jump, which is when that local day really starts.
    """
    local = datetime(day.year, day.month, day.day, tzinfo=zone(tz))
    return local.astimezone(UTC)


def period_bounds(period: Period, tz: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of ``period`` in zone ``tz``, as aware UTC datetimes."""
    return (
        _local_midnight_utc(period.first_day, tz),
        _local_midnight_utc(period.next().first_day, tz),
    )


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of calendar ``day`` in zone ``tz``, as aware UTC datetimes."""
    return _local_midnight_utc(day, tz), _local_midnight_utc(day + timedelta(days=1), tz)


def minutes_between(start: datetime, end: datetime) -> int:
    """Whole minutes of real (UTC) time from ``start`` to ``end``."""
    return int((end - start).total_seconds()) // 60


def period_minutes(period: Period, tz: str) -> int:
    """Minutes in ``period`` in ``tz``: real elapsed time, so DST months differ."""
    return minutes_between(*period_bounds(period, tz))


def to_utc(ts: datetime) -> datetime:
    """``ts`` as aware UTC; a naive datetime is refused rather than guessed."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise NaiveDatetime(f"timestamp {ts.isoformat()} has no UTC offset")
    return ts.astimezone(UTC)


def period_of(ts: datetime, tz: str) -> Period:
    """The billing period in zone ``tz`` that contains instant ``ts``."""
    local = to_utc(ts).astimezone(zone(tz))
    return Period(local.year, local.month)


def local_date(ts: datetime, tz: str) -> date:
    """The calendar day in zone ``tz`` that contains instant ``ts``."""
    return to_utc(ts).astimezone(zone(tz)).date()


def parse_timestamp(value: str | int | float) -> datetime:
    """A sample's ``ts`` (RFC 3339 with offset, or epoch seconds) as aware UTC."""
    if isinstance(value, bool):
        raise ValueError("timestamp must be an RFC 3339 string or epoch seconds")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"invalid timestamp {value!r}: out of range") from None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"invalid timestamp {value!r}: expected RFC 3339 with offset") from None
    return to_utc(parsed)
