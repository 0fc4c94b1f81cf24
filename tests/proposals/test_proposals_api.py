"""Proposals through the API: from stored usage to an open proposal, dedupe, decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text

from schemas.periods import period_of
from tests.proposals.conftest import contract, settle_months, write_rollups
from tests.settlement.helpers import ok

SUMMER = ["2026-06", "2026-07", "2026-08"]
PENALISED = (0.93, 0.92, 0.935)


def _penalised_summer(api: Any, admin: dict[str, str], db: Engine, create: Any, **body: Any) -> str:
    terms = create(contract(**body))
    for period, availability in zip(SUMMER, PENALISED, strict=True):
        write_rollups(db, terms, period, availability=availability)
    settle_months(api, admin, "RA-1", SUMMER)
    return "RA-1"


def _open(api: Any, headers: dict[str, str], contract_id: str = "RA-1") -> list[dict[str, Any]]:
    return ok(api.get(f"/v1/contracts/{contract_id}/proposals?status=open", headers=headers))


def _next_period() -> str:
    return str(period_of(datetime.now(UTC), "UTC").next())


def test_daily_telemetry_with_chronic_penalties_leads_to_an_open_proposal(
    api: Any, admin: dict[str, str], create: Any
) -> None:
    create()
    for period, availability in zip(SUMMER, PENALISED, strict=True):
        _year, month = map(int, period.split("-"))
        days = 31 if month in (7, 8) else 30
        samples = [
            {
                "ts": f"{period}-{day:02d}T00:00:00Z",
                "interval_s": 86400,
                "uptime_min": round(1440 * availability, 4),
                "quality_min": round(1440 * availability, 4),
                "throughput": 1200,
            }
            for day in range(1, days + 1)
        ]
        ok(api.post("/v1/telemetry/ra-a", json={"samples": samples}, headers=admin))
    settle_months(api, admin, "RA-1", SUMMER)

    [proposal] = _open(api, admin)
    assert {"id", "kind", "kpi", "term", "status", "evidence", "current", "proposed"} <= set(
        proposal
    )
    assert (proposal["kind"], proposal["kpi"], proposal["status"]) == (
        "chronic_penalty",
        "availability",
        "open",
    )
    assert [e["period"] for e in proposal["evidence"]] == SUMMER
    assert proposal["proposed"]["target"] == 0.925
    assert proposal["rationale"]


def test_impact_resettles_the_window_and_shows_each_partys_difference(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    _penalised_summer(api, admin, db, create)
    [proposal] = _open(api, admin)
    impact = proposal["impact"]
    # 2, 3 and 1.5 points x 500.00 of penalties are no longer charged at target 0.925
    assert [p["difference"] for p in impact["periods"]] == ["1000.00", "1500.00", "750.00"]
    assert impact["parties"] == {"provider": "3250.00", "customer": "-3250.00"}
    assert impact["periods"][0]["lines"] == {"penalty": "1000.00"}


def test_the_same_drift_twice_does_not_create_a_second_proposal(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    _penalised_summer(api, admin, db, create)
    [first] = _open(api, admin)
    again = ok(api.post("/v1/contracts/RA-1/proposals/detect", headers=admin))
    assert (again["created"], again["updated"]) == ([], [first["id"]])
    settle_months(api, admin, "RA-1", SUMMER)
    assert [p["id"] for p in _open(api, admin)] == [first["id"]]
    assert len(ok(api.get("/v1/contracts/RA-1/proposals", headers=admin))) == 1


def test_a_changed_proposed_term_supersedes_the_open_proposal(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    _penalised_summer(api, admin, db, create)
    [old] = _open(api, admin)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM rollups WHERE bucket >= '2026-08-01'"))
    write_rollups(db, _terms(), "2026-08", availability=0.88)
    settle_months(api, admin, "RA-1", ["2026-08"])
    [new] = _open(api, admin)
    assert new["id"] != old["id"] and new["proposed"]["target"] == 0.91
    everything = {p["id"]: p for p in ok(api.get("/v1/contracts/RA-1/proposals", headers=admin))}
    assert everything[old["id"]]["status"] == "superseded"
    assert everything[old["id"]]["superseded_by"] == new["id"]


def _terms() -> Any:
    from tests.proposals.conftest import terms_of

    return terms_of(contract())


def _accept(api: Any, proposal_id: int, who: dict[str, str]) -> dict[str, Any]:
    return ok(api.post(f"/v1/proposals/{proposal_id}/accept", headers=who))


def _versions(api: Any, admin: dict[str, str]) -> list[dict[str, Any]]:
    return ok(api.get("/v1/contracts/RA-1/versions", headers=admin))


def test_a_proposal_is_accepted_only_when_both_parties_accepted_it(
    api: Any, admin: dict[str, str], db: Engine, create: Any, headers: Any
) -> None:
    _penalised_summer(api, admin, db, create)
    [proposal] = _open(api, admin)
    customer, provider = headers("customer", "MineCo"), headers("provider", "Connectcorp")
    half = _accept(api, proposal["id"], customer)
    assert (half["status"], half["accepted_version"]) == ("open", None)
    assert [(d["party"], d["decision"]) for d in half["decisions"]] == [("customer", "accepted")]
    assert "customer@MineCo" in half["decisions"][0]["by"] and half["decisions"][0]["at"]
    assert len(_versions(api, admin)) == 1
    accepted = _accept(api, proposal["id"], provider)
    assert accepted["status"] == "accepted" and accepted["decided_at"]
    assert [d["party"] for d in accepted["decisions"]] == ["provider", "customer"]
    assert accepted["accepted_version"] == 2
    version = ok(api.get("/v1/contracts/RA-1", headers=admin))
    assert (version["version"], version["effective_from"]) == (2, _next_period())
    assert version["terms"]["kpis"][0]["target"] == 0.925
    assert version["terms"]["kpis"][0]["bonus"]["above"] == 0.97
    assert f"proposals {proposal['id']}" in version["created_by"]
    again = api.post(f"/v1/proposals/{proposal['id']}/accept", headers=provider)
    assert again.status_code == 409


def _two_open(api: Any, admin: dict[str, str], db: Engine, create: Any) -> list[int]:
    terms = create()
    for period, availability in zip(SUMMER, PENALISED, strict=True):
        write_rollups(db, terms, period, availability=availability, throughput=21000)
    settle_months(api, admin, "RA-1", SUMMER)
    ids = sorted(p["id"] for p in _open(api, admin))
    assert len(ids) == 2
    return ids


def test_proposals_accepted_one_by_one_in_a_month_share_one_version(
    api: Any, admin: dict[str, str], db: Engine, create: Any, headers: Any
) -> None:
    ids = _two_open(api, admin, db, create)
    for proposal_id in ids:
        for who in (headers("provider", "Connectcorp"), headers("customer", "MineCo")):
            _accept(api, proposal_id, who)
    decided = [ok(api.get(f"/v1/proposals/{i}", headers=admin)) for i in ids]
    assert [(d["status"], d["accepted_version"]) for d in decided] == [("accepted", 2)] * 2
    versions = _versions(api, admin)
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["terms"]["kpis"][0]["target"] == 0.925
    assert versions[1]["terms"]["usage"]["minimum_commitment"] == 21000
    assert f"proposals {ids[0]}, {ids[1]}" in versions[1]["created_by"]


def test_accepting_several_proposals_at_once_applies_every_change(
    api: Any, admin: dict[str, str], db: Engine, create: Any, headers: Any
) -> None:
    ids = _two_open(api, admin, db, create)
    url = "/v1/contracts/RA-1/proposals/accept"
    first = ok(
        api.post(url, json={"proposal_ids": ids}, headers=headers("provider", "Connectcorp"))
    )
    assert {d["status"] for d in first} == {"open"}
    decided = ok(api.post(url, json={"proposal_ids": ids}, headers=headers("customer", "MineCo")))
    assert {d["accepted_version"] for d in decided} == {2}
    assert [v["version"] for v in _versions(api, admin)] == [1, 2]
    latest = ok(api.get("/v1/contracts/RA-1", headers=admin))
    assert latest["terms"]["kpis"][0]["target"] == 0.925
    assert latest["terms"]["usage"]["minimum_commitment"] == 21000


def test_an_admin_acts_for_the_party_it_names_and_the_record_says_so(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    _penalised_summer(api, admin, db, create)
    [proposal] = _open(api, admin)
    url = f"/v1/proposals/{proposal['id']}/accept"
    unnamed = api.post(url, headers=admin)
    assert unnamed.status_code == 422 and "party" in unnamed.json()["detail"]
    half = ok(api.post(url, json={"party": "customer"}, headers=admin))
    [decision] = half["decisions"]
    assert decision["party"] == "customer" and decision["as_admin"] is True
    assert "for the customer" in decision["by"]


def test_reject_records_the_reason_and_the_change_is_not_proposed_again(
    api: Any, admin: dict[str, str], db: Engine, create: Any, headers: Any
) -> None:
    _penalised_summer(api, admin, db, create)
    [proposal] = _open(api, admin)
    provider = headers("provider", "Connectcorp")
    url = f"/v1/proposals/{proposal['id']}/reject"
    for missing in (None, {}, {"reason": "  "}):
        refused = api.post(url, json=missing, headers=provider)
        assert refused.status_code == 422
        assert "needs a reason" in refused.json()["detail"]
        assert refused.json()["errors"][0]["field"] == "reason"
    _accept(api, proposal["id"], headers("customer", "MineCo"))
    rejected = ok(api.post(url, json={"reason": "crusher overhaul in Q3"}, headers=provider))
    assert (rejected["status"], rejected["reason"]) == ("rejected", "crusher overhaul in Q3")
    assert "provider@Connectcorp" in rejected["decided_by"]
    assert [(d["party"], d["decision"]) for d in rejected["decisions"]] == [
        ("provider", "rejected"),
        ("customer", "accepted"),
    ]
    ok(api.post("/v1/contracts/RA-1/proposals/detect", headers=admin))
    assert _open(api, admin) == []


def test_only_the_contracts_own_parties_decide(
    api: Any, admin: dict[str, str], db: Engine, create: Any, headers: Any
) -> None:
    _penalised_summer(api, admin, db, create)
    [proposal] = _open(api, admin)
    url = f"/v1/proposals/{proposal['id']}/accept"
    assert api.post(url, headers=headers("customer", "OtherCo")).status_code == 404
    assert api.post(url, headers=headers("finance", None)).status_code == 403
    for_provider = {"party": "provider"}
    customer = headers("customer", "MineCo")
    assert api.post(url, json=for_provider, headers=customer).status_code == 403
    assert ok(api.get(f"/v1/proposals/{proposal['id']}", headers=admin))["decisions"] == []
    assert (
        api.get("/v1/contracts/RA-1/proposals", headers=headers("provider", "X")).status_code == 404
    )
    assert (
        api.post("/v1/proposals/999999/reject", json={"reason": "x"}, headers=admin).status_code
        == 404
    )


@pytest.mark.parametrize("value", [0, 2**63])
def test_out_of_range_proposal_ids_are_rejected_not_crashed(
    api: Any, admin: dict[str, str], value: int
) -> None:
    assert api.get(f"/v1/proposals/{value}", headers=admin).status_code == 422


def test_detector_thresholds_are_configurable_per_contract(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    terms = create()
    for period in SUMMER:
        write_rollups(db, terms, period, availability=0.962)
    settle_months(api, admin, "RA-1", SUMMER)
    assert _open(api, admin) == []
    loose = {"slack_points": 1}
    ok(api.put("/v1/contracts/RA-1/proposals/settings", json=loose, headers=admin))
    assert ok(api.get("/v1/contracts/RA-1/proposals/settings", headers=admin))["window"] == 3
    ok(api.post("/v1/contracts/RA-1/proposals/detect", headers=admin))
    assert [p["kind"] for p in _open(api, admin)] == ["slack_target"]
    bad = api.put("/v1/contracts/RA-1/proposals/settings", json={"window": 0}, headers=admin)
    assert bad.status_code == 422


def test_new_terms_get_a_full_window_before_they_are_judged(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    _penalised_summer(api, admin, db, create)
    [proposal] = _open(api, admin)
    body = {**contract(), "effective_from": "2026-09"}
    for key in ("contract_id", "provider", "customer"):
        body.pop(key)
    body["terms"]["kpis"][0]["target"] = 0.93
    ok(api.post("/v1/contracts/RA-1/versions", json=body, headers=admin), 201)
    write_rollups(db, _terms(), "2026-09", availability=0.90)
    settle_months(api, admin, "RA-1", ["2026-09"])
    assert [p["id"] for p in _open(api, admin)] == [proposal["id"]]
    url = f"/v1/proposals/{proposal['id']}/accept"
    ok(api.post(url, json={"party": "provider"}, headers=admin))
    stale = api.post(url, json={"party": "customer"}, headers=admin)
    assert stale.status_code == 409 and "changed since" in stale.json()["detail"]
