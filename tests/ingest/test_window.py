"""The accepted time window (issue 16): from the device's first contract period to a day ahead.

Outside it a sample is dead-lettered with the reason; inside a batch, only
that sample. The bounds are configurable (``VIU_INGEST_MAX_AHEAD_S``,
``VIU_INGEST_DAYS_BEFORE_CONTRACT``).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from services.config import ConfigError, load_settings
from services.ingest import jsonx, pipeline
from services.ingest.admission import Window, _earliest_utc_of_starts, _in_utc
from tests.ingest.conftest import message, payload, register, rows, sample
from tests.settlement.helpers import ok
from tests.settlement.test_lifecycle import CONTRACT

STOCKHOLM_2026_01 = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)


def at(ts: datetime) -> dict[str, Any]:
    return sample(0) | {"ts": jsonx.iso(ts)}


@pytest.fixture
def device(api: Any, admin: dict[str, str]) -> str:
    body = copy.deepcopy(CONTRACT) | {
        "contract_id": "W-1",
        "devices": ["w-1"],
        "timezone": "Europe/Stockholm",
    }
    ok(api.post("/v1/contracts", json=body, headers=admin), 201)
    return "w-1"


def test_the_window_opens_with_the_first_period_in_the_contracts_time_zone(
    db: Engine, device: str
) -> None:
    second = timedelta(seconds=1)
    out = pipeline.ingest(
        db, [message(device, payload(at(STOCKHOLM_2026_01 - second), at(STOCKHOLM_2026_01)))]
    )
    assert (out.stored, out.dead_lettered) == (1, 1)
    assert out.dead_letter_reasons == [
        "ts 2025-12-31T22:59:59Z is before the device's first contract period 2026-01 "
        "(accepted from 2025-12-31T23:00:00Z)"
    ]
    (dead,) = rows(db, "SELECT payload FROM dead_letters")
    assert jsonx.loads(bytes(dead["payload"]))["ts"] == "2025-12-31T22:59:59Z"


def test_the_window_closes_a_day_ahead_of_now(db: Engine, device: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    soon, too_late = now + timedelta(hours=23), now + timedelta(hours=25)
    out = pipeline.ingest(db, [message(device, payload(at(soon), at(too_late)))])
    assert (out.stored, out.dead_lettered) == (1, 1)
    assert out.dead_letter_reasons[0].startswith(
        f"ts {jsonx.iso(too_late)} is more than 1 day in the future (accepted up to "
    )
    alone = pipeline.ingest(db, [message(device, payload(at(too_late + timedelta(hours=1))))])
    assert (alone.stored, alone.dead_lettered) == (0, 1)


def test_both_bounds_are_configurable(db: Engine, device: str) -> None:
    settings = load_settings(ingest_max_ahead_s=0, ingest_days_before_contract=31)
    window = Window.of(settings)
    december = datetime(2025, 12, 1, tzinfo=UTC)
    ahead = datetime.now(UTC) + timedelta(minutes=5)
    out = pipeline.ingest(db, [message(device, payload(at(december), at(ahead)))], window=window)
    assert (out.stored, out.dead_lettered) == (1, 1)
    assert "is more than 0 s in the future" in out.dead_letter_reasons[0]


def test_a_bad_bound_fails_fast_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIU_INGEST_MAX_AHEAD_S", "-1")
    with pytest.raises(ConfigError, match="VIU_INGEST_MAX_AHEAD_S"):
        load_settings()


def test_replay_applies_the_window_again(
    api: Any, admin: dict[str, str], db: Engine, device: str
) -> None:
    old = payload(at(STOCKHOLM_2026_01 - timedelta(days=1)))
    r = api.post(f"/v1/telemetry/{device}", content=old, headers=admin)
    assert r.status_code == 422
    (dead_id,) = r.json()["dead_letter_ids"]
    again = ok(api.post(f"/v1/dead-letters/{dead_id}/replay", headers=admin))
    assert again["status"] == "open"
    assert "before the device's first contract period" in again["replay_result"]


def test_a_device_whose_contract_has_no_version_yet_has_no_lower_bound(db: Engine) -> None:
    register(db, "bare")  # written directly: every contract made through the API has a version
    out = pipeline.ingest(db, [message("bare", payload(at(datetime(1999, 1, 1, tzinfo=UTC))))])
    assert out.stored == 1


def test_a_remembered_lower_bound_is_that_of_the_zone_the_contract_start_came_in() -> None:
    """Equal instants of two zones are one key of a cache; the clock arithmetic differs.

    30 days before 1 April 2024 00:00 in Berlin (summer time) is 1 March 00:00
    there (winter time), 23:00 UTC; counted on UTC's clock it is 22:00 UTC.
    """
    berlin = datetime(2024, 4, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    utc = berlin.astimezone(UTC)
    before = timedelta(days=30)
    for starts in (berlin, utc, berlin):
        assert _earliest_utc_of_starts(starts, before) == _in_utc(starts - before)
    assert _earliest_utc_of_starts(berlin, before) == datetime(2024, 3, 1, 23, tzinfo=UTC)
    assert _earliest_utc_of_starts(None, before) == _in_utc(None)
