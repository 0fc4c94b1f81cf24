"""Fault injection that counts exactly what it sent, so the ingester's counters can be checked."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, fields
from random import Random
from typing import Any, Literal

from services.ingest import jsonx
from services.simulator.generator import SimSample

# ---------------------------------------------------------------- fault injection


@dataclass(frozen=True)
class Faults:
    """Chances per generated sample, and the largest device clock skew in seconds."""

    duplicates: float = 0.0
    out_of_order: float = 0.0
    late: float = 0.0
    malformed: float = 0.0
    unknown_devices: float = 0.0
    clock_skew_s: int = 0


@dataclass
class Sent:
    """Exactly what went out, by kind (the summary printed at the end)."""

    samples: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    late: int = 0
    malformed: int = 0
    unknown_devices: int = 0
    clock_skewed: int = 0

    def counts(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}

    def expected_ingest(self) -> dict[str, int]:
        """The ingester's counter deltas these messages cause, if the samples were new."""
        return {
            "stored": self.samples,
            "duplicates": self.duplicates,
            "dead_lettered": self.malformed + self.unknown_devices,
        }


@dataclass(frozen=True)
class Outgoing:
    device_id: str
    payload: bytes
    kind: Literal["sample", "duplicate", "malformed", "unknown_device"]


MALFORMED: tuple[Callable[[dict[str, Any]], bytes], ...] = (
    lambda b: jsonx.dumps(b).encode()[:-7],  # truncated JSON
    lambda b: jsonx.dumps(b | {"uptime_min": b["interval_s"] / 60 + 1}).encode(),
    lambda b: jsonx.dumps(b | {"quality_min": b["uptime_min"] + 1}).encode(),
    lambda b: jsonx.dumps(b | {"throughput": -1}).encode(),
    lambda b: jsonx.dumps({k: v for k, v in b.items() if k != "ts"}).encode(),
    lambda b: b"\xff\xfe not utf-8",
)
"""Each is refused by the decoder on its own: one dead letter per malformed message."""


class FaultInjector:
    """Turns the sample stream into messages, injecting faults; pure and seeded."""

    def __init__(self, faults: Faults, seed: int | str, avoid: Collection[str] = ()) -> None:
        self.faults = faults
        self.seed = seed
        self.rng = Random(f"{seed}/faults")
        self.sent = Sent()
        self._held: dict[str, list[Outgoing]] = {}
        self._late: list[Outgoing] = []
        self._skew: dict[str, int] = {}
        self._ghosts = [g for g in (f"ghost-{n:02d}" for n in range(1, 40)) if g not in avoid]

    def skew(self, device_id: str) -> int:
        """A device clock's constant offset, drawn once per device."""
        if device_id not in self._skew:
            bound = self.faults.clock_skew_s
            rng = Random(f"{self.seed}/{device_id}/clock")
            self._skew[device_id] = rng.randint(-bound, bound) if bound else 0
        return self._skew[device_id]

    def feed(self, s: SimSample) -> list[Outgoing]:
        """Messages to send now for one generated sample (held ones may come later)."""
        f = self.faults
        roll, dup = self.rng.random(), self.rng.random() < f.duplicates
        item = self._encode(s, dup)
        held = self._held.pop(s.device_id, None)
        out: list[Outgoing] = []
        if roll < f.late:
            self._late += item
            self.sent.late += 1
        elif roll < f.late + f.out_of_order and held is None:
            self._held[s.device_id] = item
            self.sent.out_of_order += 1
        else:
            out += item
        out += held or []  # a held sample goes after a later one of its device
        return out + self._extras(s)

    def finish(self) -> list[Outgoing]:
        """What is still held: out-of-order samples without a successor, then the late ones."""
        out = [o for item in self._held.values() for o in item] + self._late
        self._held, self._late = {}, []
        return out

    def _encode(self, s: SimSample, dup: bool) -> list[Outgoing]:
        skew = self.skew(s.device_id)
        raw = jsonx.dumps(s.body(skew)).encode()
        self.sent.samples += 1
        self.sent.clock_skewed += skew != 0
        item = [Outgoing(s.device_id, raw, "sample")]
        if dup:
            self.sent.duplicates += 1
            item.append(Outgoing(s.device_id, raw, "duplicate"))
        return item

    def _extras(self, s: SimSample) -> list[Outgoing]:
        out: list[Outgoing] = []
        if self.rng.random() < self.faults.malformed:
            spoil = MALFORMED[self.sent.malformed % len(MALFORMED)]
            out.append(Outgoing(s.device_id, spoil(s.body()), "malformed"))
            self.sent.malformed += 1
        if self.rng.random() < self.faults.unknown_devices and self._ghosts:
            ghost = self._ghosts[self.sent.unknown_devices % len(self._ghosts)]
            out.append(Outgoing(ghost, jsonx.dumps(s.body()).encode(), "unknown_device"))
            self.sent.unknown_devices += 1
        return out
