"""Payload bytes → validated samples plus rejects, without touching the database.

The formats live in ``services.ingest.formats``; this module keeps the names
the rest of viu imports (the message and result types, JSON's helpers, and
``decode``, which picks the format by topic).
"""

from __future__ import annotations

from services.ingest.formats import decode
from services.ingest.formats.base import (
    Command,
    Decoded,
    Message,
    Reject,
    StateEvent,
    sample_payload,
    storable,
)
from services.ingest.formats.json import HTTP_TOPIC, KEPT_OF_OVERSIZE, http_topic, topic_device

__all__ = [
    "HTTP_TOPIC",
    "KEPT_OF_OVERSIZE",
    "Command",
    "Decoded",
    "Message",
    "Reject",
    "StateEvent",
    "decode",
    "http_topic",
    "sample_payload",
    "storable",
    "topic_device",
]
