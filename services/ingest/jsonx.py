"""JSON out without floats: a ``Decimal`` is written as the exact number it holds.

The standard encoder either refuses ``Decimal`` or goes through ``float``;
telemetry values (and the dead-letter copy of a rejected sample) must be
byte-for-byte the numbers the device sent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec


def dumps(value: Any) -> str:
    """Serialise dicts, lists, strings, bools, None, ints, Decimals and aware datetimes."""
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, datetime):
        return json.dumps(iso(value))
    return json.dumps(value)


def _number(d: Decimal) -> str:
    if not d.is_finite():
        raise ValueError(f"cannot serialise {d} as JSON")
    return str(d)


def iso(ts: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def loads(raw: bytes | str) -> Any:
    """Parse JSON keeping every fraction exact; NaN and Infinity are refused.

    Exactly ``json.loads(raw, parse_float=Decimal, parse_constant=...)``,
    with one decoder made once instead of one per call. A UTF-8 object (every
    device's payload) is parsed by msgspec first, in a quarter of the time;
    whatever msgspec refuses goes to the standard parser, which decides and
    says why (``test_decode.py`` checks that the two agree on what both accept).
    """
    if isinstance(raw, bytes) and raw[:1] == b"{":
        try:
            return _FAST.decode(raw)
        except Exception:  # msgspec.DecodeError, RecursionError: json decides, and says why
            pass
    return standard_loads(raw)


def standard_loads(raw: bytes | str) -> Any:
    """``loads`` by the standard library's parser alone."""
    if isinstance(raw, str):
        if raw.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", raw, 0)
        text = raw
    else:
        # An object in UTF-8 (every device's payload) is what detect_encoding
        # would find; anything else (a BOM, UTF-16/32) goes through it.
        utf8 = raw[:1] == b"{" and b"\x00" not in raw[:4]
        text = raw.decode("utf-8" if utf8 else json.detect_encoding(raw), "surrogatepass")
    return _DECODER.decode(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constant)
# msgspec hands float_hook the number's own text: Decimal of it is what
# parse_float=Decimal makes. It refuses NaN, Infinity, lone surrogates and
# control characters in strings, all of which then go to the standard parser.
_FAST = msgspec.json.Decoder(float_hook=Decimal)
