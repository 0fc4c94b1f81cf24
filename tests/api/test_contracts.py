"""Contracts API (spec §2): validation naming the field, immutable versions, scoping."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.settlement.test_lifecycle import CONTRACT


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _post(api: Any, headers: dict[str, str], **changes: Any) -> Any:
    body = copy.deepcopy(CONTRACT)
    body.update(changes)
    return api.post("/v1/contracts", json=body, headers=headers)


def test_contract_is_created_with_version_1_and_read_back(api, admin) -> None:  # type: ignore[no-untyped-def]
    r = _post(api, admin)
    assert r.status_code == 201
    got = api.get("/v1/contracts/LC-1", headers=admin).json()
    assert got["version"] == 1 and got["terms"]["fixed_fee"] == "1000.00"
    assert got["versions"] == [{"version": 1, "effective_from": "2026-01"}]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "red"}, "colour"),
        (
            {"terms": {"fixed_fee": "1", "usage": {"tiers": [{"up_to": None, "price": "-1"}]}}},
            "price",
        ),
        ({"terms": {"fixed_fee": "1", "penalty_cap_pct": 1.5}}, "penalty_cap_pct"),
        ({"terms": {"fixed_fee": "1", "kpis": [{"kpi": "happiness", "target": 1}]}}, "kpi"),
        (
            {
                "terms": {
                    "fixed_fee": "1",
                    "usage": {
                        "tiers": [
                            {"up_to": 50, "price": "1"},
                            {"up_to": 10, "price": "1"},
                            {"up_to": None, "price": "1"},
                        ]
                    },
                }
            },
            "tiers",
        ),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"currency": "XXQ"}, "currency"),
    ],
)
def test_invalid_contract_is_422_naming_the_field(api, admin, change, field) -> None:  # type: ignore[no-untyped-def]
    r = _post(api, admin, **change)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert any(field in e["field"] for e in r.json()["errors"]), r.json()


def test_a_device_belongs_to_one_contract(api, admin) -> None:  # type: ignore[no-untyped-def]
    assert _post(api, admin).status_code == 201
    r = _post(api, admin, contract_id="LC-2")
    assert r.status_code == 409 and "lc-a" in r.json()["detail"]


def test_duplicate_contract_id_is_a_conflict(api, admin) -> None:  # type: ignore[no-untyped-def]
    assert _post(api, admin).status_code == 201
    assert _post(api, admin, devices=["other"]).status_code == 409


def test_a_new_version_must_govern_a_later_period(api, admin) -> None:  # type: ignore[no-untyped-def]
    _post(api, admin)
    v = {
        k: v
        for k, v in copy.deepcopy(CONTRACT).items()
        if k not in ("contract_id", "provider", "customer")
    }
    assert api.post("/v1/contracts/LC-1/versions", json=v, headers=admin).status_code == 409
    v["effective_from"] = "2026-06"
    r = api.post("/v1/contracts/LC-1/versions", json=v, headers=admin)
    assert r.status_code == 201 and r.json()["version"] == 2
    versions = api.get("/v1/contracts/LC-1/versions", headers=admin).json()
    assert [x["effective_from"] for x in versions] == ["2026-01", "2026-06"]


def test_other_parties_cannot_see_a_contract(api, admin, make_token) -> None:  # type: ignore[no-untyped-def]
    _post(api, admin)
    own = _h(make_token("customer", "Minecorp"))
    other = _h(make_token("customer", "Othercorp"))
    assert api.get("/v1/contracts/LC-1", headers=own).status_code == 200
    r = api.get("/v1/contracts/LC-1", headers=other)
    assert r.status_code == 404
    assert api.get("/v1/contracts", headers=other).json()["items"] == []


def test_only_the_contract_provider_may_write_it(api, admin, make_token) -> None:  # type: ignore[no-untyped-def]
    assert _post(api, _h(make_token("customer", "Minecorp"))).status_code == 403
    assert _post(api, _h(make_token("provider", "Othercorp"))).status_code == 403
    assert _post(api, _h(make_token("provider", "Equipco"))).status_code == 201


def test_contracts_list_pages(api, admin) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        assert _post(api, admin, contract_id=f"P-{i}", devices=[f"p-{i}"]).status_code == 201
    page1 = api.get("/v1/contracts?limit=2", headers=admin).json()
    assert [c["contract_id"] for c in page1["items"]] == ["P-0", "P-1"]
    page2 = api.get(f"/v1/contracts?limit=2&after={page1['next_after']}", headers=admin).json()
    assert [c["contract_id"] for c in page2["items"]] == ["P-2"] and page2["next_after"] is None
