"""Every route x every role, exactly as README's "Who may do what" table says.

Allowed means the request got past authorization (any answer but 401, 403,
404 or 5xx: a 409 because an earlier role already issued the statement is
still "allowed"). Refused is 403; another party's contract is 404.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import REPO
from tests.proposals.conftest import contract

OWN, OTHER = "Connectcorp", "Othercorp"
CUSTOMER = "MineCo"
ROLES = ("admin", "provider", "customer", "finance", "auditor")
PRINCIPALS: dict[str, tuple[str, str | None]] = {
    "admin": ("admin", None),
    "provider": ("provider", OWN),
    "provider-other": ("provider", OTHER),
    "customer": ("customer", CUSTOMER),
    "customer-other": ("customer", OTHER),
    "finance": ("finance", None),
    "auditor": ("auditor", None),
}


def policy() -> dict[str, dict[str, str]]:
    text_ = (REPO / "README.md").read_text()
    section = text_[text_.index("## Who may do what") : text_.index("## Architecture")]
    rows = re.findall(r"^\| `([A-Z]+ /v1/[^`]*)` \|(.*)\|$", section, re.M)
    return {
        route: dict(zip(ROLES, (c.strip() for c in cells.split("|")), strict=True))
        for route, cells in rows
    }


POLICY = policy()


def expected(route: str, principal: str) -> set[str]:
    """What the table allows; another party's contract may be hidden rather than refused."""
    role, party = PRINCIPALS[principal]
    cell = POLICY[route][role]
    if cell == "\u2013":  # an en dash, as in the table
        return {"refused", "hidden"} if party == OTHER else {"refused"}
    if cell == "own" and party == OTHER:
        return {"refused"} if route == "POST /v1/contracts" else {"hidden"}
    return {"allowed"}


def classify(status: int) -> str:
    assert status < 500, status
    return {401: "unauthenticated", 403: "refused", 404: "hidden"}.get(status, "allowed")


SAMPLE = {
    "ts": "2026-08-02T00:00:00Z",
    "interval_s": 60,
    "uptime_min": 1,
    "quality_min": 1,
    "throughput": 2,
}


def request_for(route: str, w: dict[str, Any]) -> tuple[str, str, Any]:
    method, path = route.split(" ", 1)
    path = path.format(
        contract_id="RA-1", period="2026-08", device_id="ra-a", quarter="2026-Q3", **w
    )
    terms = {
        k: v for k, v in contract().items() if k not in ("contract_id", "provider", "customer")
    }
    bodies: dict[str, Any] = {
        "POST /v1/tokens": {"role": "auditor"},
        "POST /v1/users": {
            "email": "new.person@viu.example",
            "name": "New Person",
            "role": "auditor",
            "password": "correct horse battery",
        },
        "POST /v1/contracts": contract(contract_id="NEW-1", devices=["new-a"], provider=OWN),
        "POST /v1/contracts/{contract_id}/versions": {**terms, "effective_from": "2027-03"},
        "POST /v1/settlements/run": {"period": "2026-08", "contract_id": "RA-1"},
        "POST /v1/telemetry/{device_id}": SAMPLE,
        "POST /v1/annotations": {
            "device_id": "ra-a",
            "from": "2026-08-01T00:00:00Z",
            "to": "2026-08-01T01:00:00Z",
            "cause": "planned",
        },
        "PUT /v1/contracts/{contract_id}/proposals/settings": {},
        "POST /v1/contracts/{contract_id}/proposals/accept": {"proposal_ids": [w["proposal_id"]]},
        "POST /v1/proposals/{proposal_id}/reject": {"reason": "not this quarter"},
        "POST /v1/annotations/{annotation_id}/reject": {"reason": "our log shows a breakdown"},
        "POST /v1/disputes": {
            "contract_id": "RA-1",
            "period": "2026-08",
            "reason": "the July gap was a network outage",
        },
        "POST /v1/disputes/{dispute_id}/resolve": {"outcome": "dismissed", "note": "logs agree"},
        "POST /v1/contracts/{contract_id}/actions": {
            "title": "retrain operators",
            "owner": "customer",
            "due": "2027-01-31",
        },
        "POST /v1/actions/{action_id}/drop": {"reason": "superseded by the overhaul"},
        "POST /v1/contracts/{contract_id}/costs": {
            "period": "2026-08",
            "amount": "100.00",
            "category": "service",
            "note": "",
        },
        "POST /v1/contracts/{contract_id}/simulate": {
            "terms": terms,
            "from": "2026-06",
            "to": "2026-08",
        },
    }
    query = {
        "GET /v1/contracts/{contract_id}/kpis": "?from=2026-08-01&to=2026-08-03",
        "GET /v1/settlements": "?period=2026-08",
        "GET /v1/annotations": "?device_id=ra-a",
    }
    return method, path + query.get(route, ""), bodies.get(route)


def test_the_table_covers_every_route_of_the_api(api) -> None:  # type: ignore[no-untyped-def]
    routes = {
        f"{m.upper()} {p}"
        for p, ops in api.app.openapi()["paths"].items()
        if p.startswith("/v1")
        for m in ops
    }
    assert routes == set(POLICY)


@pytest.mark.parametrize("route", sorted(POLICY))
def test_route_answers_each_role_as_the_table_says(api, world, make_token, route) -> None:  # type: ignore[no-untyped-def]
    method, path, body = request_for(route, world)
    assert classify(api.request(method, path, json=body).status_code) == "unauthenticated"
    order = sorted(PRINCIPALS, key=lambda p: (expected(route, p) == {"allowed"}, p == "admin"))
    seen = {}
    for principal in order:  # refusals first: an allowed call may change the state
        role, party = PRINCIPALS[principal]
        headers = {"Authorization": f"Bearer {make_token(role, party)}"}
        r = api.request(method, path, json=body, headers=headers)
        seen[principal] = (classify(r.status_code), r.status_code, r.text[:200])
    wrong = {p: s for p, s in seen.items() if s[0] not in expected(route, p)}
    assert not wrong, wrong
