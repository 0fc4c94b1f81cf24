"""Fixtures shared by the API tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from tests.proposals.conftest import contract, settle_months, terms_of, write_rollups
from tests.settlement.helpers import ok

OWN, CUSTOMER = "Connectcorp", "MineCo"
PASSWORD = "correct horse battery"


@pytest.fixture
def world(
    api: Any, admin: dict[str, str], db: Any, make_token: Callable[..., str]
) -> dict[str, Any]:
    """A contract with three settled months of chronic penalties: an open proposal,
    a dead letter of its device, a token to revoke, the customer's pending annotation
    and open dispute, and an open action owned by the provider."""
    body = contract(contract_id="RA-1", provider=OWN, customer=CUSTOMER)
    ok(api.post("/v1/contracts", json=body, headers=admin), 201)
    terms = terms_of(body)
    for period in ("2026-06", "2026-07", "2026-08"):
        write_rollups(db, terms, period, availability=0.93)
    settle_months(api, admin, "RA-1", ["2026-06", "2026-07", "2026-08"])
    bad = {
        "ts": "2026-08-01T00:00:00Z",
        "interval_s": 60,
        "uptime_min": 99,
        "quality_min": 0,
        "throughput": 0,
    }
    api.post("/v1/telemetry/ra-a", json={"samples": [bad]}, headers=admin)
    with db.connect() as conn:
        proposal = conn.execute(
            text("SELECT min(id) FROM proposals WHERE status = 'open'")
        ).scalar()
        dead_letter = conn.execute(text("SELECT min(id) FROM dead_letters")).scalar()
    token = ok(api.post("/v1/tokens", json={"role": "auditor"}, headers=admin), 201)["id"]
    person = {"email": "ada@viu.example", "name": "Ada", "role": "auditor", "password": PASSWORD}
    user = ok(api.post("/v1/users", json=person, headers=admin), 201)["id"]
    customer = {"Authorization": f"Bearer {make_token('customer', CUSTOMER)}"}
    note = {
        "device_id": "ra-a",
        "from": "2026-08-01T00:00:00Z",
        "to": "2026-08-01T02:00:00Z",
        "cause": "customer",
        "note": "feed stopped by MineCo",
    }
    annotation = ok(api.post("/v1/annotations", json=note, headers=customer), 201)["id"]
    raised = {
        "contract_id": "RA-1",
        "period": "2026-08",
        "line_kind": "penalty",
        "kpi": "availability",
        "reason": "the feed stop was ours, not a breakdown",
    }
    dispute = ok(api.post("/v1/disputes", json=raised, headers=customer), 201)["id"]
    work = {"title": "replace the worn liner", "owner": "provider", "due": "2026-12-31"}
    action = ok(api.post("/v1/contracts/RA-1/actions", json=work, headers=admin), 201)["id"]
    assert proposal and dead_letter
    return {
        "proposal_id": proposal,
        "dead_letter_id": dead_letter,
        "token_id": token,
        "user_id": user,
        "annotation_id": annotation,
        "dispute_id": dispute,
        "action_id": action,
    }
