"""viu's own JSON format (spec §1.1, §1.2): ``{prefix}/{device_id}/telemetry``, one sample
object or ``{"samples": [...]}``.

Shared by MQTT, HTTP and dead-letter replay, so all three accept and refuse
exactly the same inputs. It takes every topic no other format claims (the
HTTP pseudo-topic included).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import msgspec
from pydantic import ValidationError

from schemas.telemetry import (
    DEVICE_ID,
    MAX_BATCH,
    MAX_PAYLOAD_BYTES,
    Sample,
    fast_sample,
    fast_values,
)
from schemas.vocabulary import DEFAULT_CAUSE
from services.config import Settings
from services.errors import Invalid
from services.ingest import jsonx
from services.ingest.formats.base import Decoded, Message, Reject, whole

HTTP_TOPIC = "http:/v1/telemetry/"
KEPT_OF_OVERSIZE = 64 * 1024  # bytes of an oversized payload kept in its dead letter


def http_topic(device_id: str) -> str:
    return HTTP_TOPIC + device_id


def topic_device(topic: str) -> str:
    """The device id of ``{prefix}/{device_id}/telemetry`` or of the HTTP pseudo-topic.

    Remembered per topic of ordinary length (a device sends on the same one
    every time); a refused topic raises ``Invalid`` each time, as exceptions
    are not kept.
    """
    return _remembered_device(topic) if len(topic) <= REMEMBERED_TOPIC_CHARS else _device(topic)


def _device(topic: str) -> str:
    if topic.startswith(HTTP_TOPIC):
        device_id = topic[len(HTTP_TOPIC) :]
    else:
        parts = topic.split("/")
        if len(parts) < 3 or parts[-1] != "telemetry":
            raise Invalid(f"topic '{topic}' is not {{prefix}}/{{device_id}}/telemetry")
        device_id = parts[-2]
    if not DEVICE_ID.match(device_id):
        raise Invalid(f"device id '{device_id[:80]}' does not match {DEVICE_ID.pattern}")
    return device_id


REMEMBERED_TOPIC_CHARS = 256
_remembered_device = functools.lru_cache(maxsize=1 << 16)(_device)


def decode(message: Message) -> Decoded:
    """Validate one payload; every problem becomes a reject, never an exception.

    A bulkhead: whatever one payload does to the parser or the validators
    (nesting that exhausts the recursion limit, a value no validator
    foresaw), that payload is dead-lettered and the next one is decoded.
    """
    try:
        return _decode(message)
    except Exception as exc:  # the bulkhead: no payload may stop ingest
        device_id = None
        with contextlib.suppress(Exception):
            device_id = topic_device(message.topic)
        return whole(message, device_id, f"cannot be decoded: {type(exc).__name__}: {exc}")


def _decode(message: Message) -> Decoded:
    try:
        device_id = topic_device(message.topic)
    except Invalid as exc:
        return whole(message, None, exc.detail)
    if len(message.payload) > MAX_PAYLOAD_BYTES:
        return _oversize(message, device_id)
    return _plainly_valid(message, device_id) or _general(message, device_id)


def _general(message: Message, device_id: str) -> Decoded:
    """Any payload: parsed to Python objects, each sample validated on its own."""
    try:
        items, is_batch = _items(jsonx.loads(message.payload))
    except RecursionError:
        return whole(message, device_id, "bad JSON: nested too deeply")
    except (ValueError, Invalid) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return whole(message, device_id, reason_of(exc))
    if not is_batch:  # one sample: accepted or refused whole
        try:
            return Decoded(message, device_id, [_sample(items[0], device_id)])
        except (ValidationError, Invalid) as exc:
            return whole(message, device_id, reason_of(exc))
    out = Decoded(message, device_id, batch=True)
    for index, item in enumerate(items):
        try:
            out.samples.append(_sample(item, device_id))
        except (ValidationError, Invalid) as exc:
            reason = f"samples[{index}]: {reason_of(exc)}"
            try:
                raw = jsonx.dumps(item).encode()
            except (RecursionError, ValueError):  # too deep to copy: keep the payload whole
                return whole(message, device_id, reason)
            out.rejects.append(Reject(message.topic, device_id, raw, reason))
    return out


class _Item(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A sample object as msgspec reads it: §1.2's keys, no other, the values untyped.

    Untyped (``Any``) so that the JSON types reach ``fast_values`` as they
    are (a number as an int or, through ``float_hook``, an exact Decimal; a
    string as a string) and are judged there exactly as in a parsed dict.
    """

    ts: Any
    interval_s: Any
    uptime_min: Any
    quality_min: Any
    throughput: Any
    downtime_cause: Any = msgspec.UNSET
    seq: Any = msgspec.UNSET
    device_id: Any = msgspec.UNSET


class _Batch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    samples: list[_Item]


_ONE = msgspec.json.Decoder(_Item, float_hook=Decimal)
_MANY = msgspec.json.Decoder(_Batch, float_hook=Decimal)


def _plainly_valid(message: Message, device_id: str) -> Decoded | None:
    """The usual payload, every sample of it plainly valid, in one pass of msgspec; else None.

    The payload is read straight into ``_Item`` objects instead of dicts
    (no per-key lookups, no check for unknown keys: msgspec refuses them).
    Anything else (a key that is not §1.2's, a missing one, a value
    ``fast_values`` does not take, a batch over ``MAX_BATCH``, JSON msgspec
    refuses) returns None, and the general path decides and says why, as
    before: this path accepts only what it would accept, with equal samples
    (``tests/ingest/test_fast_sample.py``).
    """
    payload = message.payload
    if payload[:1] != b"{":
        return None
    batch = False
    try:
        items: list[_Item] = [_ONE.decode(payload)]
    except Exception:  # msgspec.ValidationError, DecodeError, RecursionError: not this path's
        try:
            items = _MANY.decode(payload).samples
        except Exception:
            return None
        if len(items) > MAX_BATCH:
            return None
        batch = True
    samples = []
    for item in items:
        fields = {"ts", "interval_s", "uptime_min", "quality_min", "throughput"}
        cause, seq, said = item.downtime_cause, item.seq, item.device_id
        if cause is msgspec.UNSET:
            cause = DEFAULT_CAUSE
        else:
            fields.add("downtime_cause")
        if seq is msgspec.UNSET:
            seq = None
        else:
            fields.add("seq")
        if said is msgspec.UNSET:
            said = None
        else:
            fields.add("device_id")
        sample = fast_values(
            item.ts,
            item.interval_s,
            item.uptime_min,
            item.quality_min,
            item.throughput,
            cause,
            seq,
            said,
            fields,
        )
        if sample is None or (said is not None and said != device_id):
            return None
        samples.append(sample)
    return Decoded(message, device_id, samples, batch=batch)


def _oversize(message: Message, device_id: str) -> Decoded:
    """Too large to parse safely: one dead letter keeping the payload's first bytes."""
    size = len(message.payload)
    reason = (
        f"payload of {size} bytes is over the limit of {MAX_PAYLOAD_BYTES} bytes "
        f"(its first {KEPT_OF_OVERSIZE} bytes are kept)"
    )
    out = Decoded(message, device_id)
    kept = message.payload[:KEPT_OF_OVERSIZE]
    out.rejects.append(Reject(message.topic, device_id, kept, reason))
    return out


def _items(doc: Any) -> tuple[list[Any], bool]:
    """The items of a payload and whether it was a batch."""
    if not isinstance(doc, dict):
        raise Invalid('payload must be a JSON object: one sample or {"samples": [...]}')
    if "samples" not in doc:
        return [doc], False
    if set(doc) != {"samples"} or not isinstance(doc["samples"], list):
        raise Invalid('a batch is exactly {"samples": [...]}')
    if len(doc["samples"]) > MAX_BATCH:
        raise Invalid(f"a batch holds at most {MAX_BATCH} samples, got {len(doc['samples'])}")
    return list(doc["samples"]), True


def _sample(item: Any, device_id: str) -> Sample:
    if not isinstance(item, dict):
        raise Invalid("a sample must be a JSON object")
    sample = fast_sample(item) or Sample.model_validate(item)
    if sample.device_id is not None and sample.device_id != device_id:
        raise Invalid(f"device/topic mismatch: sample says '{sample.device_id[:80]}'")
    return sample


def reason_of(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "sample"
            parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
        return "; ".join(parts)
    if isinstance(exc, Invalid):
        return exc.detail
    if isinstance(exc, UnicodeDecodeError):
        return "payload is not UTF-8"
    return f"bad JSON: {exc}"


class JsonFormat:
    """The format of ``{prefix}/+/telemetry`` and of ``POST /v1/telemetry/{device_id}``."""

    name = "json"

    def topics(self, settings: Settings) -> list[str]:
        return [f"{settings.mqtt_topic_prefix}/+/telemetry"]

    def accepts(self, topic: str) -> bool:
        return True  # the fallback: whatever no other format claims

    def decode(self, message: Message, *, live: bool = True) -> Decoded:
        return decode(message)

    def weight(self, payload: bytes) -> int:
        return max(1, payload.count(b'"ts"'))

    def forget(self, messages: Iterable[Message]) -> None:
        """Nothing is kept: a JSON decode depends on the payload alone."""


JSON = JsonFormat()
