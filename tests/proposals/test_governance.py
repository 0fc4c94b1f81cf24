"""Cause-aware proposals through the API (spec §4, §7.1): who is at fault decides the remedy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from schemas.periods import period_of
from tests.proposals.conftest import contract, settle_months, write_rollups
from tests.settlement.helpers import ok

SUMMER = ["2026-06", "2026-07", "2026-08"]
FLEET = {"devices": ["ra-a", "ra-b"]}


def _next_period() -> str:
    return str(period_of(datetime.now(UTC), "UTC").next())


def _open(api: Any, who: dict[str, str]) -> list[dict[str, Any]]:
    return ok(api.get("/v1/contracts/RA-1/proposals?status=open", headers=who))


def test_a_lagging_device_gets_a_corrective_action_which_both_parties_turn_into_work(
    api: Any, admin: dict[str, str], db: Engine, create: Any, headers: Any
) -> None:
    terms = create(contract(**FLEET))
    for period, lagging in zip(SUMMER, (0.90, 0.89, 0.91), strict=True):
        per_device = {"ra-a": {"availability": 0.97}, "ra-b": {"availability": lagging}}
        write_rollups(db, terms, period, per_device, throughput=17000)
    settle_months(api, admin, "RA-1", SUMMER)
    [proposal] = _open(api, admin)
    assert (proposal["kind"], proposal["remedy"]) == ("chronic_penalty", "corrective_action")
    assert proposal["proposed"]["devices"] == ["ra-b"] and proposal["proposed_terms"] is None
    assert proposal["evidence"][0]["devices"] == {"ra-a": 0.97, "ra-b": 0.9}
    impact = proposal["impact"]
    assert impact["parties"] == {"provider": "0.00", "customer": "0.00"}
    # fleet 0.935, 0.93, 0.94: 1.5 + 2 + 1 points x 500.00 charged to the provider
    assert impact["total"]["at_stake"] == "2250.00"
    assert "moves no money" in impact["summary"] and "EUR 2,250.00" in impact["summary"]

    provider, customer = headers("provider", "Connectcorp"), headers("customer", "MineCo")
    ok(api.post(f"/v1/proposals/{proposal['id']}/accept", headers=provider))
    decided = ok(api.post(f"/v1/proposals/{proposal['id']}/accept", headers=customer))
    assert decided["status"] == "accepted" and decided["accepted_version"] is None
    [action] = ok(api.get("/v1/contracts/RA-1/actions", headers=customer))
    assert action["id"] == decided["action_id"] and action["proposal_id"] == proposal["id"]
    assert (action["owner"], action["kpi"], action["devices"]) == (
        "provider",
        "availability",
        ["ra-b"],
    )
    assert action["due"].startswith(_next_period())
    versions = ok(api.get("/v1/contracts/RA-1/versions", headers=admin))
    assert [v["version"] for v in versions] == [1]  # no target cut


def test_a_fleet_where_no_device_meets_the_target_gets_a_lower_target(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    terms = create(contract(**FLEET))
    for period in SUMMER:
        per_device = {"ra-a": {"availability": 0.93}, "ra-b": {"availability": 0.92}}
        write_rollups(db, terms, period, per_device, throughput=17000)
    settle_months(api, admin, "RA-1", SUMMER)
    [proposal] = _open(api, admin)
    assert (proposal["remedy"], proposal["proposed"]["target"]) == ("change_terms", 0.925)
    summary = proposal["impact"]["summary"]
    # fleet 0.925 each month: 2.5 points x 500.00 no longer charged, three times
    assert summary.startswith(
        "Over 2026-06 to 2026-08 the customer would have paid the provider EUR 3,750.00 more."
    )
    assert f"From {_next_period()} on: availability target 95.0 % → 92.5 %." in summary


def test_unreachable_bonus_is_judged_on_the_last_six_settled_months_with_its_impact_explained(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    rule = {
        "kpi": "availability",
        "target": 0.95,
        "penalty": {"per_point": "500.00"},
        "bonus": {"above": 0.99, "per_point": "200.00"},
    }
    terms = create(contract(kpis=[rule]))
    months = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
    for period in months:
        write_rollups(db, terms, period, availability=0.90)
    settle_months(api, admin, "RA-1", months)
    kinds = {p["kind"]: p for p in _open(api, admin)}
    bonus = kinds["unreachable_bonus"]
    assert [e["period"] for e in bonus["evidence"]] == months
    assert bonus["impact"]["total"]["difference"] == "0.00"
    summary = bonus["impact"]["summary"]
    assert summary.startswith("No money would have moved between the parties over 2026-05")
    assert "never exceeded 95.0 %" in summary
    assert f"From {_next_period()} on: availability bonus from above 99.0 % to above 95.0 %" in (
        summary
    )


def test_the_database_keeps_versions_in_force_and_annotation_content_immutable(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    create()
    note = {
        "device_id": "ra-a",
        "from": "2026-08-01T00:00:00Z",
        "to": "2026-08-01T01:00:00Z",
        "cause": "planned",
    }
    annotation = ok(api.post("/v1/annotations", json=note, headers=admin), 201)
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO decisions (object_type, object_id, contract_id, party, decision, "
                "decided_by) VALUES ('proposal', 1, 'RA-1', 'provider', 'accepted', 'test')"
            )
        )
    refused = [
        "UPDATE contract_versions SET created_by = 'someone' WHERE contract_id = 'RA-1'",
        "DELETE FROM contract_versions WHERE contract_id = 'RA-1'",
        f"UPDATE annotations SET cause = 'customer' WHERE id = {annotation['id']}",
        f"DELETE FROM annotations WHERE id = {annotation['id']}",
        "UPDATE decisions SET decision = 'rejected'",
        "DELETE FROM decisions",
    ]
    for statement in refused:
        with pytest.raises(IntegrityError), db.begin() as conn:
            conn.execute(text(statement))
    with db.begin() as conn:
        conn.execute(
            text(f"UPDATE annotations SET status = 'rejected' WHERE id = {annotation['id']}")
        )


def test_the_review_shows_what_a_decision_of_the_previous_review_changed_since(
    api: Any, admin: dict[str, str], db: Engine, create: Any, headers: Any
) -> None:
    from services.settlement.proposals import decide

    terms = create()
    for period, availability in zip(SUMMER, (0.93, 0.92, 0.935), strict=True):
        write_rollups(db, terms, period, availability=availability)
    settle_months(api, admin, "RA-1", SUMMER)
    [proposal] = _open(api, admin)
    meeting = datetime(2026, 8, 20, 10, tzinfo=UTC)  # the review held in August
    with db.begin() as conn:
        for party in ("provider", "customer"):
            decide.accept(conn, "RA-1", [proposal["id"]], decide.Decider(party, "test"), meeting)
    for period in ("2026-09", "2026-10"):
        write_rollups(db, terms, period, availability=0.93)
    settle_months(api, admin, "RA-1", ["2026-09", "2026-10"])
    pack = ok(api.get("/v1/contracts/RA-1/reviews/2026-Q3", headers=headers("customer", "MineCo")))
    [decided] = pack["decided_proposals"]
    since = decided["changed_since"]
    assert (since["version"], since["periods"]) == (2, ["2026-09", "2026-10"])
    assert [p["value"] for p in since["kpi"]["since"]] == [0.93, 0.93]
    # target 0.925 instead of 0.95: two penalties of 2 points x 500.00 no longer charged
    assert since["money"]["difference"] == "2000.00"
    assert since["money"]["parties"] == {"provider": "2000.00", "customer": "-2000.00"}
