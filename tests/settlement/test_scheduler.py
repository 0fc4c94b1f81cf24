"""The scheduler: month-to-date drafts, closes after the grace period, exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

from sqlalchemy import text

from schemas.periods import Period
from services.settlement.scheduler import close_due_at, tick
from tests.settlement.helpers import ok
from tests.settlement.test_lifecycle import CONTRACT


def test_close_is_due_three_days_after_the_period_at_two_local() -> None:
    due = close_due_at(Period.parse("2026-10"), "Europe/Stockholm", 3, 2)
    assert due == datetime(2026, 11, 4, 1, 0, tzinfo=UTC)  # 02:00 CET


def test_tick_drafts_the_current_month_and_catches_up_missed_closes(
    api, admin, settings, db
) -> None:  # type: ignore[no-untyped-def]
    ok(api.post("/v1/contracts", json=CONTRACT, headers=admin), 201)
    now = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
    ran = {(j.period.__str__(), j.kind) for j in tick(db, settings, now)}
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
