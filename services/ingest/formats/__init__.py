"""Payload formats: the seam between what arrives on a topic and the samples viu stores.

A format (``base.Format``) names the MQTT topic filters it subscribes to
and turns one message into samples, rejects (dead letters with a reason)
and, for a format with connection state, state events and commands. The
ingester subscribes to every format's topics; a message goes to the first
format that accepts its topic, and viu's JSON takes the rest (HTTP too).

Adding a format: a module with an object satisfying ``base.Format``, listed
in ``FORMATS`` before JSON, and its tests in ``tests/ingest``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from services.config import Settings
from services.ingest.formats.base import Decoded, Format, Message
from services.ingest.formats.json import JSON, REMEMBERED_TOPIC_CHARS
from services.ingest.formats.sparkplug import SPARKPLUG

FORMATS: tuple[Format, ...] = (SPARKPLUG, JSON)  # JSON last: it takes whatever is left


def format_of(topic: str) -> Format:
    """The format of a topic; remembered, as a device sends on the same topic every time.

    Only for topics of ordinary length: a topic may be 64 kB long, and a
    publisher sending many distinct long ones must not fill the memory.
    """
    return _remembered_format(topic) if len(topic) <= REMEMBERED_TOPIC_CHARS else _format(topic)


def _format(topic: str) -> Format:
    return next(f for f in FORMATS if f.accepts(topic))


_remembered_format = functools.lru_cache(maxsize=1 << 14)(_format)


def decode(message: Message, *, live: bool = True) -> Decoded:
    """Samples and rejects of one message, by the format of its topic; never raises."""
    return format_of(message.topic).decode(message, live=live)


def weight(message: Message) -> int:
    """A cheap upper-bound guess of the samples in a message (for the buffer's bound)."""
    return format_of(message.topic).weight(message.payload)


def by_format(messages: Iterable[Message]) -> dict[str, list[Message]]:
    """Messages per format name (the ingester groups a batch before its commit, ``forget_grouped``)."""
    grouped: dict[str, list[Message]] = {}
    for m in messages:
        grouped.setdefault(format_of(m.topic).name, []).append(m)
    return grouped


def forget_grouped(grouped: dict[str, list[Message]]) -> None:
    """Acknowledged messages (``by_format``): each format drops what it kept for retrying their decode."""
    for f in FORMATS:
        f.forget(grouped.get(f.name, []))


def topic_filters(settings: Settings) -> list[str]:
    """Every format's topic filters, without a shared-subscription prefix."""
    return [t for f in FORMATS for t in f.topics(settings)]
