"""``viu ingest``: MQTT consumer + bounded buffer + one writer thread.

Exactly once, end to end: the writer commits a batch (samples, dead letters
and counters in one transaction) and only then acknowledges its messages.
A crash before the commit loses nothing (the broker redelivers); a crash
between commit and ack causes a redelivery that the idempotent write turns
into duplicates, which change nothing.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from services.config import Settings
from services.ingest import metrics, pipeline
from services.ingest.buffer import Batch, Buffer
from services.ingest.decode import Message
from services.ingest.mqtt import AckToken, MqttConsumer

log = logging.getLogger(__name__)

Item = tuple[Message, AckToken]
STOP_FLUSH_S = 15.0


def sample_weight(payload: bytes) -> int:
    """A cheap upper-bound guess of the samples in a payload, without parsing it."""
    return max(1, payload.count(b'"ts"'))


class IngestService:
    def __init__(self, settings: Settings, engine: Engine, mqtt_url: str) -> None:
        self.settings = settings
        self.engine = engine
        self.buffer: Buffer[Item] = Buffer(settings.ingest_buffer_samples)
        self.consumer = MqttConsumer(settings, mqtt_url, self._deliver)
        self._stopping = threading.Event()
        self._give_up_at = float("inf")
        self._writer = threading.Thread(target=self._run, name="viu-ingest-writer", daemon=True)

    def start(self) -> None:
        self._writer.start()
        self.consumer.start()

    def is_connected(self) -> bool:
        return self.consumer.is_connected()

    def stop(self) -> None:
        """Flush and acknowledge what is buffered, then disconnect."""
        self._give_up_at = time.monotonic() + STOP_FLUSH_S
        self._stopping.set()
        self.buffer.close()
        self._writer.join(STOP_FLUSH_S + 5)
        self.consumer.stop()

    def _deliver(self, message: Message, token: AckToken) -> None:
        if self._stopping.is_set():
            return  # not acknowledged: the broker keeps it for the next start
        self.buffer.put((message, token), sample_weight(message.payload))
        metrics.BUFFER_FILL.set(self.buffer.fill)

    def _run(self) -> None:
        s = self.settings
        while not (self._stopping.is_set() and self.buffer.empty()):
            if time.monotonic() > self._give_up_at:
                break
            batch = self.buffer.take(
                s.ingest_batch_size,
                s.ingest_flush_ms / 1000,
                idle_s=min(s.ingest_flush_ms / 1000, 0.02),
            )
            if batch.items:
                self._commit(batch)
        log.info("ingest writer stopped")

    def _commit(self, batch: Batch[Item]) -> None:
        """Write until committed (backing off on database errors), then acknowledge."""
        delay = 0.1
        while True:
            try:
                pipeline.ingest(self.engine, [m for m, _ in batch.items], attempts=1)
                break
            except Exception as exc:  # the database is away (or worse): keep it, retry
                metrics.RETRIES.inc()
                if time.monotonic() > self._give_up_at:
                    log.error("stopping with an uncommitted batch; the broker redelivers it")
                    self.buffer.release(batch.weight)
                    return
                level = logging.WARNING if isinstance(exc, SQLAlchemyError) else logging.ERROR
                why = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                log.log(level, "batch not committed (%s); retrying in %.1fs", why, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        for _, token in batch.items:
            self.consumer.ack(token)
        self.buffer.release(batch.weight)
        metrics.BUFFER_FILL.set(self.buffer.fill)
