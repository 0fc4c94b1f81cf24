"""Running the write path in its own transaction, with the retries every door needs.

A lost connection or a deadlock is retried (the write is idempotent); a
batch the database refuses for its data is split so that one bad payload is
dead-lettered instead of blocking everything behind it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import psycopg.errors
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from services.ingest import metrics
from services.ingest.decode import Decoded, Message, Reject, decode
from services.ingest.stats import SINCE_START, Outcome
from services.ingest.writer import write_decoded, write_messages

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.LockNotAvailable,
)
DATA = (psycopg.errors.DataError, psycopg.errors.IntegrityError)


def is_data_error(exc: BaseException) -> bool:
    """The database refused the content itself: retrying the same batch cannot help."""
    return isinstance(exc, DBAPIError) and isinstance(exc.orig, DATA)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc.orig, TRANSIENT)
    )


def in_transaction(engine: Engine, work: Callable[[Connection], T], attempts: int = 5) -> T:
    """Run ``work`` in one transaction, retrying deadlocks and dropped connections."""
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                return work(conn)
        except DBAPIError as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            log.warning("ingest transaction retried (%s): %s", attempt, exc.orig)
            time.sleep(min(0.05 * 2**attempt, 1.0))
    raise AssertionError("unreachable")


def ingest(engine: Engine, messages: Sequence[Message], attempts: int = 5) -> Outcome:
    """Store payloads exactly once; counts go to the process counters after the commit."""
    started = time.perf_counter()
    try:
        outcome = in_transaction(engine, _writing(messages), attempts)
    except DBAPIError as exc:
        if not is_data_error(exc):
            raise
        outcome = _split(engine, messages, attempts)
    record(outcome, len(messages), time.perf_counter() - started)
    return outcome


def ingest_decoded(engine: Engine, batch: Sequence[Decoded], attempts: int = 5) -> Outcome:
    """``ingest`` for payloads decoded beforehand (the MQTT decoder thread decodes them).

    A write may change what it is given (``reject_all``), so only the first
    attempt uses ``batch``; a retry decodes the payloads again, exactly as
    ``ingest`` does on every attempt. The caller must not reuse ``batch``.
    """
    started = time.perf_counter()
    given: list[Sequence[Decoded]] = [batch]

    def work(conn: Connection) -> Outcome:
        todo = given.pop() if given else [decode(d.message) for d in batch]
        return write_decoded(conn, todo)

    try:
        outcome = in_transaction(engine, work, attempts)
    except DBAPIError as exc:
        if not is_data_error(exc):
            raise
        outcome = _split(engine, [d.message for d in batch], attempts)
    record(outcome, len(batch), time.perf_counter() - started)
    return outcome


def _split(engine: Engine, messages: Sequence[Message], attempts: int) -> Outcome:
    total = Outcome()
    for message in messages:
        try:
            total += in_transaction(engine, _writing([message]), attempts)
        except DBAPIError as exc:
            if not is_data_error(exc):
                raise
            total += in_transaction(engine, _refusing(message, exc), attempts)
    return total


def _writing(messages: Sequence[Message]) -> Callable[[Connection], Outcome]:
    return lambda conn: write_messages(conn, messages)


def _refusing(message: Message, exc: DBAPIError) -> Callable[[Connection], Outcome]:
    return lambda conn: _refused(conn, message, exc)


def _refused(conn: Connection, message: Message, exc: DBAPIError) -> Outcome:
    decoded = decode(message)
    reason = f"refused by the database: {str(exc.orig).splitlines()[0][:500]}"
    weight = decoded.received
    decoded.samples = []
    decoded.rejects = [Reject(message.topic, decoded.device_id, message.payload, reason, weight)]
    return write_decoded(conn, [decoded])


def record(outcome: Outcome, messages: int, seconds: float) -> None:
    SINCE_START.record(outcome)
    metrics.observe(outcome, messages, seconds)
