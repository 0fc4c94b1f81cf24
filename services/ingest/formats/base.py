"""What every payload format shares: the message as it arrived, and what decoding made of it.

A format (``services.ingest.formats``) turns one ``Message`` into a
``Decoded``: samples to store, rejects to dead-letter, and for a format that
carries connection state (Sparkplug B) the state changes to record and the
commands to send back once they are committed. A reject carries what the
dead-letter store needs: the raw payload (or, for one bad item of a batch,
that item alone) and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from schemas.telemetry import Sample
from services.config import Settings
from services.ingest import jsonx


class Message(NamedTuple):
    """One payload as it arrived: MQTT topic (or the HTTP pseudo-topic) and raw bytes.

    A named tuple, not a frozen dataclass: one is made per MQTT message on the
    receive thread, and a tuple is built in a third of the time.
    """

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


@dataclass(frozen=True)
class StateEvent:
    """A connection-state event of a Sparkplug edge node or device (``services.ingest.connectivity``).

    ``kind``: NBIRTH, NDEATH, DBIRTH, DDEATH, NDEATH_STALE (a death whose
    bdSeq is not the live session's: ignored) or REBIRTH_REQUEST (viu asked
    the node to send its births again; ``reason`` says why).
    """

    group_id: str
    edge_node: str
    device_id: str | None  # None: the edge node itself
    kind: str
    ts: datetime
    seq: int | None = None
    bd_seq: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Command:
    """A message to publish (QoS 0) once the batch that asked for it is committed."""

    topic: str
    payload: bytes


@dataclass
class Decoded:
    message: Message
    device_id: str | None
    samples: list[Sample] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    batch: bool = False  # a {"samples": [...]} payload (else one sample)
    events: list[StateEvent] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    # ``samples`` as COPY text rows, formatted ahead of the write by the MQTT
    # decoder thread (``writer.prepare``); None whenever ``samples`` changed since.
    staged: str | None = None

    @property
    def received(self) -> int:
        return len(self.samples) + sum(r.weight for r in self.rejects)

    def reject_all(self, reason: str) -> None:
        """The whole payload becomes one dead letter (e.g. its device is unknown)."""
        weight = self.received
        self.samples = []
        self.staged = None
        self.rejects = [
            Reject(self.message.topic, self.device_id, self.message.payload, reason, weight)
        ]


class Format(Protocol):
    """One payload format: which topics it takes, and how a message becomes samples."""

    name: str

    def topics(self, settings: Settings) -> list[str]:
        """The MQTT topic filters to subscribe to (without a ``$share/...`` prefix)."""
        ...

    def accepts(self, topic: str) -> bool:
        """Whether a message on ``topic`` is this format's."""
        ...

    def decode(self, message: Message, *, live: bool = True) -> Decoded:
        """Samples and rejects of one message; never raises.

        ``live`` is False for a dead letter replayed: a stateful format then
        reads its state but neither changes it nor asks anything of the device.
        """
        ...

    def weight(self, payload: bytes) -> int:
        """A cheap upper-bound guess of the samples in a payload, without parsing it."""
        ...

    def forget(self, messages: Iterable[Message]) -> None:
        """The messages are acknowledged: drop what was kept for retrying their decode."""
        ...


def whole(message: Message, device_id: str | None, reason: str) -> Decoded:
    """The whole message as one dead letter."""
    out = Decoded(message, device_id)
    out.rejects.append(Reject(message.topic, device_id, message.payload, reason))
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
