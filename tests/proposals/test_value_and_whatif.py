"""Costs, the realised value split, what-if simulation and the early warning."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine, insert, text

from schemas.db import rollups
from services.config import Settings
from services.settlement.outlook import alert_if_flagged, alert_topic
from tests.proposals.conftest import contract, settle_months, terms_of, write_rollups
from tests.settlement.helpers import ok

SUMMER = ["2026-06", "2026-07", "2026-08"]
VALUE_MODEL = {"customer_value_per_unit": "3.10", "agreed_provider_share": 0.40, "tolerance": 0.10}
SECRET_KEYS = {"cost", "provider_margin", "provider_share", "value_created", "cost_recorded"}


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


@pytest.fixture
def valued(api: Any, admin: dict[str, str], db: Engine, create: Any, headers: Any) -> str:
    """RA-1 with a value model, a settled summer and the provider's costs recorded."""
    terms = create(contract(value_model=VALUE_MODEL))
    for period in SUMMER:
        write_rollups(db, terms, period)
    settle_months(api, admin, "RA-1", SUMMER)
    provider = headers("provider", "Connectcorp")
    for period in SUMMER:
        entry = {"period": period, "amount": "5000.00", "category": "service", "note": "visits"}
        ok(api.post("/v1/contracts/RA-1/costs", json=entry, headers=provider), 201)
    ok(api.post("/v1/contracts/RA-1/proposals/detect", headers=admin))
    return "RA-1"


def test_the_provider_sees_its_realised_margin_and_share(
    api: Any, valued: str, headers: Any
) -> None:
    provider = headers("provider", "Connectcorp")
    value = ok(api.get("/v1/contracts/RA-1/value?from=2026-06&to=2026-08", headers=provider))
    june = value["periods"][0]
    assert value["view"] == "provider"
    # net 10000 + 35000 x 0.50 = 27500; value 35000 x 3.10 = 108500; cost 5000
    assert (june["net"], june["value_to_customer"], june["cost"]) == (
        "27500.00",
        "108500.00",
        "5000.00",
    )
    assert (june["customer_gain"], june["provider_margin"]) == ("81000.00", "22500.00")
    assert june["provider_share"] == 0.217391 and june["within_agreed"] is False
    [proposal] = ok(api.get("/v1/contracts/RA-1/proposals?status=open", headers=provider))
    assert (proposal["kind"], proposal["proposed"]) == ("unfair_split", "28900.00")


def test_customer_cannot_see_costs_or_margin(api: Any, valued: str, headers: Any) -> None:
    customer = headers("customer", "MineCo")
    assert api.get("/v1/contracts/RA-1/costs", headers=customer).status_code == 403
    entry = {"period": "2026-06", "amount": "1.00", "category": "x"}
    assert api.post("/v1/contracts/RA-1/costs", json=entry, headers=customer).status_code == 403
    value = ok(api.get("/v1/contracts/RA-1/value?from=2026-06&to=2026-08", headers=customer))
    assert value["view"] == "customer"
    assert value["periods"][0]["customer_gain"] == "81000.00"
    assert not _keys(value) & SECRET_KEYS
    review = ok(api.get("/v1/contracts/RA-1/reviews/2026-Q3", headers=customer))
    assert not _keys(review) & SECRET_KEYS
    assert ok(api.get("/v1/contracts/RA-1/proposals", headers=customer)) == []
    html = api.get("/v1/contracts/RA-1/reviews/2026-Q3?format=html", headers=customer).text
    assert "provider margin" not in html and "cost to serve" not in html


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"period": "2026-06", "amount": 12.5, "category": "x"}, "amount"),
        ({"period": "2026-06", "amount": "12.345", "category": "x"}, "amount"),
        ({"period": "2026-13", "amount": "1", "category": "x"}, "period"),
        ({"period": "0000-01", "amount": "1", "category": "x"}, "period"),
        ({"period": "2025-06", "amount": "1", "category": "x"}, "period"),
        ({"period": "2026-06", "amount": "1", "category": "x", "currency": "USD"}, "currency"),
        ({"period": "2026-06", "amount": "NaN", "category": "x"}, "amount"),
        ({"period": "2026-06", "amount": "1", "category": " "}, "category"),
    ],
)
def test_cost_entries_are_validated(
    api: Any, admin: dict[str, str], create: Any, entry: dict[str, Any], field: str
) -> None:
    create()
    r = api.post("/v1/contracts/RA-1/costs", json=entry, headers=admin)
    assert r.status_code == 422, r.text
    assert field in r.text


def test_simulate_resettles_under_alternative_terms_and_stores_nothing(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    terms = create()
    for period in SUMMER:
        write_rollups(db, terms, period, availability=0.93)
    settle_months(api, admin, "RA-1", SUMMER)
    counts = (
        "SELECT (SELECT count(*) FROM statements), (SELECT count(*) FROM proposals), "
        "(SELECT count(*) FROM contract_versions)"
    )
    with db.connect() as conn:
        before = conn.execute(text(counts)).one()
    alternative = terms_of(contract(fixed_fee="12000.00")).model_dump(mode="json")
    alternative.pop("effective_from")
    body = {"terms": alternative, "from": "2026-06", "to": "2026-08"}
    result = ok(api.post("/v1/contracts/RA-1/simulate", json=body, headers=admin))
    with db.connect() as conn:
        assert conn.execute(text(counts)).one() == before
    assert result["stored"] is False
    assert [p["difference"]["difference"] for p in result["periods"]] == ["2000.00"] * 3
    assert result["parties"] == {"provider": "6000.00", "customer": "-6000.00"}
    assert result["periods"][0]["current"]["net"] == "26500.00"  # 1000.00 penalty


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"surprise": 1}, "terms.surprise"),
        ({"devices": ["someone-elses"]}, "terms.devices"),
        ({"currency": "USD"}, "terms.currency"),
    ],
)
def test_simulate_rejects_terms_it_cannot_settle(
    api: Any, admin: dict[str, str], create: Any, change: dict[str, Any], field: str
) -> None:
    create()
    alternative = {**terms_of(contract()).model_dump(mode="json"), **change}
    body = {"terms": alternative, "from": "2026-06", "to": "2026-07"}
    r = api.post("/v1/contracts/RA-1/simulate", json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert field in r.text


def _october_to_date(db: Engine, days: int, availability: float) -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    with db.begin() as conn:
        for day in range(days):
            up = 1440 * availability
            conn.execute(
                insert(rollups).values(
                    device_id="ra-a",
                    bucket=start + timedelta(days=day),
                    samples=1,
                    reported_s=86400,
                    uptime_min=up,
                    quality_min=up,
                    throughput=1000,
                    down_unplanned=1440 - up,
                    down_planned=0,
                    down_customer=0,
                    down_external=0,
                    last_received_at=start,
                )
            )


AS_OF = "2026-10-11T00:00:00Z"


def test_outlook_flags_a_kpi_projected_to_trigger_a_penalty(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    create()
    _october_to_date(db, 10, availability=0.90)
    outlook = ok(api.get(f"/v1/contracts/RA-1/outlook?at={AS_OF}", headers=admin))
    assert (outlook["period"], outlook["elapsed_days"], outlook["period_days"]) == (
        "2026-10",
        10,
        31,
    )
    assert outlook["month_to_date"]["kpis"]["availability"] == 0.9
    assert outlook["projected"]["kpis"]["throughput"] == 31000  # 1000 a day for 31 days
    flags = {f["flag"]: f for f in outlook["flags"]}
    assert flags["projected_penalty"]["kpi"] == "availability"
    assert flags["projected_penalty"]["projected_amount"] == "-2500.00"


def test_outlook_flags_a_bonus_about_to_be_missed(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    create()
    _october_to_date(db, 10, availability=0.96)
    outlook = ok(api.get(f"/v1/contracts/RA-1/outlook?at={AS_OF}", headers=admin))
    [flag] = outlook["flags"]
    assert (flag["flag"], flag["kpi"], flag["bonus_above"]) == (
        "missed_bonus",
        "availability",
        0.97,
    )


def test_outlook_stays_quiet_when_the_month_is_on_track(
    api: Any, admin: dict[str, str], db: Engine, create: Any
) -> None:
    create()
    _october_to_date(db, 10, availability=0.98)
    outlook = ok(api.get(f"/v1/contracts/RA-1/outlook?at={AS_OF}", headers=admin))
    assert outlook["flags"] == []


@pytest.fixture
def alerts(settings: Settings) -> Iterator[queue.Queue[tuple[str, bytes]]]:
    """A subscriber on ``{prefix}/RA-1/alerts``."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    assert settings.mqtt_url is not None
    url = urlsplit(settings.mqtt_url)
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    client.on_message = lambda c, u, msg: got.put((msg.topic, msg.payload))
    client.on_subscribe = lambda *args: subscribed.put(True)
    client.on_connect = lambda c, *args: c.subscribe(
        alert_topic(settings.mqtt_topic_prefix, "RA-1"), qos=1
    )
    client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    client.loop_start()
    subscribed.get(timeout=5)
    yield got
    client.disconnect()
    client.loop_stop()


def test_a_projected_penalty_is_published_as_an_mqtt_alert(
    settings: Settings, db: Engine, create: Any, alerts: queue.Queue[tuple[str, bytes]]
) -> None:
    create()
    _october_to_date(db, 10, availability=0.90)
    with db.begin() as conn:
        alert_if_flagged(conn, settings, "RA-1", datetime(2026, 10, 11, tzinfo=UTC))
    topic, payload = alerts.get(timeout=5)
    assert topic == f"{settings.mqtt_topic_prefix}/RA-1/alerts"
    message = json.loads(payload)
    assert message["period"] == "2026-10"
    assert "projected_penalty" in {f["flag"] for f in message["flags"]}


def test_other_parties_do_not_see_the_contract_at_all(api: Any, create: Any, headers: Any) -> None:
    create()
    stranger = headers("customer", "OtherCo")
    for path in (
        "/v1/contracts/RA-1/value",
        "/v1/contracts/RA-1/outlook",
        "/v1/contracts/RA-1/reviews/2026-Q3",
        "/v1/contracts/RA-1/proposals",
    ):
        assert api.get(path, headers=stranger).status_code == 404, path
    body = {"terms": {}, "from": "2026-06", "to": "2026-07"}
    assert api.post("/v1/contracts/RA-1/simulate", json=body, headers=stranger).status_code == 404


def test_the_daily_draft_run_publishes_the_early_warning(
    settings: Settings, db: Engine, create: Any, alerts: queue.Queue[tuple[str, bytes]]
) -> None:
    from services.settlement.scheduler import tick

    create(contract(effective_from="2026-10"))
    _october_to_date(db, 10, availability=0.90)
    jobs = tick(db, settings, datetime(2026, 10, 11, 2, 30, tzinfo=UTC))
    assert [j.kind for j in jobs] == ["draft:2026-10-11"]
    _, payload = alerts.get(timeout=5)
    assert json.loads(payload)["flags"][0]["flag"] == "projected_penalty"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/contracts/RA-1/outlook?at=9999-12-31T23:59:59Z", None),
        ("GET", "/v1/contracts/RA-1/outlook?at=2026-10-11T00:00:00", None),
        ("GET", "/v1/contracts/RA-1/outlook?at=yesterday", None),
        ("GET", "/v1/contracts/RA-1/value?from=2026-06&to=2026-01", None),
        ("GET", "/v1/contracts/RA-1/value?from=1990-01&to=2026-01", None),
        ("GET", "/v1/contracts/RA-1/reviews/0000-Q1", None),
        ("GET", "/v1/contracts/RA%00/proposals", None),
        ("POST", "/v1/contracts/RA-1/simulate", {"terms": {}, "from": "2026-06", "to": "2026-07"}),
        ("POST", "/v1/contracts/RA-1/simulate", {"terms": {}, "from": "2026-13", "to": "2026-07"}),
        ("POST", "/v1/contracts/RA-1/proposals/accept", {"ids": []}),
        ("PUT", "/v1/contracts/RA-1/proposals/settings", {"window": 2, "cap_binding_periods": 3}),
    ],
)
def test_hostile_input_gets_a_4xx_problem(
    api: Any, admin: dict[str, str], create: Any, method: str, path: str, body: Any
) -> None:
    create()
    r = api.request(method, path, json=body, headers=admin)
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"] == "application/problem+json"
