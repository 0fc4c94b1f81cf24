"""A bounded hand-over between the MQTT network thread and the writer thread.

Capacity counts samples that are received but not yet committed (queued or
in the batch being written), so a slow or unreachable database fills it too.
When it is full ``put_many`` blocks the receive thread: it stops reading,
TCP pushes back, and the broker keeps the backlog in the persistent session
instead of this process holding it in memory.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Batch(Generic[T]):
    items: list[T]
    weight: int


class Buffer(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[tuple[T, int]] = deque()
        self._queued = 0
        self._held = 0  # taken by the writer, not yet released
        self._cond = threading.Condition()
        self._closed = False
        self._last_put = 0.0
        self._wake_weight = sys.maxsize  # set while a take() waits for a fuller batch

    def put_many(self, entries: list[tuple[T, int]]) -> None:
        """Add ``(item, weight)`` pairs in order under one lock.

        Blocks while full (an oversized item waits for an empty buffer).

        The receive thread hands over every message of one socket read at once:
        a lock and a wake-up per message cost more than the message itself.
        """
        with self._cond:
            wake = False
            for item, weight in entries:
                while (
                    not self._closed and self._fill() > 0 and self._fill() + weight > self.capacity
                ):
                    if wake:  # what is queued so far may be what frees the room
                        self._cond.notify_all()
                        wake = False
                    self._cond.wait(0.5)
                self._items.append((item, weight))
                self._queued += weight
                # Wake the taker only when it has a reason to look: waking it for
                # every message costs more than the message itself.
                wake = wake or len(self._items) == 1 or self._queued >= self._wake_weight
            self._last_put = time.monotonic()
            if wake:
                self._cond.notify_all()

    def take(self, max_weight: int, linger_s: float, idle_s: float) -> Batch[T]:
        """Wait for items, then gather until ``max_weight``, ``linger_s`` or an ``idle_s`` lull.

        The lull rule matters: a broker only sends so many unacknowledged
        messages, so waiting for a full batch could wait for acks that only
        the flush would send.
        """
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait(0.5)
            deadline = time.monotonic() + linger_s
            self._wake_weight = max_weight
            try:
                while not self._closed and self._queued < max_weight:
                    now = time.monotonic()
                    if now >= deadline or now - self._last_put >= idle_s:
                        break
                    self._cond.wait(min(deadline - now, idle_s - (now - self._last_put)))
            finally:
                self._wake_weight = sys.maxsize
            items: list[T] = []
            weight = 0
            while self._items and (not items or weight + self._items[0][1] <= max_weight):
                item, w = self._items.popleft()
                items.append(item)
                weight += w
            self._queued -= weight
            self._held += weight
            return Batch(items, weight)

    def release(self, weight: int) -> None:
        """The writer is done with a batch (committed, or abandoned at shutdown)."""
        with self._cond:
            self._held -= weight
            self._cond.notify_all()

    def close(self) -> None:
        """Stop blocking: producers and the writer return promptly from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _fill(self) -> int:
        return self._queued + self._held

    @property
    def fill(self) -> int:
        with self._cond:
            return self._fill()

    def empty(self) -> bool:
        with self._cond:
            return not self._items
