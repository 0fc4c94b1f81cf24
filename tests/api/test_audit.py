"""The audit trail: every state change on record, append-only in the database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from tests.settlement.helpers import ok, run
from tests.settlement.test_lifecycle import CONTRACT


def _actions(api, headers) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    items = ok(api.get("/v1/audit?limit=1000", headers=headers))["items"]
    return [(i["action"], i["object_id"]) for i in reversed(items)]


def test_state_changes_are_recorded_with_who_and_from_where(api, admin) -> None:  # type: ignore[no-untyped-def]
    ok(api.post("/v1/contracts", json=CONTRACT, headers=admin), 201)
    v2 = {k: v for k, v in CONTRACT.items() if k not in ("contract_id", "provider", "customer")}
    ok(
        api.post(
            "/v1/contracts/LC-1/versions", json={**v2, "effective_from": "2026-05"}, headers=admin
        ),
        201,
    )
    run(api, admin, "LC-1", "2026-02")
    ok(api.post("/v1/contracts/LC-1/statements/2026-02/issue", headers=admin))
    token = ok(api.post("/v1/tokens", json={"role": "auditor"}, headers=admin), 201)
    assert api.delete(f"/v1/tokens/{token['id']}", headers=admin).status_code == 204

    assert _actions(api, admin) == [
        ("contract.create", "LC-1"),
        ("contract.version", "LC-1"),
        ("statement.issue", "LC-1/2026-02/0"),
        ("token.create", str(token["id"])),
        ("token.revoke", str(token["id"])),
    ]
    entry = ok(api.get("/v1/audit?action=statement.issue", headers=admin))["items"][0]
    assert entry["actor"].startswith("token:") and entry["role"] == "admin"
    assert entry["source"] and entry["at"]


def test_audit_log_is_append_only(api, admin, db) -> None:  # type: ignore[no-untyped-def]
    ok(api.post("/v1/contracts", json=CONTRACT, headers=admin), 201)
    with pytest.raises(Exception, match="immutable"), db.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone else'"))
    with pytest.raises(Exception, match="immutable"), db.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))


def test_only_admin_and_auditor_read_the_audit_log(api, make_token) -> None:  # type: ignore[no-untyped-def]
    for role, party, status in (
        ("auditor", None, 200),
        ("finance", None, 403),
        ("customer", "Minecorp", 403),
        ("provider", "Equipco", 403),
    ):
        r = api.get("/v1/audit", headers={"Authorization": f"Bearer {make_token(role, party)}"})
        assert r.status_code == status, role


def test_cli_token_commands_are_audited(api, admin, settings) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "VIU_DATABASE_URL": str(settings.database_url)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "token",
            "create",
            "--role",
            "customer",
            "--party",
            "MineCo",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    token = out.split()[-1]
    assert api.get("/v1/contracts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    entry = ok(api.get("/v1/audit?action=token.create", headers=admin))["items"][0]
    assert entry["actor"].startswith("cli:") and entry["details"]["party"] == "MineCo"


def test_annotations_replays_costs_and_proposal_decisions_are_audited(api, admin, world) -> None:  # type: ignore[no-untyped-def]
    note = {
        "device_id": "ra-a",
        "from": "2026-08-01T00:00:00Z",
        "to": "2026-08-01T02:00:00Z",
        "cause": "planned",
        "note": "relining",
    }
    ok(api.post("/v1/annotations", json=note, headers=admin), 201)
    ok(api.post(f"/v1/dead-letters/{world['dead_letter_id']}/replay", headers=admin))
    cost = {"period": "2026-08", "amount": "900.00", "category": "service", "note": ""}
    ok(api.post("/v1/contracts/RA-1/costs", json=cost, headers=admin), 201)
    ok(
        api.post(
            f"/v1/proposals/{world['proposal_id']}/reject",
            json={"reason": "next quarter", "party": "customer"},
            headers=admin,
        )
    )
    actions = [a for a, _ in _actions(api, admin)]
    for action in ("annotation.create", "dead_letter.replay", "cost.add", "proposal.reject"):
        assert action in actions, action
    reject = ok(api.get("/v1/audit?action=proposal.reject", headers=admin))["items"][0]
    assert reject["object_id"] == str(world["proposal_id"])
    assert reject["details"]["reason"] == "next quarter"
