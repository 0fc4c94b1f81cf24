"""Scheduled settlement (spec §3.4), safe with several replicas.

Every tick, for each contract: a month-to-date draft once a day (after
``settlement_draft_hour`` local time) and the close of every past period whose
grace period is over (``settlement_grace_days`` after the period ends, at
``settlement_close_hour`` local time). A job is *claimed* by inserting its
``settlement_runs`` row in the same transaction as the settlement itself: the
primary key makes it exactly once across replicas, a failure rolls the claim
back so the next tick retries, and closes missed while viu was down are
caught up because any past period without a close row is due.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from schemas.periods import Period, period_bounds, period_of, zone
from services import dberrors
from services.config import Settings
from services.errors import Conflict
from services.ingest import rollups
from services.settlement import contracts, outlook, runs

log = logging.getLogger(__name__)

CATCH_UP_PERIODS = 12
TICK_SECONDS = 300


@dataclass(frozen=True)
class Job:
    contract_id: str
    period: Period
    kind: str


def close_due_at(period: Period, tz: str, grace_days: int, hour: int) -> datetime:
    """When the close of ``period`` becomes due: grace days after its end, at ``hour`` local."""
    end_local = period_bounds(period, tz)[1].astimezone(zone(tz))
    due = (end_local + timedelta(days=grace_days)).replace(hour=hour, minute=0, second=0)
    return due.astimezone(UTC)


def due_jobs(conn: Connection, settings: Settings, now: datetime) -> list[Job]:
    jobs: list[Job] = []
    for cid in contracts.contract_ids(conn):
        tz = contracts.latest_version(conn, cid).terms.timezone
        local = now.astimezone(zone(tz))
        current = period_of(now, tz)
        if local.hour >= settings.settlement_draft_hour:
            jobs.append(Job(cid, current, f"draft:{local.date().isoformat()}"))
        p = current
        for _ in range(CATCH_UP_PERIODS):
            p = p.prev()
            due = close_due_at(
                p, tz, settings.settlement_grace_days, settings.settlement_close_hour
            )
            if due <= now:
                jobs.append(Job(cid, p, "close"))
    return [j for j in jobs if contracts.version_in_force(conn, j.contract_id, j.period)]


def claim(conn: Connection, job: Job) -> bool:
    row = conn.execute(
        text(
            "INSERT INTO settlement_runs (contract_id, period, kind, started_at) "
            "VALUES (:c, :p, :k, now()) ON CONFLICT DO NOTHING RETURNING 1"
        ),
        {"c": job.contract_id, "p": str(job.period), "k": job.kind},
    ).first()
    return row is not None


def tick(
    engine: Engine, settings: Settings, now: datetime | None = None, mqtt_url: str | None = None
) -> list[Job]:
    """Run every due, unclaimed job once; returns the jobs this process ran."""
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    _fold(engine)
    with engine.connect() as conn:
        jobs = due_jobs(conn, settings, now)
    done: list[Job] = []
    try:
        _run_jobs(engine, jobs, done, settings, now, mqtt_url)
    finally:
        log.info(
            "settlement tick ended: %d of %d due job(s) run here in %.1f s",
            len(done),
            len(jobs),
            time.perf_counter() - started,
        )
    return done


def _fold(engine: Engine) -> None:
    """Fold the rollup deltas that writes appended, where no ingester folds them.

    An API that only takes HTTP telemetry has no ingester; without this the
    deltas would pile up. Settlement reads the same figures either way
    (``usage``), so a failure here is logged and the tick goes on.
    """
    try:
        rollups.fold_now(engine)
    except Exception as exc:
        log.warning("folding rollup deltas before the tick failed: %s", dberrors.reason(exc))


def _run_jobs(
    engine: Engine,
    jobs: list[Job],
    done: list[Job],
    settings: Settings,
    now: datetime,
    mqtt_url: str | None,
) -> None:
    for job in jobs:
        try:
            with engine.begin() as conn:
                if not claim(conn, job):
                    continue
                result = runs.settle_contract(conn, job.contract_id, job.period)
                if job.kind.startswith("draft"):
                    outlook.alert_if_flagged(conn, settings, job.contract_id, now, mqtt_url)
                conn.execute(
                    text(
                        "UPDATE settlement_runs SET finished_at = now(), outcome = :o "
                        "WHERE contract_id = :c AND period = :p AND kind = :k"
                    ),
                    {
                        "o": result.outcome,
                        "c": job.contract_id,
                        "p": str(job.period),
                        "k": job.kind,
                    },
                )
            done.append(job)
        except Conflict as exc:
            log.warning("settlement %s skipped: %s", job, exc.detail)
        except Exception:
            log.exception("settlement %s failed; will retry next tick", job)


FIRST_TICK_POLL_S = 0.5


class SettlementScheduler:
    """APScheduler driving ``tick``; start/stop from ``viu up`` or ``viu settle``.

    ``first_tick_when`` (``viu up``: the ingester of the same process has
    caught up with the broker's backlog): the first tick waits until it has
    said yes twice in a row, polled every ``FIRST_TICK_POLL_S``, and at most
    one tick interval. After an outage the broker holds the telemetry of the
    time viu was away; settling the due closes and drafts before it is stored
    would settle them on part of it, and the settlement's CPU would slow the
    ingester down while it catches up (the two share one interpreter).
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        mqtt_url: str | None = None,
        first_tick_when: Callable[[], bool] | None = None,
    ) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.settings = settings
        self.engine = engine
        self.mqtt_url = mqtt_url
        self.first_tick_when = first_tick_when
        self._scheduler: Any = BackgroundScheduler(timezone=UTC)
        self._stopping = threading.Event()
        self._waiter: threading.Thread | None = None

    def start(self) -> None:
        now = datetime.now(UTC)
        waits = self.first_tick_when is not None
        self._scheduler.add_job(
            tick,
            "interval",
            seconds=TICK_SECONDS,
            args=[self.engine, self.settings],
            kwargs={"mqtt_url": self.mqtt_url},
            next_run_time=now + timedelta(seconds=TICK_SECONDS) if waits else now,
            max_instances=1,
            coalesce=True,
            id=JOB_ID,
        )
        self._scheduler.start()
        log.info("settlement scheduler started (tick every %ss)", TICK_SECONDS)
        if waits:
            log.info(
                "settlement: the first tick waits for the ingester to catch up (at most %ss)",
                TICK_SECONDS,
            )
            self._waiter = threading.Thread(
                target=self._first_tick, name="viu-settlement-first-tick", daemon=True
            )
            self._waiter.start()

    def _first_tick(self) -> None:
        assert self.first_tick_when is not None
        yes = 0
        deadline = time.monotonic() + TICK_SECONDS
        while not self._stopping.wait(FIRST_TICK_POLL_S) and time.monotonic() < deadline:
            yes = yes + 1 if self.first_tick_when() else 0
            if yes == 2:
                log.info("settlement: the ingester has caught up; first tick now")
                self._scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))
                return

    def stop(self) -> None:
        self._stopping.set()
        if self._waiter is not None:
            self._waiter.join()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)


JOB_ID = "settlement-tick"
