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
from typing import Any

from pydantic import ValidationError

from schemas.telemetry import DEVICE_ID, MAX_BATCH, MAX_PAYLOAD_BYTES, Sample, fast_sample
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
    try:
        items, is_batch = _items(jsonx.loads(message.payload))
    except RecursionError:
        return whole(message, device_id, "bad JSON: nested too deeply")
    except (ValueError, Invalid) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return whole(message, device_id, reason_of(exc))
    out = Decoded(message, device_id, batch=is_batch)
    for index, item in enumerate(items):
        try:
            out.samples.append(_sample(item, device_id))
        except (ValidationError, Invalid) as exc:
            if not is_batch:
                return whole(message, device_id, reason_of(exc))
            reason = f"samples[{index}]: {reason_of(exc)}"
            try:
                raw = jsonx.dumps(item).encode()
            except (RecursionError, ValueError):  # too deep to copy: keep the payload whole
                return whole(message, device_id, reason)
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
