"""The quarterly review pack (spec §5): JSON for both parties, and the printable page."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from schemas.periods import period_of
from tests.proposals.conftest import contract, settle_months, write_rollups
from tests.settlement.helpers import ok

Q3 = ["2026-07", "2026-08", "2026-09"]
VALUE_MODEL = {"customer_value_per_unit": "3.10", "agreed_provider_share": 0.40, "tolerance": 0.10}
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def quarter(api: Any, admin: dict[str, str], db: Engine, create: Any, headers: Any) -> str:
    """A Q3 with penalties, planned downtime, a data gap, costs, an issued month and a proposal."""
    terms = create(contract(value_model=VALUE_MODEL))
    months = [
        {"availability": 0.93, "planned": 600, "throughput": 34000},
        {"availability": 0.92, "missing": 1200, "throughput": 36000},
        {"availability": 0.935, "customer": 300, "throughput": 33000},
    ]
    for period, values in zip(Q3, months, strict=True):
        write_rollups(db, terms, period, **values)
    settle_months(api, admin, "RA-1", Q3)
    ok(api.post("/v1/contracts/RA-1/statements/2026-07/issue", headers=admin))
    provider = headers("provider", "Connectcorp")
    for period in Q3:
        entry = {"period": period, "amount": "21000.00", "category": "field service"}
        ok(api.post("/v1/contracts/RA-1/costs", json=entry, headers=provider), 201)
    return "RA-1"


def test_the_pack_shows_each_month_against_its_targets(
    api: Any, quarter: str, headers: Any
) -> None:
    pack = ok(api.get("/v1/contracts/RA-1/reviews/2026-Q3", headers=headers("customer", "MineCo")))
    july, august, september = pack["months"]
    assert [m["status"] for m in pack["months"]] == ["issued", "draft", "draft"]
    assert (
        july["targets"][0] | {"value": 0.93, "target": 0.95, "status": "penalty"}
        == july["targets"][0]
    )
    assert july["money"]["penalty"] == "-1000.00"
    assert july["downtime_min"]["planned"] == 600
    assert august["downtime_min"]["missing"] == 1200
    assert august["completeness"]["share"] == pytest.approx(1 - 1200 / 44640, abs=1e-6)
    assert september["downtime_min"]["customer"] == 300
    assert july["value"]["value_to_customer"] == "105400.00"  # 34000 x 3.10
    assert pack["totals"]["money"]["penalty"] == "-3250.00"
    kinds = {p["kind"] for p in pack["proposals"]}
    assert "chronic_penalty" in kinds and "unfair_split" not in kinds


def test_both_parties_see_the_same_kpis_and_money(api: Any, quarter: str, headers: Any) -> None:
    url = "/v1/contracts/RA-1/reviews/2026-Q3"
    customer = ok(api.get(url, headers=headers("customer", "MineCo")))
    provider = ok(api.get(url, headers=headers("provider", "Connectcorp")))
    for mine, theirs in zip(customer["months"], provider["months"], strict=True):
        for key in ("kpis", "targets", "money", "downtime_min", "completeness"):
            assert mine[key] == theirs[key], key
    assert provider["view"] == "provider"
    assert provider["months"][0]["value"]["provider_margin"] == "5000.00"  # 26000 - 21000
    assert "cost" in provider["totals"]["value"]


def test_a_malformed_quarter_is_rejected(api: Any, admin: dict[str, str], create: Any) -> None:
    create()
    for bad in ("2026-Q5", "2026Q1", "0000-Q1"):
        assert api.get(f"/v1/contracts/RA-1/reviews/{bad}", headers=admin).status_code == 422


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90, check=False
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_review_page_renders_in_a_browser_without_errors(
    api: Any, quarter: str, headers: Any, tmp_path: Path
) -> None:
    url = "/v1/contracts/RA-1/reviews/2026-Q3?format=html"
    response = api.get(url, headers=headers("provider", "Connectcorp"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "http://" not in html and "https://" not in html and "<script" not in html
    page = tmp_path / "review.html"
    page.write_text(html, encoding="utf-8")

    dom = _chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") >= 5
    errors = [
        line
        for line in dom.stderr.splitlines()
        if "Uncaught" in line or ("CONSOLE" in line and "error" in line.lower())
    ]
    assert errors == []

    shot = tmp_path / "review.png"
    run = _chromium(
        f"--screenshot={shot}",
        "--window-size=1280,2400",
        page.as_uri(),
        profile=tmp_path / "profile-shot",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert _png_size(shot) == (1280, 2400)
    assert shot.stat().st_size > 50_000  # charts and tables, not a blank page
    if os.environ.get("VIU_WRITE_REVIEW_EXAMPLE"):
        shutil.copyfile(shot, REPO / "docs" / "review-example.png")


def test_a_quarter_without_statements_still_renders(
    api: Any, admin: dict[str, str], create: Any
) -> None:
    create()
    pack = ok(api.get("/v1/contracts/RA-1/reviews/2026-Q2", headers=admin))
    assert [m["status"] for m in pack["months"]] == ["not_settled"] * 3
    page = api.get("/v1/contracts/RA-1/reviews/2026-Q2?format=html", headers=admin)
    assert page.status_code == 200 and "No open proposals" in page.text


def test_the_pack_lists_decisions_per_party_disputes_pending_annotations_and_actions(
    api: Any, quarter: str, headers: Any, admin: dict[str, str]
) -> None:
    customer, provider = headers("customer", "MineCo"), headers("provider", "Connectcorp")
    [chronic] = [
        p
        for p in ok(api.get("/v1/contracts/RA-1/proposals?status=open", headers=customer))
        if p["kind"] == "chronic_penalty"
    ]
    ok(api.post(f"/v1/proposals/{chronic['id']}/accept", headers=customer))
    note = {
        "device_id": "ra-a",
        "from": "2026-08-03T00:00:00Z",
        "to": "2026-08-03T06:00:00Z",
        "cause": "external",
        "note": "grid outage",
    }
    ok(api.post("/v1/annotations", json=note, headers=customer), 201)
    raised = {"contract_id": "RA-1", "period": "2026-08", "reason": "the gap was the network"}
    ok(api.post("/v1/disputes", json=raised, headers=provider), 201)
    work = {"title": "swap the gateway", "owner": "provider", "due": "2026-09-30"}
    ok(api.post("/v1/contracts/RA-1/actions", json=work, headers=customer), 201)

    pack = ok(api.get("/v1/contracts/RA-1/reviews/2026-Q3", headers=customer))
    [open_chronic] = [p for p in pack["proposals"] if p["id"] == chronic["id"]]
    assert [d["party"] for d in open_chronic["decisions"]] == ["customer"]
    assert open_chronic["awaiting"] == ["provider"]
    [pending] = pack["pending_annotations"]
    assert (pending["party"], pending["awaiting"]) == ("customer", "provider")
    [dispute] = pack["disputes"]
    assert (dispute["raised_by_party"], dispute["status"]) == ("provider", "open")
    [action] = pack["actions"]
    assert action["overdue"] is True and pack["overdue_actions"][0]["title"] == "swap the gateway"

    today = period_of(datetime.now(UTC), "UTC").quarter
    now_pack = ok(api.get(f"/v1/contracts/RA-1/reviews/{today}", headers=provider))
    by_party = now_pack["decisions"]
    assert [d["decision"] for d in by_party["customer"]] == ["accepted", "approved"]
    assert by_party["provider"] == []

    page = api.get("/v1/contracts/RA-1/reviews/2026-Q3?format=html", headers=customer).text
    for heading in (
        "Value promised against delivered",
        "Corrective actions",
        "Decisions since the previous review",
        "Disputes",
        "Annotations awaiting approval",
    ):
        assert heading in page
    assert "swap the gateway" in page, page[page.find("Corrective actions") :][:1500]
    assert "Awaiting the provider" in page
