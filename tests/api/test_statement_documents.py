"""Statements finance can invoice from (spec §3.4): number, parties, local period dates,
time zone, version, issuer; an adjustment names what it adjusts and why. Checked by hand
on a Europe/Stockholm contract: October 2026 there runs from 2026-09-30T22:00Z to
2026-10-31T23:00Z and has 745 hours (summer time ends on the 25th)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.settlement.helpers import ok, post_samples, run, statement

START = datetime(2026, 9, 30, 22, tzinfo=UTC)  # 2026-10-01 00:00 in Stockholm
HOURS = 745
GAP = datetime(2026, 10, 10, 10, tzinfo=UTC)  # one hour that arrives late
DOWN = datetime(2026, 10, 5, 8, tzinfo=UTC)  # 10:00-11:00 local: a stop, later annotated
CONTRACT = {
    "contract_id": "DOC-1",
    "provider": "Connectcorp",
    "customer": "MineCo",
    "currency": "EUR",
    "timezone": "Europe/Stockholm",
    "devices": ["doc-a"],
    "effective_from": "2026-01",
    "unit": "t",
    "rated_capacity_per_hour": 200,
    "terms": {
        "fixed_fee": "12000.00",
        "usage": {"basis": "throughput", "tiers": [{"up_to": None, "price": "0.80"}]},
        "kpis": [{"kpi": "availability", "target": 0.999, "penalty": {"per_point": "800.00"}}],
    },
}


def _hour(ts: datetime, uptime: int = 60, throughput: int = 100) -> dict[str, Any]:
    return {
        "ts": ts.isoformat(),
        "interval_s": 3600,
        "uptime_min": uptime,
        "quality_min": uptime,
        "throughput": throughput,
    }


@pytest.fixture
def october(api: Any, admin: dict[str, str]) -> None:
    ok(api.post("/v1/contracts", json=CONTRACT, headers=admin), 201)
    hours = [START + timedelta(hours=h) for h in range(HOURS + 1)]  # + the first hour of Nov
    samples = [_hour(ts, uptime=0 if ts == DOWN else 60) for ts in hours if ts != GAP]
    post_samples(api, admin, "doc-a", samples)
    run(api, admin, "DOC-1", "2026-10")


def _issue(api: Any, admin: dict[str, str]) -> Any:
    return ok(api.post("/v1/contracts/DOC-1/statements/2026-10/issue", headers=admin))


def _csv_rows(api: Any, admin: dict[str, str]) -> list[dict[str, str]]:
    r = api.get("/v1/settlements?period=2026-10&format=csv", headers=admin)
    return list(csv.DictReader(io.StringIO(r.text)))


def test_a_statement_names_what_an_invoice_needs(
    api: Any, admin: dict[str, str], october: None
) -> None:
    s = _issue(api, admin)
    assert {k: s[k] for k in ("number", "provider", "customer", "period_start", "period_end")} == {
        "number": "DOC-1-2026-10-0",
        "provider": "Connectcorp",
        "customer": "MineCo",
        "period_start": "2026-10-01",
        "period_end": "2026-10-31",
    }
    assert (s["timezone"], s["contract_version"], s["adjusts"], s["reason"]) == (
        "Europe/Stockholm",
        1,
        None,
        None,
    )
    # 744 of October's 745 local hours arrived; the first hour of November is not October's
    assert s["devices"][0]["reported_min"] == 744 * 60
    assert s["issued_by"].startswith("token:")
    (row,) = _csv_rows(api, admin)
    for column in ("number", "provider", "customer", "period_start", "period_end", "timezone"):
        assert row[column] == str(s[column]), column
    assert row["contract_version"] == "1" and row["adjusts"] == "" and row["net"] == s["net"]


def test_adjustments_are_numbered_in_sequence_and_say_why(
    api: Any, admin: dict[str, str], october: None
) -> None:
    _issue(api, admin)
    post_samples(api, admin, "doc-a", [_hour(GAP)])  # the missing hour arrives late
    assert run(api, admin, "DOC-1", "2026-10")["results"][0]["outcome"] == "adjustment"
    first = _issue(api, admin)
    assert (first["number"], first["seq"], first["adjusts"]["number"]) == (
        "DOC-1-2026-10-1",
        1,
        "DOC-1-2026-10-0",
    )
    assert first["changes"]["late_samples"] == 1 and first["changes"]["corrected_samples"] == 0
    assert "1 late sample after the issued data" in first["reason"]
    assert "doc-a: reported minutes 44,640 → 44,700" in first["reason"]

    note = {
        "device_id": "doc-a",
        "from": DOWN.isoformat(),
        "to": (DOWN + timedelta(hours=1)).isoformat(),
        "cause": "planned",
        "note": "liner change agreed with MineCo",
    }
    ok(api.post("/v1/annotations", json=note, headers=admin), 201)
    post_samples(api, admin, "doc-a", [_hour(START, throughput=90)])  # a correction
    run(api, admin, "DOC-1", "2026-10")
    second = statement(api, admin, "DOC-1", "2026-10", seq=2)
    assert (second["number"], second["status"], second["adjusts"]["number"]) == (
        "DOC-1-2026-10-2",
        "draft",
        "DOC-1-2026-10-1",
    )
    assert second["changes"]["late_samples"] == 0
    assert second["changes"]["corrected_samples"] == 1
    (annotation,) = second["changes"]["annotations"]
    assert annotation["local"] == "2026-10-05 10:00 to 2026-10-05 11:00"
    assert (
        f"annotation #{annotation['id']} on doc-a, 2026-10-05 10:00 to 2026-10-05 11:00 "
        "(Europe/Stockholm), downtime classified as planned" in second["reason"]
    )
    assert "liner change agreed with MineCo" in second["reason"]
    assert "throughput 74,500 → 74,490" in second["reason"]

    original = statement(api, admin, "DOC-1", "2026-10", seq=0)
    assert [a["number"] for a in original["adjustments"]] == [
        "DOC-1-2026-10-1",
        "DOC-1-2026-10-2",
    ]
    rows = _csv_rows(api, admin)
    assert [(r["number"], r["adjusts"]) for r in rows] == [
        ("DOC-1-2026-10-0", ""),
        ("DOC-1-2026-10-1", "DOC-1-2026-10-0"),
        ("DOC-1-2026-10-2", "DOC-1-2026-10-1"),
    ]
    assert rows[1]["reason"] == first["reason"] and rows[2]["reason"] == second["reason"]


def test_the_pages_mention_adjustments_and_say_why(
    api: Any, admin: dict[str, str], october: None
) -> None:
    _issue(api, admin)
    post_samples(api, admin, "doc-a", [_hour(GAP)])
    run(api, admin, "DOC-1", "2026-10")
    url = "/v1/contracts/DOC-1/statements/2026-10?format=html&seq="
    issued, adjustment = (api.get(f"{url}{seq}", headers=admin).text for seq in (0, 1))
    assert "Statement DOC-1-2026-10-0" in issued
    assert "Adjusted later" in issued and "DOC-1-2026-10-1 (draft" in issued
    assert "2026-10-01 to 2026-10-31 (inclusive, Europe/Stockholm)" in issued
    assert "Why this adjustment exists" in adjustment
    assert "It adjusts statement DOC-1-2026-10-0" in adjustment
    assert "1 late sample after the issued data" in adjustment
    assert "EUR 12,000.00" in issued  # money with currency and separators
