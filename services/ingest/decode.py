"""Payload bytes → validated samples plus rejects, without touching the database.

Shared by MQTT, HTTP and dead-letter replay, so all three accept and refuse
exactly the same inputs. A reject carries what the dead-letter store needs:
the raw payload (or, for one bad item of a batch, that item's JSON) and why.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.telemetry import DEVICE_ID, MAX_BATCH, MAX_PAYLOAD_BYTES, Sample, fast_sample
from services.errors import Invalid
from services.ingest import jsonx

HTTP_TOPIC = "http:/v1/telemetry/"
KEPT_OF_OVERSIZE = 64 * 1024  # bytes of an oversized payload kept in its dead letter


@dataclass(frozen=True)
class Message:
    """One payload as it arrived: MQTT topic (or the HTTP pseudo-topic) and raw bytes."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True)
class Reject:
    topic: str
    device_id: str | None
    payload: bytes
    reason: str
    weight: int = 1  # samples this reject stands for (counted as received and dead-lettered)

    def __post_init__(self) -> None:
        # A reason quotes the input (a device id, a key): it must stay storable
        # in PostgreSQL text and encodable as UTF-8 JSON whatever the input held.
        object.__setattr__(self, "reason", storable(self.reason))


@dataclass
class Decoded:
    message: Message
    device_id: str | None
    samples: list[Sample] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    batch: bool = False  # a {"samples": [...]} payload (else one sample)

    @property
    def received(self) -> int:
        return len(self.samples) + sum(r.weight for r in self.rejects)

    def reject_all(self, reason: str) -> None:
        """The whole payload becomes one dead letter (e.g. its device is unknown)."""
        weight = self.received
        self.samples = []
        self.rejects = [
            Reject(self.message.topic, self.device_id, self.message.payload, reason, weight)
        ]


def http_topic(device_id: str) -> str:
    return HTTP_TOPIC + device_id


def topic_device(topic: str) -> str:
    """The device id of ``{prefix}/{device_id}/telemetry`` or of the HTTP pseudo-topic."""
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
        return _whole(message, device_id, f"cannot be decoded: {type(exc).__name__}: {exc}")


def _decode(message: Message) -> Decoded:
    try:
        device_id = topic_device(message.topic)
    except Invalid as exc:
        return _whole(message, None, exc.detail)
    if len(message.payload) > MAX_PAYLOAD_BYTES:
        return _oversize(message, device_id)
    try:
        items, is_batch = _items(jsonx.loads(message.payload))
    except RecursionError:
        return _whole(message, device_id, "bad JSON: nested too deeply")
    except (ValueError, Invalid) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return _whole(message, device_id, _reason(exc))
    out = Decoded(message, device_id, batch=is_batch)
    for index, item in enumerate(items):
        try:
            out.samples.append(_sample(item, device_id))
        except (ValidationError, Invalid) as exc:
            if not is_batch:
                return _whole(message, device_id, _reason(exc))
            reason = f"samples[{index}]: {_reason(exc)}"
            try:
                raw = jsonx.dumps(item).encode()
            except (RecursionError, ValueError):  # too deep to copy: keep the payload whole
                return _whole(message, device_id, reason)
            out.rejects.append(Reject(message.topic, device_id, raw, reason))
    return out


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


def sample_payload(sample: Sample) -> bytes:
    """A decoded sample as a payload of its own (for its dead letter; replayable as is)."""
    fields = sample.model_fields_set or set(Sample.model_fields)
    values = {k: getattr(sample, k) for k in Sample.model_fields if k in fields}
    return jsonx.dumps(values).encode()


def storable(text: str) -> str:
    """``text`` as PostgreSQL text and UTF-8 can hold it: NUL and lone surrogates escaped."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode()
    return text


def _whole(message: Message, device_id: str | None, reason: str) -> Decoded:
    out = Decoded(message, device_id)
    out.rejects.append(Reject(message.topic, device_id, message.payload, reason))
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


def _reason(exc: Exception) -> str:
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
