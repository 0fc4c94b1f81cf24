"""Running the write path in its own transaction, with the retries every door needs.

Errors are classified (``services.dberrors``). A transient one (lost
connection, failover, deadlock, too many connections) is retried: the write
is idempotent. Anything else means the database refuses something in the
batch for good (a constraint, an operator's trigger, …) and would refuse it
on every retry, so the batch is **salvaged**: split in halves, each half in
its own transaction, until the samples the database refuses are isolated.
Each of those is dead-lettered with the database's own message (a payload's
refused state events: the whole message), everything else is stored, and the
caller acknowledges and goes on. Finding k refused
samples among n costs about 2·k·log2(n/k) small transactions; a batch
without a refusal costs nothing extra.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import Connection, Engine

from services import dberrors
from services.ingest import metrics
from services.ingest.admission import DEFAULT_WINDOW, Window, screen
from services.ingest.decode import Decoded, Message, Reject, decode, sample_payload
from services.ingest.stats import SINCE_START, Outcome
from services.ingest.writer import Staging, write_decoded

log = logging.getLogger(__name__)
T = TypeVar("T")

Unit = tuple[int, int]
"""(payload index, sample index) of one sample; -1: the payload's rejects and state events."""

ONE_BY_ONE = 4  # below this many units a refused range is tried unit by unit


def in_transaction(engine: Engine, work: Callable[[Connection], T], attempts: int = 5) -> T:
    """Run ``work`` in one transaction, retrying transient errors with backoff."""
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                return work(conn)
        except Exception as exc:
            if attempt == attempts or not dberrors.is_transient(exc):
                raise
            log.warning("ingest transaction retried (%s): %s", attempt, dberrors.reason(exc))
            time.sleep(min(0.05 * 2**attempt, 1.0))
    raise AssertionError("unreachable")


def ingest(
    engine: Engine,
    messages: Sequence[Message],
    attempts: int = 5,
    window: Window = DEFAULT_WINDOW,
) -> Outcome:
    """Store payloads exactly once; counts go to the process counters after the commit.

    Raises only what is worth retrying (``dberrors.is_transient``), or when
    not even a dead letter can be written.
    """
    return ingest_decoded(engine, [decode(m) for m in messages], attempts, window)


def ingest_decoded(
    engine: Engine,
    batch: Sequence[Decoded],
    attempts: int = 5,
    window: Window = DEFAULT_WINDOW,
    staging: Staging | None = None,
) -> Outcome:
    """``ingest`` for payloads decoded beforehand (the MQTT decoder thread decodes them).

    A write may change what it is given (``screen`` moves samples to
    rejects), so only the first attempt uses ``batch`` and ``staging`` (what
    ``writer.prepare`` returned for it); a retry decodes the payloads again.
    The caller must not reuse ``batch``.
    """
    started = time.perf_counter()
    given: list[tuple[Sequence[Decoded], Staging | None]] = [(batch, staging)]

    def work(conn: Connection) -> Outcome:
        if given:
            todo, prepared = given.pop()
            return write_decoded(conn, todo, window, prepared)
        return write_decoded(conn, [decode(d.message) for d in batch], window)

    try:
        outcome = in_transaction(engine, work, attempts)
    except Exception as exc:
        if dberrors.is_transient(exc):
            raise
        outcome = salvage(engine, [d.message for d in batch], exc, window)
    record(outcome, len(batch), time.perf_counter() - started)
    return outcome


def salvage(
    engine: Engine, messages: Sequence[Message], exc: Exception, window: Window = DEFAULT_WINDOW
) -> Outcome:
    """Store what the database accepts of a refused batch and dead-letter the rest."""
    log.warning(
        "the database refused a batch of %d payload(s) (%s); isolating what it refuses",
        len(messages),
        dberrors.reason(exc),
    )
    decoded = [decode(m) for m in messages]
    in_transaction(engine, lambda conn: screen(conn, decoded, window))
    units: list[Unit] = []
    for i, d in enumerate(decoded):
        if d.rejects or d.events:
            units.append((i, -1))
        units.extend((i, j) for j in range(len(d.samples)))
    return _Salvage(engine, decoded, window).split(units, exc)


class _Salvage:
    def __init__(self, engine: Engine, decoded: list[Decoded], window: Window) -> None:
        self.engine = engine
        self.decoded = decoded
        self.window = window

    def split(self, units: list[Unit], exc: Exception) -> Outcome:
        """``units`` were refused together: try smaller parts, in order."""
        if len(units) == 1:
            return self.refuse(units[0], exc)
        size = 1 if len(units) <= ONE_BY_ONE else (len(units) + 1) // 2
        total = Outcome()
        for start in range(0, len(units), size):
            total += self.attempt(units[start : start + size])
        return total

    def attempt(self, units: list[Unit]) -> Outcome:
        try:
            return in_transaction(
                self.engine, lambda conn: write_decoded(conn, self.parts(units), self.window)
            )
        except Exception as exc:
            if dberrors.is_transient(exc):
                raise
            return self.split(units, exc)

    def parts(self, units: list[Unit]) -> list[Decoded]:
        """The payloads' pieces named by ``units``, in order (rebuilt for every attempt)."""
        out = []
        for i, group in itertools.groupby(units, key=lambda u: u[0]):
            whole = self.decoded[i]
            part = Decoded(whole.message, whole.device_id, batch=whole.batch)
            for _, j in group:
                if j < 0:
                    part.rejects = list(whole.rejects)
                    part.events = list(whole.events)
                else:
                    part.samples.append(whole.samples[j])
            out.append(part)
        return out

    def refuse(self, unit: Unit, exc: Exception) -> Outcome:
        """Dead-letter one refused sample (or a payload's state events) with the database's reason.

        A refused ``(i, -1)`` unit (the payload's rejects and state events, e.g.
        a Sparkplug event row) becomes one dead letter of the raw message, so it
        never stalls ingest (spec §1.1). Only if even that dead letter is
        refused does the original error go up.
        """
        i, j = unit
        whole = self.decoded[i]
        why = f"refused by the database: {dberrors.reason(exc)}"
        if j < 0:
            raw, weight, what = (
                whole.message.payload,
                sum(r.weight for r in whole.rejects),
                "message",
            )
        else:
            sample = whole.samples[j]
            raw = sample_payload(sample) if whole.batch else whole.message.payload
            weight, what = 1, "sample"
        log.warning("a %s of %s is dead-lettered: %s", what, whole.message.topic, why)
        reject = Reject(whole.message.topic, whole.device_id, raw, why, max(weight, 1))
        part = Decoded(whole.message, whole.device_id, rejects=[reject])
        try:
            return in_transaction(
                self.engine, lambda conn: write_decoded(conn, [part], self.window)
            )
        except Exception as refused:
            if j < 0 and not dberrors.is_transient(refused):
                raise exc from refused  # not even a dead letter can be stored
            raise


def record(outcome: Outcome, messages: int, seconds: float) -> None:
    SINCE_START.record(outcome)
    metrics.observe(outcome, messages, seconds)
