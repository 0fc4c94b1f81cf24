"""Statement lifecycle (spec §3.4): idempotent drafts, immutable issued statements,
adjustments for late data."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from tests.settlement.helpers import ok, run, statement

CONTRACT: dict[str, Any] = {
    "contract_id": "LC-1",
    "provider": "Equipco",
    "customer": "Minecorp",
    "currency": "EUR",
    "timezone": "UTC",
    "devices": ["lc-a"],
    "effective_from": "2026-01",
    "unit": "t",
    "rated_capacity_per_hour": 100,
    "terms": {
        "fixed_fee": "1000.00",
        "usage": {
            "basis": "throughput",
            "mode": "graduated",
            "tiers": [{"up_to": None, "price": "2.00"}],
        },
        "kpis": [{"kpi": "availability", "target": 0.9, "penalty": {"per_point": "10.00"}}],
    },
}


def _day(api: Any, h: dict[str, str], day: int, throughput: int, uptime: float = 1440) -> None:
    sample = {
        "ts": f"2026-02-{day:02d}T00:00:00Z",
        "interval_s": 86400,
        "uptime_min": uptime,
        "quality_min": uptime,
        "throughput": throughput,
    }
    ok(api.post("/v1/telemetry/lc-a", json=sample, headers=h))


@pytest.fixture
def contract(api, admin) -> str:  # type: ignore[no-untyped-def]
    ok(api.post("/v1/contracts", json=CONTRACT, headers=admin), 201)
    for d in range(1, 29):
        _day(api, admin, d, 100)
    return "LC-1"


def test_rerunning_settlement_with_the_same_inputs_changes_nothing(api, admin, contract) -> None:  # type: ignore[no-untyped-def]
    first = run(api, admin, contract, "2026-02")["results"][0]
    s1 = statement(api, admin, contract, "2026-02")
    second = run(api, admin, contract, "2026-02")["results"][0]
    s2 = statement(api, admin, contract, "2026-02")
    assert (first["outcome"], second["outcome"]) == ("created", "unchanged")
    assert s1 == s2


def test_draft_follows_new_data_until_issued(api, admin, contract) -> None:  # type: ignore[no-untyped-def]
    run(api, admin, contract, "2026-02")
    _day(api, admin, 5, 300)  # a correction of 5 Feb
    assert run(api, admin, contract, "2026-02")["results"][0]["outcome"] == "updated"
    usage = next(
        ln for ln in statement(api, admin, contract, "2026-02")["lines"] if ln["kind"] == "usage"
    )
    assert Decimal(usage["amount"]) == Decimal("2.00") * (27 * 100 + 300)


def test_issued_statement_is_refused_by_the_database(api, admin, contract, db) -> None:  # type: ignore[no-untyped-def]
    run(api, admin, contract, "2026-02")
    ok(api.post(f"/v1/contracts/{contract}/statements/2026-02/issue", headers=admin))
    with pytest.raises(Exception, match="immutable"), db.begin() as conn:
        conn.execute(text("UPDATE statements SET net = 0"))
    with pytest.raises(Exception, match="immutable"), db.begin() as conn:
        conn.execute(text("DELETE FROM statements"))


def test_late_data_after_issue_yields_an_adjustment_and_leaves_the_issued_statement(
    api, admin, contract
) -> None:  # type: ignore[no-untyped-def]
    run(api, admin, contract, "2026-02")
    issued = ok(api.post(f"/v1/contracts/{contract}/statements/2026-02/issue", headers=admin))
    assert issued["status"] == "issued" and issued["issued_by"]

    for day in range(1, 11):  # late corrections: ten days down
        _day(api, admin, day, 100, uptime=0)
    result = run(api, admin, contract, "2026-02")["results"][0]
    assert result["outcome"] == "adjustment"

    again = statement(api, admin, contract, "2026-02")
    assert {k: again[k] for k in ("status", "net", "lines", "kpis", "inputs_digest")} == {
        k: issued[k] for k in ("status", "net", "lines", "kpis", "inputs_digest")
    }
    adj = statement(api, admin, contract, "2026-02", seq=1)
    assert adj["kind"] == "adjustment" and adj["adjusts"]["id"] == issued["id"]
    assert adj["status"] == "draft"
    # availability 18/28 = 0.642857 < 0.9: 25.7143 points x 10.00
    assert [(ln["kind"], ln.get("kpi"), ln["amount"]) for ln in adj["lines"]] == [
        ("penalty", "availability", "-257.14")
    ]
    assert adj["net"] == "-257.14"
    ok(api.post(f"/v1/contracts/{contract}/statements/2026-02/issue", headers=admin))
    assert run(api, admin, contract, "2026-02")["results"][0]["outcome"] == "unchanged"


def test_issuing_twice_without_changes_is_a_conflict(api, admin, contract) -> None:  # type: ignore[no-untyped-def]
    run(api, admin, contract, "2026-02")
    ok(api.post(f"/v1/contracts/{contract}/statements/2026-02/issue", headers=admin))
    r = api.post(f"/v1/contracts/{contract}/statements/2026-02/issue", headers=admin)
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"


def test_settlement_uses_the_version_in_force_for_the_period(api, admin, contract) -> None:  # type: ignore[no-untyped-def]
    v2 = copy.deepcopy(CONTRACT)
    for k in ("contract_id", "provider", "customer"):
        v2.pop(k)
    v2["effective_from"] = "2026-03"
    v2["terms"]["fixed_fee"] = "5000.00"
    ok(api.post(f"/v1/contracts/{contract}/versions", json=v2, headers=admin), 201)
    run(api, admin, contract, "2026-02")
    run(api, admin, contract, "2026-03")
    feb = statement(api, admin, contract, "2026-02")
    mar = statement(api, admin, contract, "2026-03")
    assert (feb["contract_version"], mar["contract_version"]) == (1, 2)
    assert feb["lines"][0]["amount"] == "1000.00" and mar["lines"][0]["amount"] == "5000.00"


def test_finance_export_as_csv(api, admin, contract) -> None:  # type: ignore[no-untyped-def]
    run(api, admin, contract, "2026-02")
    r = api.get("/v1/settlements?period=2026-02&format=csv", headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    header, row = r.text.strip().split("\r\n")
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert cells["contract_id"] == "LC-1" and cells["fixed_fee"] == "1000.00"
    assert Decimal(cells["net"]) == Decimal(statement(api, admin, contract, "2026-02")["net"])


def test_statement_renders_as_a_printable_page(api, admin, contract) -> None:  # type: ignore[no-untyped-def]
    run(api, admin, contract, "2026-02")
    r = api.get(f"/v1/contracts/{contract}/statements/2026-02?format=html", headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "LC-1" in r.text and "@media print" in r.text and "fixed_fee" in r.text
