"""Disputes (spec §7.2, §3.4): raised by one party, resolved by the other, blocking issue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.proposals.conftest import contract, daily_samples, settle_months
from tests.settlement.helpers import ok, post_samples

AUGUST = "2026-08"
DAY_ONE = {"from": "2026-08-01T00:00:00Z", "to": "2026-08-02T00:00:00Z"}


@pytest.fixture
def august(api: Any, admin: dict[str, str], create: Any) -> str:
    """RA-1 with a draft August at availability 0.93 (a 1,000.00 penalty), from real samples."""
    create()
    post_samples(api, admin, "ra-a", daily_samples(AUGUST, 0.93))
    settle_months(api, admin, "RA-1", [AUGUST])
    return "RA-1"


@pytest.fixture
def parties(headers: Callable[..., dict[str, str]]) -> dict[str, dict[str, str]]:
    return {
        "provider": headers("provider", "Connectcorp"),
        "customer": headers("customer", "MineCo"),
        "finance": headers("finance", None),
        "stranger": headers("customer", "OtherCo"),
    }


def _raise(api: Any, who: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"contract_id": "RA-1", "period": AUGUST, "reason": "not our downtime", **extra}
    return ok(api.post("/v1/disputes", json=body, headers=who), 201)


def _issue(api: Any, who: dict[str, str], body: Any = None) -> Any:
    return api.post(f"/v1/contracts/RA-1/statements/{AUGUST}/issue", json=body, headers=who)


def _penalty(api: Any, who: dict[str, str]) -> str:
    statement = ok(api.get(f"/v1/contracts/RA-1/statements/{AUGUST}", headers=who))
    return next(ln["amount"] for ln in statement["lines"] if ln["kind"] == "penalty")


def test_an_open_dispute_blocks_issue_until_the_other_party_resolves_it(
    api: Any, august: str, parties: dict[str, dict[str, str]]
) -> None:
    dispute = _raise(api, parties["customer"], line_kind="penalty", kpi="availability")
    assert dispute["status"] == "open" and dispute["raised_by_party"] == "customer"
    blocked = _issue(api, parties["finance"])
    assert blocked.status_code == 409 and str(dispute["id"]) in blocked.json()["detail"]
    url = f"/v1/disputes/{dispute['id']}/resolve"
    body = {"outcome": "dismissed", "note": "the log shows a bearing failure"}
    assert api.post(url, json=body, headers=parties["customer"]).status_code == 403
    closed = ok(api.post(url, json=body, headers=parties["provider"]))
    assert (closed["status"], closed["note"]) == ("dismissed", "the log shows a bearing failure")
    assert [(d["party"], d["decision"]) for d in closed["decisions"]] == [
        ("customer", "raised"),
        ("provider", "dismissed"),
    ]
    assert ok(_issue(api, parties["finance"]))["status"] == "issued"
    assert api.post(url, json=body, headers=parties["provider"]).status_code == 409


def test_finance_may_issue_over_a_dispute_with_an_override_reason_which_is_recorded(
    api: Any, august: str, parties: dict[str, dict[str, str]], admin: dict[str, str]
) -> None:
    dispute = _raise(api, parties["provider"])
    reason = "month-end close; the dispute continues as an adjustment"
    assert ok(_issue(api, parties["finance"], {"override_reason": reason}))["status"] == "issued"
    [listed] = ok(api.get("/v1/contracts/RA-1/disputes?status=open", headers=parties["customer"]))
    assert listed["id"] == dispute["id"] and listed["override"]["reason"] == reason
    entry = ok(api.get("/v1/audit?action=statement.issue", headers=admin))["items"][0]
    assert entry["details"]["override_reason"] == reason
    assert entry["details"]["disputes"] == [dispute["id"]]


def test_an_upheld_dispute_becomes_an_annotation_and_the_period_is_resettled(
    api: Any, august: str, parties: dict[str, dict[str, str]], admin: dict[str, str]
) -> None:
    assert _penalty(api, parties["customer"]) == "-1000.00"
    dispute = _raise(api, parties["provider"], line_kind="penalty", kpi="availability")
    upheld = ok(
        api.post(
            f"/v1/disputes/{dispute['id']}/resolve",
            json={
                "outcome": "upheld",
                "note": "day one was our feed stop",
                "annotation": {"device_id": "ra-a", **DAY_ONE, "cause": "customer"},
            },
            headers=parties["customer"],
        )
    )
    assert upheld["status"] == "upheld"
    assert upheld["result"]["settlement"]["outcome"] == "updated"
    [note] = ok(api.get("/v1/annotations?contract_id=RA-1", headers=parties["provider"]))
    assert note["id"] == upheld["result"]["annotation_id"] and note["status"] == "approved"
    assert {d["party"] for d in note["decisions"]} == {"provider", "customer"}
    # day one's 100.8 down minutes excused: 41,515.2 / 44,539.2 = 0.932105 -> 1.7895 points
    statement = ok(api.get(f"/v1/contracts/RA-1/statements/{AUGUST}", headers=admin))
    assert statement["kpis"]["availability"] == 0.932105
    assert _penalty(api, parties["customer"]) == "-894.75"


def test_an_upheld_dispute_of_an_annotation_withdraws_it(
    api: Any, admin: dict[str, str], create: Any, parties: dict[str, dict[str, str]]
) -> None:
    create(contract(annotation_approval="none"))
    post_samples(api, admin, "ra-a", daily_samples(AUGUST, 0.90))
    note = {"device_id": "ra-a", **DAY_ONE, "cause": "planned"}
    annotation = ok(api.post("/v1/annotations", json=note, headers=parties["provider"]), 201)
    assert annotation["status"] == "approved"  # the contract waives approval
    settle_months(api, admin, "RA-1", [AUGUST])
    before = _penalty(api, admin)
    dispute = _raise(api, parties["customer"], annotation_id=annotation["id"])
    ok(
        api.post(
            f"/v1/disputes/{dispute['id']}/resolve",
            json={"outcome": "upheld", "note": "no planned stop that day"},
            headers=admin,
        )
    )
    [withdrawn] = ok(api.get("/v1/annotations?device_id=ra-a", headers=admin))
    assert withdrawn["status"] == "rejected"
    after = _penalty(api, admin)
    assert float(after) < float(before)  # the planned stop no longer excuses day one


def test_disputes_are_scoped_to_the_contracts_parties(
    api: Any, august: str, parties: dict[str, dict[str, str]]
) -> None:
    dispute = _raise(api, parties["customer"])
    stranger = parties["stranger"]
    assert api.get("/v1/contracts/RA-1/disputes", headers=stranger).status_code == 404
    body = {"outcome": "dismissed", "note": "x"}
    url = f"/v1/disputes/{dispute['id']}/resolve"
    assert api.post(url, json=body, headers=stranger).status_code == 404
    raised = {"contract_id": "RA-1", "period": AUGUST, "reason": "x"}
    assert api.post("/v1/disputes", json=raised, headers=stranger).status_code == 404
    for_provider = {**raised, "party": "provider"}
    assert api.post("/v1/disputes", json=for_provider, headers=parties["customer"]).status_code == (
        403
    )
