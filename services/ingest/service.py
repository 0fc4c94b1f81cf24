"""``viu ingest``: MQTT consumer + bounded buffer + a decoder and a writer thread.

Exactly once, end to end: the writer commits a batch (samples, dead letters
and counters in one transaction) and only then acknowledges its messages.
The decoder takes the next batch from the buffer and decodes it while the
writer waits on PostgreSQL for the current one (PostgreSQL works without the
GIL), so Python and the database run in parallel; at most one decoded batch
waits, and both count against the buffer until their commit.
A crash before the commit loses nothing (the broker redelivers); a crash
between commit and ack causes a redelivery that the idempotent write turns
into duplicates, which change nothing.

Neither thread may die silently: each runs under a supervisor that logs an
unexpected error with its traceback, reports not-ready (``is_connected``,
which ``/readyz`` asks) and restarts it; the batch it held is carried over,
so nothing taken from the buffer is lost. It stays not-ready until the
restarted thread has done its work once (decoded a batch, committed one).
"""

from __future__ import annotations

import gc
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import Engine

from services import dberrors
from services.config import Settings
from services.ingest import formats, metrics, pipeline, rollups, writer
from services.ingest.admission import Window
from services.ingest.buffer import Batch, Buffer
from services.ingest.decode import Decoded, Message, decode
from services.ingest.mqtt import AckToken, MqttConsumer, PubAcks, pubacks

log = logging.getLogger(__name__)

Item = tuple[Message, AckToken]


class Ready(NamedTuple):
    """A batch handed from the decoder to the writer, with what the decoder prepared for it.

    The writer is the thread that sets the pace: it waits on PostgreSQL in
    between its Python, so everything the decoder can work out ahead (the
    staging, the acknowledgements, the messages per format) shortens each
    transaction's turn.
    """

    batch: Batch[Item]
    decoded: list[Decoded]
    staging: writer.Staging | None
    acks: PubAcks | None  # None: its messages came over more than one connection
    by_format: dict[str, list[Message]]


STOP_FLUSH_S = 15.0
RESTART_DELAY_S = 1.0


def tune_runtime(switch_interval_us: int) -> None:
    """Make the cyclic garbage collector rare and hand the GIL over sooner.

    Garbage collector: ingest allocates, it does not make cycles. Every
    sample is a few container objects that live until their batch is
    committed. With CPython's default thresholds the collector ran every 700
    allocations and regularly walked every object of the process, which took
    a third of the decoder's time (11.9 → 8.4 µs per single-sample message,
    measured). What exists at start (modules, settings) is frozen out of the
    collector's walks; the rest is still collected, just in larger steps.

    GIL switch interval (``VIU_INGEST_SWITCH_INTERVAL_US``): the writer sends
    each statement of a batch and waits for PostgreSQL's reply without the
    GIL; when the reply comes, the decoder usually holds the GIL and keeps it
    for up to CPython's default 5 ms before it must let go. With a dozen
    round trips per transaction, the writer waited longer for the GIL than
    PostgreSQL took to answer. At 100 µs, 100-sample messages drained 32 % to
    46 % faster on a 2-vCPU host (docs/benchmarks.md, issue 17 round 2).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
    sys.setswitchinterval(switch_interval_us / 1_000_000)


class IngestService:
    def __init__(self, settings: Settings, engine: Engine, mqtt_url: str) -> None:
        self.settings = settings
        self.engine = engine
        self.window = Window.of(settings)
        self.buffer: Buffer[Item] = Buffer(settings.ingest_buffer_samples)
        self.consumer = MqttConsumer(settings, mqtt_url, self._deliver)
        self._stopping = threading.Event()
        self._failed: set[str] = set()  # threads restarted that have not worked since
        self._give_up_at = float("inf")
        self._ready: queue.Queue[Ready | None] = queue.Queue(maxsize=1)
        self._taken: Batch[Item] | None = None  # taken by the decoder, not yet handed over
        self._writing: Ready | None = None  # handed to the writer, not yet committed
        self._switch_interval = sys.getswitchinterval()  # the process's, restored by stop()
        self._decoder = self._thread("decoder", self._decode_loop, self._decoder_ended)
        self._writer = self._thread("writer", self._write_loop)
        self._folder = self._thread("folder", self._fold_loop)
        self._fold_failing = False

    def start(self) -> None:
        self._switch_interval = sys.getswitchinterval()
        tune_runtime(self.settings.ingest_switch_interval_us)
        self._writer.start()
        self._decoder.start()
        self._folder.start()
        self.consumer.start()

    def is_connected(self) -> bool:
        """Ready to ingest: subscribed, and neither worker thread dead or restarting."""
        return (
            self.consumer.is_connected()
            and not self._failed
            and self._decoder.is_alive()
            and self._writer.is_alive()
        )

    def caught_up(self) -> bool:
        """Connected, with less than one batch received and not yet committed.

        While the ingester drains a backlog (the broker's queue after an
        outage) its buffer holds far more than a batch; ``viu up``'s scheduler
        waits for this before its first tick.
        """
        return self.consumer.is_connected() and self.buffer.fill < self.settings.ingest_batch_size

    def stop(self) -> None:
        """Flush and acknowledge what is buffered, then disconnect."""
        self._give_up_at = time.monotonic() + STOP_FLUSH_S
        self._stopping.set()
        self.buffer.close()
        self._decoder.join(STOP_FLUSH_S + 5)
        self._writer.join(max(0.0, self._give_up_at + 5 - time.monotonic()))
        self._folder.join(5)
        self._fold()  # what the last batches appended
        self.consumer.stop()
        sys.setswitchinterval(self._switch_interval)  # the rest of the process as it was

    def _thread(
        self, name: str, loop: Callable[[], None], ended: Callable[[], None] | None = None
    ) -> threading.Thread:
        return threading.Thread(
            target=self._supervise, args=(name, loop, ended), name=f"viu-ingest-{name}", daemon=True
        )

    def _supervise(
        self, name: str, loop: Callable[[], None], ended: Callable[[], None] | None
    ) -> None:
        """Run ``loop`` until it returns; an unexpected error is logged and the loop restarted."""
        try:
            while True:
                try:
                    loop()
                    return
                except Exception:
                    self._failed.add(name)
                    metrics.THREAD_RESTARTS.labels(thread=name).inc()
                    log.exception("ingest %s thread failed; not ready, restarting it", name)
                    if self._stopping.wait(RESTART_DELAY_S):
                        return  # stopping: what it held is unacknowledged, so redelivered
        finally:
            if ended is not None:
                ended()

    def _deliver(self, items: list[Item]) -> None:
        """Every message of one socket read, in order: one lock and one wake-up for all."""
        if self._stopping.is_set():
            return  # not acknowledged: the broker keeps them for the next start
        weight = formats.weight
        self.buffer.put_many([(item, weight(item[0])) for item in items])

    def _decode_loop(self) -> None:
        s = self.settings
        if self._taken is not None:  # a batch the failed decoder had taken
            self._hand_over(self._taken)
        while not (self._stopping.is_set() and self.buffer.empty()):
            if time.monotonic() > self._give_up_at:
                break
            batch = self.buffer.take(
                s.ingest_batch_size,
                s.ingest_flush_ms / 1000,
                idle_s=min(s.ingest_flush_ms / 1000, 0.02),
            )
            metrics.BUFFER_FILL.set(self.buffer.fill)  # per batch, not per message
            if batch.items:
                self._taken = batch
                self._hand_over(batch)

    def _hand_over(self, batch: Batch[Item]) -> None:
        messages = [m for m, _ in batch.items]
        decoded = [decode(m) for m in messages]
        staging = writer.prepare(decoded)
        acks = pubacks([token for _, token in batch.items])
        self._ready.put(Ready(batch, decoded, staging, acks, formats.by_format(messages)))
        self._taken = None
        self._failed.discard("decoder")

    def _decoder_ended(self) -> None:
        self._ready.put(None)

    def _fold_loop(self) -> None:
        """Fold the writes' rollup deltas into the rollups every ``FOLD_EVERY_S``.

        On a connection of its own, so the writer never waits for it.
        Readers add what is not folded yet (``rollups``): a late or
        failed fold changes no figure, it only leaves more rows to add.
        """
        while not self._stopping.wait(rollups.FOLD_EVERY_S):
            self._fold()

    def _fold(self) -> None:
        try:
            rollups.fold_now(self.engine)
        except Exception as exc:
            # Once per failing stretch: the writer reports the database itself.
            level = logging.DEBUG if self._fold_failing else logging.WARNING
            log.log(
                level,
                "folding rollup deltas failed (%s); next try in %.0f s",
                dberrors.reason(exc),
                rollups.FOLD_EVERY_S,
            )
            self._fold_failing = True
        else:
            self._fold_failing = False

    def _write_loop(self) -> None:
        if self._writing is not None:  # a batch the failed writer had not committed
            # Its payloads may have been screened by the failed write: their
            # staging is worked out again from what they hold now.
            self._commit(self._writing._replace(staging=None))
        while (ready := self._ready.get()) is not None:
            self._writing = ready
            self._commit(ready)
        log.info("ingest writer stopped")

    def _commit(self, ready: Ready) -> None:
        """Write until committed (backing off while the database is away), then acknowledge.

        ``pipeline`` stores what the database accepts and dead-letters what
        it refuses for good, so only a transient error (or one that stops even
        a dead letter from being written) comes back here to be retried.
        """
        batch, decoded, staging = ready.batch, ready.decoded, ready.staging
        delay = 0.1
        while True:
            try:
                pipeline.ingest_decoded(
                    self.engine, decoded, attempts=1, window=self.window, staging=staging
                )
                break
            except Exception as exc:  # the database is away (or worse): keep it, retry
                metrics.RETRIES.inc()
                if time.monotonic() > self._give_up_at:
                    log.error("stopping with an uncommitted batch; the broker redelivers it")
                    self.buffer.release(batch.weight)
                    self._writing = None
                    return
                if dberrors.is_transient(exc):
                    why = dberrors.reason(exc)
                    log.warning("batch not committed (%s); retrying in %.1fs", why, delay)
                else:
                    log.exception("batch not committed; retrying in %.1fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                decoded = [
                    decode(m) for m, _ in batch.items
                ]  # the failed write may have changed them
                staging = None
        if ready.acks is not None:
            self.consumer.send_pubacks(ready.acks)
        else:
            self.consumer.ack_many([token for _, token in batch.items])
        formats.forget_grouped(ready.by_format)
        self.consumer.publish(c for d in decoded for c in d.commands)
        self.buffer.release(batch.weight)
        self._writing = None
        self._failed.discard("writer")
        metrics.BUFFER_FILL.set(self.buffer.fill)
