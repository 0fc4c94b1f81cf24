"""The bounded hand-over between the MQTT receive thread and the decoder (``services.ingest.buffer``)."""

from __future__ import annotations

import threading
import time

from services.ingest.buffer import Buffer


def test_put_many_keeps_the_order_and_the_weights() -> None:
    buf: Buffer[str] = Buffer(capacity=100)
    buf.put_many([("a", 1), ("b", 5), ("c", 1)])
    buf.put_many([("d", 2)])
    first = buf.take(6, linger_s=0, idle_s=0)
    assert (first.items, first.weight) == (["a", "b"], 6)
    rest = buf.take(100, linger_s=0, idle_s=0)
    assert (rest.items, rest.weight) == (["c", "d"], 3)
    assert buf.fill == 9  # held until released
    buf.release(first.weight + rest.weight)
    assert buf.fill == 0


def test_put_many_blocks_when_full_and_what_it_queued_can_be_taken_meanwhile() -> None:
    """Nothing is dropped: the rest of a read waits for room, the part already queued is taken."""
    buf: Buffer[int] = Buffer(capacity=3)
    done = threading.Event()

    def receive() -> None:
        buf.put_many([(i, 1) for i in range(7)])
        done.set()

    threading.Thread(target=receive, daemon=True).start()
    taken: list[int] = []
    deadline = time.monotonic() + 10
    while len(taken) < 7 and time.monotonic() < deadline:
        batch = buf.take(2, linger_s=0.05, idle_s=0.01)
        assert buf.fill <= 3
        taken += batch.items
        buf.release(batch.weight)
    assert taken == list(range(7))
    assert done.wait(5)
    assert buf.fill == 0


def test_a_closed_buffer_takes_the_rest_without_blocking() -> None:
    buf: Buffer[int] = Buffer(capacity=2)
    buf.put_many([(0, 2)])
    buf.close()
    started = time.monotonic()
    buf.put_many([(1, 1), (2, 1)])  # full, but closed: no wait
    assert time.monotonic() - started < 0.4
    assert buf.take(10, linger_s=1, idle_s=1).items == [0, 1, 2]
