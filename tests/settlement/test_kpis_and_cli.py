"""KPI series for charts, and settling by hand from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

from sqlalchemy import text

from tests.settlement.helpers import ok
from tests.settlement.test_lifecycle import CONTRACT, _day


def test_kpis_per_day_and_month_use_the_settlement_formulas(api, admin) -> None:  # type: ignore[no-untyped-def]
    ok(api.post("/v1/contracts", json=CONTRACT, headers=admin), 201)
    _day(api, admin, 1, 2400)  # a full day at rated capacity (100/h)
    _day(api, admin, 2, 1200, uptime=720)  # half a day down, unplanned
    days = ok(api.get("/v1/contracts/LC-1/kpis?from=2026-02-01&to=2026-02-03", headers=admin))
    by_day = {p["label"]: p["kpis"] for p in days["points"]}
    assert by_day["2026-02-01"]["availability"] == 1.0
    assert by_day["2026-02-01"]["utilisation"] == 1.0
    assert by_day["2026-02-02"]["availability"] == 0.5
    assert by_day["2026-02-02"]["performance"] == 1.0
    assert by_day["2026-02-03"]["availability"] == 0.0  # no data: all missing, counted as downtime
    month = ok(
        api.get(
            "/v1/contracts/LC-1/kpis?from=2026-02-01&to=2026-02-28&granularity=month", headers=admin
        )
    )
    feb = month["points"][0]
    assert feb["label"] == "2026-02" and feb["kpis"]["throughput"] == 3600.0
    assert Decimal(str(feb["kpis"]["availability"])) == (
        Decimal(2160) / Decimal(28 * 1440)
    ).quantize(Decimal("0.000001"))


def test_kpis_reject_a_reversed_range(api, admin) -> None:  # type: ignore[no-untyped-def]
    ok(api.post("/v1/contracts", json=CONTRACT, headers=admin), 201)
    r = api.get("/v1/contracts/LC-1/kpis?from=2026-03-01&to=2026-02-01", headers=admin)
    assert r.status_code == 422 and r.json()["field"] == "to"


def test_viu_settle_by_hand_settles_each_contract_and_reports(api, admin, settings, db) -> None:  # type: ignore[no-untyped-def]
    ok(api.post("/v1/contracts", json=CONTRACT, headers=admin), 201)
    env = {**os.environ, "VIU_DATABASE_URL": str(settings.database_url)}
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "settle", "--period", "2026-02"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\t")[:3] == ["LC-1", "2026-02", "created"]
    assert "settled 1 contract(s) for 2026-02" in proc.stderr
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM statements")).scalar() == 1
    bad = subprocess.run(
        [sys.executable, "-m", "services.cli", "settle", "--period", "2026-13"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "2026-13" in bad.stderr
