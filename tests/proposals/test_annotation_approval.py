"""Annotation approval (spec §1.3, §7.2): one party's annotation moves no money until the
other party approves it; approval on an issued month produces an adjustment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.proposals.conftest import contract, daily_samples, settle_months
from tests.settlement.helpers import ok, post_samples

AUGUST = "2026-08"
DAY_ONE = {"device_id": "ra-a", "from": "2026-08-01T00:00:00Z", "to": "2026-08-02T00:00:00Z"}


@pytest.fixture
def parties(headers: Callable[..., dict[str, str]]) -> dict[str, dict[str, str]]:
    return {
        "provider": headers("provider", "Connectcorp"),
        "customer": headers("customer", "MineCo"),
    }


def _august(api: Any, admin: dict[str, str], create: Any, **body: Any) -> None:
    create(contract(**body))
    post_samples(api, admin, "ra-a", daily_samples(AUGUST, 0.93))
    settle_months(api, admin, "RA-1", [AUGUST])


def _annotate(api: Any, who: dict[str, str], cause: str = "customer") -> dict[str, Any]:
    note = {**DAY_ONE, "cause": cause, "note": "feed stop"}
    return ok(api.post("/v1/annotations", json=note, headers=who), 201)


def _statements(api: Any, admin: dict[str, str]) -> dict[str, Any]:
    return ok(api.get(f"/v1/contracts/RA-1/statements/{AUGUST}", headers=admin))


def test_a_pending_annotation_moves_no_money_until_approved_then_adjusts_the_issued_month(
    api: Any, admin: dict[str, str], create: Any, parties: dict[str, dict[str, str]]
) -> None:
    _august(api, admin, create)
    ok(api.post(f"/v1/contracts/RA-1/statements/{AUGUST}/issue", headers=admin))
    note = _annotate(api, parties["provider"])
    assert note["status"] == "pending"
    assert [(d["party"], d["decision"]) for d in note["decisions"]] == [("provider", "approved")]
    pending = ok(
        api.get("/v1/annotations?contract_id=RA-1&status=pending", headers=parties["customer"])
    )
    assert [n["id"] for n in pending] == [note["id"]]

    settle_months(api, admin, "RA-1", [AUGUST])
    assert _statements(api, admin)["adjustments"] == []  # a pending annotation changes nothing

    url = f"/v1/annotations/{note['id']}/approve"
    assert api.post(url, headers=parties["provider"]).status_code == 403  # not its own
    approved = ok(api.post(url, headers=parties["customer"]))
    assert approved["status"] == "approved"
    assert {d["party"] for d in approved["decisions"]} == {"provider", "customer"}
    settle_months(api, admin, "RA-1", [AUGUST])
    adjustment = ok(
        api.get(f"/v1/contracts/RA-1/statements/{AUGUST}?seq=1", headers=parties["customer"])
    )
    # 1.7895 points instead of 2 at 500.00: 105.25 of the issued penalty given back
    assert adjustment["lines"] == [
        {
            "kind": "penalty",
            "kpi": "availability",
            "amount": "105.25",
            "explanation": adjustment["lines"][0]["explanation"],
        }
    ]


def test_a_rejection_needs_a_reason_and_a_rejected_annotation_never_counts(
    api: Any, admin: dict[str, str], create: Any, parties: dict[str, dict[str, str]]
) -> None:
    _august(api, admin, create)
    note = _annotate(api, parties["customer"], cause="planned")
    url = f"/v1/annotations/{note['id']}/reject"
    missing = api.post(url, headers=parties["provider"])
    assert missing.status_code == 422 and "needs a reason" in missing.json()["detail"]
    rejected = ok(
        api.post(url, json={"reason": "no stop was planned"}, headers=parties["provider"])
    )
    assert rejected["status"] == "rejected"
    by_party = {d["party"]: d for d in rejected["decisions"]}
    assert by_party["provider"]["reason"] == "no stop was planned"
    again = api.post(f"/v1/annotations/{note['id']}/approve", headers=parties["provider"])
    assert again.status_code == 409
    settle_months(api, admin, "RA-1", [AUGUST])
    assert _statements(api, admin)["kpis"]["availability"] == 0.93


def test_a_contract_may_waive_approval(
    api: Any, admin: dict[str, str], create: Any, parties: dict[str, dict[str, str]]
) -> None:
    _august(api, admin, create, annotation_approval="none")
    assert _annotate(api, parties["provider"])["status"] == "approved"
    settle_months(api, admin, "RA-1", [AUGUST])
    assert _statements(api, admin)["kpis"]["availability"] == 0.932105


def test_an_admin_annotation_is_a_data_fix_that_counts_at_once_and_is_audited_as_such(
    api: Any, admin: dict[str, str], create: Any
) -> None:
    _august(api, admin, create)
    note = _annotate(api, admin)
    assert (note["status"], note["party"], note["decisions"]) == ("approved", None, [])
    entry = ok(api.get("/v1/audit?action=annotation.create", headers=admin))["items"][0]
    assert entry["details"]["admin_data_fix"] is True
    settle_months(api, admin, "RA-1", [AUGUST])
    assert _statements(api, admin)["kpis"]["availability"] == 0.932105


def test_other_parties_cannot_see_or_decide_annotations(
    api: Any, admin: dict[str, str], create: Any, parties: dict[str, dict[str, str]], headers: Any
) -> None:
    _august(api, admin, create)
    note = _annotate(api, parties["provider"])
    stranger = headers("customer", "OtherCo")
    assert api.post(f"/v1/annotations/{note['id']}/approve", headers=stranger).status_code == 404
    assert api.get("/v1/annotations?contract_id=RA-1", headers=stranger).status_code == 404
    for_provider = {"party": "provider"}
    url = f"/v1/annotations/{note['id']}/approve"
    assert api.post(url, json=for_provider, headers=parties["customer"]).status_code == 403
