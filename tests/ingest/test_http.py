"""HTTP doors of ingest (spec §1.2, §6): same path as MQTT, scoped by party, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from tests.ingest.conftest import payload, register, rows, sample

Headers = dict[str, str]


def bearer(make_token: Callable[..., str], role: str, party: str | None = None) -> Headers:
    return {"Authorization": f"Bearer {make_token(role, party)}"}


def post(api: Any, device: str, raw: bytes, headers: Headers) -> Any:
    return api.post(
        f"/v1/telemetry/{device}",
        content=raw,
        headers=headers | {"Content-Type": "application/json"},
    )


def test_post_telemetry_stores_and_counts(api: Any, admin: Headers, db: Engine) -> None:
    register(db, "d1")
    r = post(api, "d1", payload(sample(0), sample(5)), admin)
    assert r.status_code == 200, r.text
    assert r.json() | {"dead_letters": []} == {
        "received": 2,
        "stored": 2,
        "duplicates": 0,
        "corrections": 0,
        "dead_lettered": 0,
        "dead_letter_ids": [],
        "dead_letters": [],
    }


def test_partly_invalid_batch_is_202_with_dead_letter_ids(
    api: Any, admin: Headers, db: Engine
) -> None:
    register(db, "d1")
    r = post(api, "d1", payload(sample(0), sample(5, quality_min=5)), admin)
    assert r.status_code == 202
    body = r.json()
    assert (body["stored"], body["dead_lettered"], len(body["dead_letter_ids"])) == (1, 1, 1)
    assert "quality_min" in body["dead_letters"][0]["reason"]


def test_entirely_invalid_payload_is_dead_lettered_and_422(
    api: Any, admin: Headers, db: Engine
) -> None:
    r = post(api, "ghost", payload(sample(0)), admin)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    (dead_id,) = r.json()["dead_letter_ids"]
    listed = api.get("/v1/dead-letters?status=open", headers=admin).json()["items"]
    assert [d["id"] for d in listed] == [dead_id]
    assert listed[0]["topic"] == "http:/v1/telemetry/ghost"
    bad = post(api, "d1", b"\xff\xfe not json", admin)
    assert bad.status_code == 422 and "UTF-8" in bad.json()["detail"]


def test_provider_posts_only_for_its_devices(
    api: Any, make_token: Callable[..., str], db: Engine
) -> None:
    register(db, "mine", contract="C-1", provider="Connectcorp")
    register(db, "theirs", contract="C-2", provider="Other")
    provider = bearer(make_token, "provider", "Connectcorp")
    assert post(api, "mine", payload(sample(0)), provider).status_code == 200
    assert post(api, "theirs", payload(sample(0)), provider).status_code == 404
    assert post(api, "nobody", payload(sample(0)), provider).status_code == 404
    assert rows(db, "SELECT count(*) n FROM dead_letters") == [{"n": 0}]
    customer = bearer(make_token, "customer", "MineCo")
    assert post(api, "mine", payload(sample(0)), customer).status_code == 403


def test_samples_are_paginated_by_ts_with_exact_numbers(
    api: Any, admin: Headers, db: Engine
) -> None:
    register(db, "d1")
    items = [
        sample(5 * i, throughput=Decimal("0.1000000000000000055511151231") if i == 0 else i)
        for i in range(5)
    ]
    post(api, "d1", payload(*items), admin)
    first = api.get("/v1/devices/d1/samples?limit=2", headers=admin)
    assert first.status_code == 200
    assert '"throughput":0.1000000000000000055511151231' in first.text
    seen = [i["ts"] for i in first.json()["items"]]
    cursor = first.json()["next_cursor"]
    while cursor:
        page = api.get(
            "/v1/devices/d1/samples", params={"limit": 2, "cursor": cursor}, headers=admin
        ).json()
        seen += [i["ts"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert seen == sorted(seen) and len(seen) == 5
    window = api.get(
        "/v1/devices/d1/samples",
        params={"from": "2026-10-01T00:05:00Z", "to": "2026-10-01T02:15:00+02:00"},
        headers=admin,
    ).json()["items"]
    assert [i["ts"] for i in window] == ["2026-10-01T00:05:00Z", "2026-10-01T00:10:00Z"]
    assert api.get("/v1/devices/d1/samples?from=yesterday", headers=admin).status_code == 422


def test_samples_of_an_invisible_device_are_404(
    api: Any, make_token: Callable[..., str], db: Engine
) -> None:
    register(db, "d1", customer="MineCo")
    assert (
        api.get(
            "/v1/devices/d1/samples", headers=bearer(make_token, "customer", "MineCo")
        ).status_code
        == 200
    )
    assert (
        api.get(
            "/v1/devices/d1/samples", headers=bearer(make_token, "customer", "Else")
        ).status_code
        == 404
    )


def test_stats_count_since_start_and_in_total(api: Any, admin: Headers, db: Engine) -> None:
    register(db, "d1")
    before = api.get("/v1/ingest/stats", headers=admin).json()
    post(api, "d1", payload(sample(0), sample(5)), admin)
    post(api, "d1", payload(sample(0), sample(5, throughput=3), sample(10, uptime_min=-1)), admin)
    after = api.get("/v1/ingest/stats", headers=admin).json()
    delta = {k: after["since_start"][k] - before["since_start"][k] for k in after["total"]}
    expected = {"received": 5, "stored": 2, "duplicates": 1, "corrections": 1, "dead_lettered": 1}
    assert delta == expected
    assert after["total"] == expected


def test_replay_after_registering_the_device_stores_it(
    api: Any, admin: Headers, db: Engine
) -> None:
    (dead_id,) = post(api, "late", payload(sample(0), sample(5)), admin).json()["dead_letter_ids"]
    again = api.post(f"/v1/dead-letters/{dead_id}/replay", headers=admin)
    assert again.status_code == 200 and again.json()["status"] == "open"
    assert "unknown device" in again.json()["replay_result"]
    register(db, "late")
    done = api.post(f"/v1/dead-letters/{dead_id}/replay", headers=admin).json()
    assert done["status"] == "replayed" and done["outcome"]["stored"] == 2
    assert done["replayed_by"].startswith("token:")
    assert len(rows(db, "SELECT 1 FROM samples WHERE device_id = 'late'")) == 2
    assert api.post(f"/v1/dead-letters/{dead_id}/replay", headers=admin).status_code == 409


def test_dead_letters_of_other_parties_are_hidden_from_providers(
    api: Any, admin: Headers, make_token: Callable[..., str], db: Engine
) -> None:
    register(db, "mine", contract="C-1", provider="Connectcorp")
    register(db, "theirs", contract="C-2", provider="Other")
    post(api, "mine", payload(sample(0, interval_s=0)), admin)
    (theirs,) = post(api, "theirs", payload(sample(0, interval_s=0)), admin).json()[
        "dead_letter_ids"
    ]
    provider = bearer(make_token, "provider", "Connectcorp")
    listed = api.get("/v1/dead-letters", headers=provider).json()["items"]
    assert [d["device_id"] for d in listed] == ["mine"]
    assert api.post(f"/v1/dead-letters/{theirs}/replay", headers=provider).status_code == 404
    assert (
        api.get("/v1/dead-letters", headers=bearer(make_token, "customer", "MineCo")).status_code
        == 403
    )


def test_annotation_reclassifies_rollups(api: Any, admin: Headers, db: Engine) -> None:
    register(db, "d1")
    post(api, "d1", payload(sample(0), sample(5), sample(20)), admin)
    r = api.post(
        "/v1/annotations",
        headers=admin,
        json={
            "device_id": "d1",
            "from": "2026-10-01T00:00:00Z",
            "to": "2026-10-01T00:10:00Z",
            "cause": "planned",
            "note": "maintenance",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["author"].startswith("token:")
    buckets = rows(
        db, "SELECT bucket, down_planned, down_unplanned FROM rollup_totals ORDER BY bucket"
    )
    assert [(b["down_planned"], b["down_unplanned"]) for b in buckets] == [
        (Decimal("1"), 0),
        (0, Decimal("0.5")),
    ]
    listed = api.get("/v1/annotations?device_id=d1", headers=admin).json()
    assert [a["cause"] for a in listed] == ["planned"]


def test_bad_annotations_are_422_not_500(api: Any, admin: Headers, db: Engine) -> None:
    register(db, "d1")
    base = {
        "device_id": "d1",
        "from": "2026-10-01T01:00:00Z",
        "to": "2026-10-01T00:00:00Z",
        "cause": "planned",
        "note": "",
    }
    assert api.post("/v1/annotations", headers=admin, json=base).status_code == 422
    naive = base | {"from": "2026-10-01T00:00:00", "to": "2026-10-01T01:00:00"}
    assert api.post("/v1/annotations", headers=admin, json=naive).status_code == 422
    wrong = base | {"to": "2026-10-01T02:00:00Z", "cause": "weather"}
    assert api.post("/v1/annotations", headers=admin, json=wrong).status_code == 422
    ghost = base | {"to": "2026-10-01T02:00:00Z", "device_id": "ghost"}
    assert api.post("/v1/annotations", headers=admin, json=ghost).status_code == 404
