"""A device belongs to at most one contract at a time (spec §6), enforced by the database.

Races are real: two requests released together against a real HTTP server,
many times. Settlement, KPI series, the outlook and the what-if read only the
devices a contract owned in the period, even where a contract lists a device
it does not own (data from before the constraint existed).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from services.api.app import create_app
from tests.api.live import serve
from tests.proposals.conftest import contract, headers, terms_of, write_rollups
from tests.settlement.helpers import ok

TRIES = 25
__all__ = ["headers"]  # a fixture, used by name


def create(api: Any, headers: dict[str, str], **changes: Any) -> Any:
    """POST /v1/contracts with the base contract changed; the response."""
    return api.post("/v1/contracts", json=contract(**changes), headers=headers)


def race(base: str, headers: dict[str, str], bodies: list[dict[str, Any]]) -> list[int]:
    """POST the bodies at the same moment; their status codes, in order."""
    start = threading.Barrier(len(bodies))
    codes: list[int] = [0] * len(bodies)

    def post(i: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            start.wait()
            codes[i] = client.post("/v1/contracts", json=bodies[i]).status_code

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return codes


def open_owners(db: Engine, device: str) -> list[str]:
    with db.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT contract_id FROM device_owners "
                    "WHERE device_id = :d AND until_period IS NULL"
                ),
                {"d": device},
            ).scalars()
        )


def test_two_contracts_racing_for_one_new_device_give_one_201_and_one_409(
    settings, db, admin
) -> None:  # type: ignore[no-untyped-def]
    with serve(create_app(settings, db)) as base:
        for i in range(TRIES):
            device = f"race-{i}"
            bodies = [contract(contract_id=f"RACE-{i}-{side}", devices=[device]) for side in "AB"]
            codes = race(base, admin, bodies)
            assert sorted(codes) == [201, 409], (i, codes)
            assert len(open_owners(db, device)) == 1


def test_two_creates_of_one_contract_id_give_one_201_and_one_409(settings, db, admin) -> None:  # type: ignore[no-untyped-def]
    with serve(create_app(settings, db)) as base:
        for i in range(TRIES):
            bodies = [contract(contract_id=f"SAME-{i}", devices=[f"same-{i}-{s}"]) for s in "AB"]
            assert sorted(race(base, admin, bodies)) == [201, 409], i


def test_a_409_never_names_another_partys_contract(api, admin, headers) -> None:  # type: ignore[no-untyped-def]
    ok(create(api, admin, contract_id="THEIRS-1", provider="OtherCo", devices=["shared-1"]), 201)
    mine = headers("provider", "Connectcorp")
    r = api.post(
        "/v1/contracts", json=contract(contract_id="MINE-1", devices=["shared-1"]), headers=mine
    )
    assert r.status_code == 409
    assert "THEIRS-1" not in r.text and "OtherCo" not in r.text
    assert r.json()["detail"] == "device 'shared-1' is not available to this contract"
    r = api.post(
        "/v1/contracts", json=contract(contract_id="THEIRS-1", devices=["other-9"]), headers=mine
    )
    assert r.status_code == 409
    assert "exists" not in r.text and "new version" not in r.text
    assert r.json()["detail"] == "contract id 'THEIRS-1' is not available; choose another"
    # Whoever may see the other contract is told which one it is.
    r = api.post(
        "/v1/contracts", json=contract(contract_id="MINE-2", devices=["shared-1"]), headers=admin
    )
    assert r.status_code == 409 and "THEIRS-1" in r.json()["detail"]
    # So is a provider about its own contracts (a new version would have been right).
    ok(
        api.post(
            "/v1/contracts", json=contract(contract_id="MINE-3", devices=["mine-3"]), headers=mine
        ),
        201,
    )
    r = api.post(
        "/v1/contracts", json=contract(contract_id="MINE-4", devices=["mine-3"]), headers=mine
    )
    assert r.status_code == 409 and "MINE-3" in r.json()["detail"]


def test_ownership_keeps_its_history_and_moves_only_after_release(api, admin, db) -> None:  # type: ignore[no-untyped-def]
    ok(create(api, admin, contract_id="OLD-1", devices=["mover", "stay"]), 201)
    version2 = {
        k: v
        for k, v in contract(devices=["stay"], effective_from="2026-06").items()
        if k not in ("contract_id", "provider", "customer")
    }
    ok(api.post("/v1/contracts/OLD-1/versions", json=version2, headers=admin), 201)
    too_early = contract(contract_id="NEW-1", devices=["mover"], effective_from="2026-05")
    r = api.post("/v1/contracts", json=too_early, headers=admin)
    assert r.status_code == 409 and "until 2026-06" in r.json()["detail"]
    ok(create(api, admin, contract_id="NEW-1", devices=["mover"], effective_from="2026-06"), 201)
    with db.connect() as conn:
        history = conn.execute(
            text(
                "SELECT contract_id, from_period, until_period FROM device_owners "
                "WHERE device_id = 'mover' ORDER BY from_period"
            )
        ).all()
    assert [tuple(r) for r in history] == [
        ("OLD-1", "2026-01", "2026-06"),
        ("NEW-1", "2026-06", None),
    ]
    # The database itself refuses a second open ownership, whatever the code does.
    with pytest.raises(Exception, match="device_owners_one_at_a_time"), db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO device_owners (device_id, contract_id, from_period) "
                "VALUES ('mover', 'OLD-1', '2026-07')"
            )
        )


def legacy_duplicate(db: Engine, body: dict[str, Any]) -> None:
    """A contract listing a device it does not own, as two racing creates left behind before."""
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contracts (contract_id, provider, customer, created_at) VALUES (:c, :p, :u, now())"
            ),
            {"c": body["contract_id"], "p": body["provider"], "u": body["customer"]},
        )
        terms = terms_of(body).model_dump(mode="json")
        conn.execute(
            text(
                "INSERT INTO contract_versions (contract_id, version, effective_from, body, created_at) "
                "VALUES (:c, 1, :f, CAST(:b AS jsonb), now())"
            ),
            {"c": body["contract_id"], "f": body["effective_from"], "b": json.dumps(terms)},
        )


def test_settlement_reads_only_devices_the_contract_owned(api, admin, db) -> None:  # type: ignore[no-untyped-def]
    owner = contract(contract_id="OWNER-1", devices=["dup-1"])
    ok(api.post("/v1/contracts", json=owner, headers=admin), 201)
    squatter = contract(contract_id="SQUAT-1", devices=["dup-1", "own-2"], customer="ThirdCo")
    legacy_duplicate(db, squatter)
    with db.begin() as conn:
        conn.execute(
            text("INSERT INTO devices (device_id, contract_id) VALUES ('own-2', 'SQUAT-1')")
        )
        conn.execute(
            text(
                "INSERT INTO device_owners (device_id, contract_id, from_period) VALUES ('own-2', 'SQUAT-1', '2026-01')"
            )
        )
    write_rollups(
        db, terms_of(squatter), "2026-03", throughput=1000
    )  # dup-1 and own-2: 1000 t each
    for cid in ("OWNER-1", "SQUAT-1"):
        ok(
            api.post(
                "/v1/settlements/run", json={"period": "2026-03", "contract_id": cid}, headers=admin
            )
        )
    owner_st = ok(api.get("/v1/contracts/OWNER-1/statements/2026-03", headers=admin))
    squat_st = ok(api.get("/v1/contracts/SQUAT-1/statements/2026-03", headers=admin))
    assert float(owner_st["kpis"]["throughput"]) == 1000
    assert float(squat_st["kpis"]["throughput"]) == 1000, "only own-2, never dup-1's data"
    assert [d["device_id"] for d in squat_st["devices"]] == ["own-2"]
    assert any("dup-1" in w and "not used" in w for w in squat_st["warnings"])
    series = ok(
        api.get(
            "/v1/contracts/SQUAT-1/kpis?from=2026-03-01&to=2026-03-31&granularity=month",
            headers=admin,
        )
    )
    assert series["points"][0]["kpis"]["throughput"] == 1000
    what_if = {
        "from": "2026-03",
        "to": "2026-03",
        "terms": terms_of(squatter).model_dump(mode="json"),
    }
    r = api.post("/v1/contracts/SQUAT-1/simulate", json=what_if, headers=admin)
    assert r.status_code == 422 and "dup-1" in r.json()["detail"], "never owned: refused"
    what_if["terms"]["devices"] = ["own-2"]
    sim = ok(api.post("/v1/contracts/SQUAT-1/simulate", json=what_if, headers=admin))
    assert float(sim["periods"][0]["alternative"]["kpis"]["throughput"]) == 1000


def test_the_outlook_reads_only_owned_devices(api, admin, db) -> None:  # type: ignore[no-untyped-def]
    from services.settlement.outlook import project

    now = datetime.now(UTC)
    period = f"{now.year:04d}-{now.month:02d}"
    ok(create(api, admin, contract_id="OWNER-2", devices=["dup-2"], effective_from="2026-01"), 201)
    squatter = contract(contract_id="SQUAT-2", devices=["dup-2"], customer="ThirdCo")
    legacy_duplicate(db, squatter)
    write_rollups(db, terms_of(squatter), period, throughput=500)
    with db.connect() as conn:
        mine, theirs = project(conn, "OWNER-2"), project(conn, "SQUAT-2")
    assert mine.month_to_date["throughput"] is not None and mine.month_to_date["throughput"] > 0
    assert not theirs.month_to_date["throughput"], "no owned device: nothing read"
    assert theirs.projected.devices == [], "and nothing projected"
