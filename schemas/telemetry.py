"""Telemetry shapes (spec §1.2): one definition for MQTT, HTTP and dead-letter replay.

Numbers arrive as exact ``Decimal`` (the decoder parses JSON floats that way)
and stay exact; a float never enters the path, so a stored value is the value
the device sent.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

DEVICE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_BATCH = 10_000
CAUSES = ("unplanned", "planned", "customer", "external")
Cause = Literal["unplanned", "planned", "customer", "external"]

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Bounds keep a broken device clock from creating partitions for year 30000.
TS_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2100, 1, 1, tzinfo=UTC)
# PostgreSQL numeric is exact but a value like 1e-100000 would make every retry
# of its batch fail; such inputs are rejected at the door instead.
_MAX_INT_DIGITS = 20
_MAX_FRACTION_DIGITS = 30


def _is_number(v: object) -> bool:
    return isinstance(v, int | Decimal) and not isinstance(v, bool)


def parse_ts(v: object) -> datetime:
    """RFC 3339 with an offset, or epoch seconds → aware UTC datetime."""
    if isinstance(v, datetime):
        ts = v
    elif _is_number(v):
        d = Decimal(v)  # type: ignore[arg-type]
        if not d.is_finite() or abs(d) > 10**11:
            raise ValueError("epoch seconds out of range")
        whole = int(d)
        ts = _EPOCH + timedelta(seconds=whole, microseconds=int((d - whole) * 1_000_000))
    elif isinstance(v, str) and _RFC3339.match(v):
        ts = datetime.fromisoformat(v.upper().replace(" ", "T").replace("Z", "+00:00"))
    else:
        raise ValueError("must be an RFC 3339 timestamp with offset, or epoch seconds")
    if ts.tzinfo is None:
        raise ValueError("must carry a UTC offset")
    ts = ts.astimezone(UTC)
    if not TS_MIN <= ts < TS_MAX:
        raise ValueError(f"must lie between {TS_MIN.year} and {TS_MAX.year}")
    return ts


def exact_number(v: object) -> Decimal:
    """A JSON number (never a string, bool or float) of a size PostgreSQL stores exactly."""
    if not _is_number(v):
        raise ValueError("must be a JSON number")
    d = Decimal(v)  # type: ignore[arg-type]
    if not d.is_finite():
        raise ValueError("must be finite")
    _sign, digits, exponent = d.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) + exponent > _MAX_INT_DIGITS or -exponent > _MAX_FRACTION_DIGITS:
        raise ValueError("has too many digits")
    return d


def strict_int(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("must be a JSON integer")
    return v


Number = Annotated[Decimal, BeforeValidator(exact_number)]
Timestamp = Annotated[datetime, BeforeValidator(parse_ts)]


class Sample(BaseModel):
    """One interval of one device, exactly as §1.2 defines it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: Timestamp
    interval_s: Annotated[int, BeforeValidator(strict_int), Field(ge=1, le=86_400)]
    uptime_min: Annotated[Number, Field(ge=0)]
    quality_min: Annotated[Number, Field(ge=0)]
    throughput: Annotated[Number, Field(ge=0)]
    downtime_cause: Cause = "unplanned"
    seq: Annotated[int, BeforeValidator(strict_int), Field(ge=-(2**63), lt=2**63)] | None = None
    device_id: str | None = None

    @model_validator(mode="after")
    def _ranges(self) -> Sample:
        with localcontext() as ctx:  # exact: inputs are bounded to 50 digits
            ctx.prec = 100
            too_long = self.uptime_min * 60 > self.interval_s
        if too_long:
            raise ValueError("uptime_min must be ≤ interval_s/60")
        if self.quality_min > self.uptime_min:
            raise ValueError("quality_min must be ≤ uptime_min")
        return self

    def content(self) -> tuple[Any, ...]:
        """What makes two samples of the same identity identical (a duplicate)."""
        return (
            self.interval_s,
            self.uptime_min,
            self.quality_min,
            self.throughput,
            self.downtime_cause,
            self.seq,
        )


class Annotation(BaseModel):
    """A downtime re-classification of ``[from, to)`` (spec §1.3)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    device_id: Annotated[str, Field(pattern=DEVICE_ID.pattern)]
    from_ts: Annotated[Timestamp, Field(alias="from")]
    to_ts: Annotated[Timestamp, Field(alias="to")]
    cause: Cause
    note: Annotated[str, Field(max_length=2000)] = ""
    author: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _order(self) -> Annotation:
        if self.from_ts >= self.to_ts:
            raise ValueError("'from' must be before 'to'")
        return self
