"""Telemetry shapes (spec §1.2): one definition for MQTT, HTTP and dead-letter replay.

Numbers arrive as exact ``Decimal`` (the decoder parses JSON floats that way)
and stay exact; a float never enters the path, so a stored value is the value
the device sent.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, localcontext
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from schemas.vocabulary import DEFAULT_CAUSE, DOWNTIME_CAUSES, DowntimeCause

DEVICE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_BATCH = 10_000
# A payload is parsed whole in memory: 16 MiB holds any batch of MAX_BATCH
# samples many times over, and bounds what one message can make viu allocate.
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024

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
    downtime_cause: DowntimeCause = DEFAULT_CAUSE
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


_FIELDS = frozenset(
    (
        "ts",
        "interval_s",
        "uptime_min",
        "quality_min",
        "throughput",
        "downtime_cause",
        "seq",
        "device_id",
    )
)
_EXACT = Context(prec=100)  # uptime_min * 60 of inputs bounded to 50 digits is exact here
_SIXTY = Decimal(60)


def fast_sample(item: dict[str, Any]) -> Sample | None:
    """``Sample.model_validate(item)`` for plainly valid input, without pydantic's machinery.

    Returns None whenever the input is anything but an ordinary valid sample
    (a missing or unknown key, a value of another type, out of range, …):
    the caller then validates it with pydantic, which gives the same result
    or the usual error. It uses the same bounds, so an accepted sample is
    equal, field by field, to the one pydantic builds. The common shapes
    (epoch-second integers, short decimals) take shortcuts that are exact
    for them; anything else goes through ``parse_ts`` and ``exact_number``.
    """
    if not item.keys() <= _FIELDS:
        return None
    try:
        ts, interval_s = item["ts"], item["interval_s"]
        uptime, quality, throughput = item["uptime_min"], item["quality_min"], item["throughput"]
    except KeyError:
        return None
    return fast_values(
        ts,
        interval_s,
        uptime,
        quality,
        throughput,
        item.get("downtime_cause", DEFAULT_CAUSE),
        item.get("seq"),
        item.get("device_id"),
        set(item),
    )


def fast_values(
    ts: object,
    interval_s: object,
    uptime_min: object,
    quality_min: object,
    throughput: object,
    cause: object,
    seq: object,
    device_id: object,
    fields_set: set[str],
) -> Sample | None:
    """``fast_sample`` of a sample's values as parsed (``fields_set``: the keys it had), or None."""
    try:
        ts = _from_epoch(ts) if type(ts) is int and 0 <= ts < _MAX_EPOCH else parse_ts(ts)
        uptime = _number(uptime_min)
        quality = _number(quality_min)
        output = _number(throughput)
    except ValueError:
        return None
    if (
        type(interval_s) is not int
        or not 1 <= interval_s <= 86_400
        or uptime < _ZERO
        or quality < _ZERO
        or output < _ZERO
        or type(cause) is not str
        or cause not in DOWNTIME_CAUSES
        or (seq is not None and (type(seq) is not int or not -(2**63) <= seq < 2**63))
        or (device_id is not None and type(device_id) is not str)
        or quality > uptime
        or _EXACT.multiply(uptime, _SIXTY) > interval_s
    ):
        return None
    return _construct(
        {
            "ts": ts,
            "interval_s": interval_s,
            "uptime_min": uptime,
            "quality_min": quality,
            "throughput": output,
            "downtime_cause": cause,
            "seq": seq,
            "device_id": device_id,
        },
        fields_set,
    )


def _number(v: object) -> Decimal:
    """``exact_number``, with shortcuts for the usual integers and short decimals.

    A finite Decimal whose plain text has at most 20 characters and no
    exponent has at most 20 integer and 20 fraction digits, within both bounds.
    """
    if type(v) is Decimal:
        if v.is_finite() and len(text := str(v)) <= 20 and "E" not in text:
            return v
    elif type(v) is int and -_INT_BOUND < v < _INT_BOUND:
        return Decimal(v)
    return exact_number(v)


_MAX_EPOCH = int((TS_MAX - _EPOCH).total_seconds())


def _epoch_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# Devices report on the same minute boundaries, so an epoch second recurs in
# every device's message: its datetime is made once (and shared; datetimes
# are immutable). Keyed by the int, bounded like the other per-value caches.
_from_epoch = functools.lru_cache(maxsize=1 << 14)(_epoch_datetime)
_INT_BOUND = 10**_MAX_INT_DIGITS
_ZERO = Decimal(0)


def _construct(values: dict[str, Any], fields_set: set[str]) -> Sample:
    """What ``Sample.model_construct`` does for a model without aliases, extras or
    private attributes, in a quarter of its time (it loops over every field's options)."""
    if not _BYPASS:  # pragma: no cover - depends on the pydantic version
        return Sample.model_construct(fields_set, **values)
    m = Sample.__new__(Sample)
    _set(m, "__dict__", values)
    _set(m, "__pydantic_fields_set__", fields_set)
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


_set = object.__setattr__
_BYPASS = True


def _bypass_builds_what_pydantic_builds() -> bool:
    """Checked once at import: a pydantic release that needs more falls back to model_construct."""
    values: dict[str, Any] = {
        "ts": TS_MIN,
        "interval_s": 60,
        "uptime_min": Decimal(1),
        "quality_min": Decimal(1),
        "throughput": Decimal(0),
        "downtime_cause": "planned",
        "seq": None,
        "device_id": None,
    }
    ours = _construct(dict(values), set(values))
    theirs = Sample.model_construct(set(values), **values)
    attrs = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
    return ours == theirs and all(getattr(ours, a) == getattr(theirs, a) for a in attrs)


_BYPASS = _bypass_builds_what_pydantic_builds()


class Annotation(BaseModel):
    """A downtime re-classification of ``[from, to)`` (spec §1.3)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    device_id: Annotated[str, Field(pattern=DEVICE_ID.pattern)]
    from_ts: Annotated[Timestamp, Field(alias="from")]
    to_ts: Annotated[Timestamp, Field(alias="to")]
    cause: DowntimeCause
    note: Annotated[str, Field(max_length=2000)] = ""
    author: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _order(self) -> Annotation:
        if self.from_ts >= self.to_ts:
            raise ValueError("'from' must be before 'to'")
        return self
