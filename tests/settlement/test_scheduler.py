"""The scheduler: month-to-date drafts, closes after the grace period, exactly once."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import text

from schemas.periods import Period
from services.ingest import pipeline
from services.settlement import scheduler
from services.settlement.scheduler import SettlementScheduler, close_due_at, tick
from tests.ingest.conftest import message, payload, sample
from tests.settlement.helpers import ok
from tests.settlement.test_lifecycle import CONTRACT


def test_close_is_due_three_days_after_the_period_at_two_local() -> None:
    due = close_due_at(Period.parse("2026-10"), "Europe/Stockholm", 3, 2)
    assert due == datetime(2026, 11, 4, 1, 0, tzinfo=UTC)  # 02:00 CET


def test_tick_drafts_the_current_month_and_catches_up_missed_closes(
    api, admin, settings, db, caplog
) -> None:  # type: ignore[no-untyped-def]
    ok(api.post("/v1/contracts", json=CONTRACT, headers=admin), 201)
    now = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
    with caplog.at_level(logging.INFO, logger="services.settlement.scheduler"):
        ran = {(j.period.__str__(), j.kind) for j in tick(db, settings, now)}
    # what an operator (and bench/ingest.py --start warm) reads when a tick is over
    assert "settlement tick ended: 4 of 4 due job(s) run here" in caplog.text
    assert ran == {
        ("2026-04", "draft:2026-04-10"),
        ("2026-03", "close"),
        ("2026-02", "close"),
        ("2026-01", "close"),
    }
    assert tick(db, settings, now) == []
    with db.connect() as conn:
        periods = (
            conn.execute(text("SELECT period FROM statements ORDER BY period")).scalars().all()
        )
    assert periods == ["2026-01", "2026-02", "2026-03", "2026-04"]


def test_tick_folds_rollup_deltas_that_no_ingester_folded(api, admin, settings, db) -> None:  # type: ignore[no-untyped-def]
    """An API taking HTTP telemetry alone has no ingester to fold; the tick does."""
    ok(api.post("/v1/contracts", json=CONTRACT, headers=admin), 201)
    pipeline.ingest(db, [message("lc-a", payload(sample(0), sample(5)))])
    count = "SELECT (SELECT count(*) FROM rollup_deltas) AS d, (SELECT count(*) FROM rollups) AS r"
    with db.connect() as conn:
        deltas, folded = conn.execute(text(count)).one()
        assert deltas > 0 and folded == 0
    tick(db, settings, datetime(2026, 4, 10, 12, 0, tzinfo=UTC))
    with db.connect() as conn:
        assert conn.execute(text(count)).one() == (0, 1)
        assert conn.execute(text("SELECT samples FROM rollups")).scalar_one() == 2


SCRIPT = """
import json, sys
from datetime import datetime
from services.config import load_settings
from services.db import make_engine
from services.settlement.scheduler import tick
settings = load_settings(database_url=sys.argv[1])
engine = make_engine(settings.database_url)
jobs = tick(engine, settings, datetime.fromisoformat(sys.argv[2]))
print(json.dumps([[j.contract_id, str(j.period), j.kind] for j in jobs]))
"""


def test_two_scheduler_replicas_run_each_job_exactly_once(api, admin, settings, db) -> None:  # type: ignore[no-untyped-def]
    for i in range(6):
        body = {**CONTRACT, "contract_id": f"R-{i}", "devices": [f"r-{i}"]}
        ok(api.post("/v1/contracts", json=body, headers=admin), 201)
    now = "2026-03-20T12:00:00+00:00"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(settings.database_url), now],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    ran = [tuple(j) for out in outputs for j in out]
    assert len(ran) == len(set(ran)) == 6 * 3  # (draft 03, close 02, close 01) per contract
    with db.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM statements")).scalar()
    assert n == 6 * 3


def test_the_first_tick_waits_until_the_ingester_has_caught_up(
    settings, db, caplog, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """viu up: the ingester's backlog first (twice "caught up" in a row), then the first tick."""
    monkeypatch.setattr(scheduler, "FIRST_TICK_POLL_S", 0.05)
    answers: list[bool] = []
    caught_up = threading.Event()

    def asked() -> bool:
        answers.append(caught_up.is_set())
        return answers[-1]

    plain = SettlementScheduler(settings, db)
    waiting = SettlementScheduler(settings, db, first_tick_when=asked)
    with caplog.at_level(logging.INFO, logger="services.settlement.scheduler"):
        plain.start()
        try:
            assert _soon(lambda: "settlement tick ended" in caplog.text)  # at once
        finally:
            plain.stop()
        caplog.clear()
        waiting.start()
        try:
            assert _soon(lambda: len(answers) >= 5)
            assert "settlement tick ended" not in caplog.text
            caught_up.set()
            assert _soon(lambda: "settlement tick ended" in caplog.text)
            assert answers[-2:] == [True, True]
        finally:
            waiting.stop()


def _soon(condition: Callable[[], bool], within_s: float = 15.0) -> bool:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
