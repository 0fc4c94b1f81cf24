"""Missing minutes split by Sparkplug connection state, checked by hand on a small timeline.

October 2026 (UTC, 44,640 minutes). Device ``on-off``: DBIRTH at 00:00,
samples cover 00:00-01:00, nothing 01:00-02:00 while connected, DDEATH at
02:00, DBIRTH at 05:00, then connected and silent to the end of the month:
    offline 180 (02:00-05:00)
    silent  60 (01:00-02:00) + 44,340 (05:00-end) = 44,400
    unknown 0; reported 60, missing 44,580 = 180 + 44,400.
Device ``late``: first DBIRTH on 2 October, no samples, its edge node's
NDEATH on 3 October (propagated to the device) and never back:
    unknown 1,440 (1 October), silent 1,440 (2 October), offline 41,760.
Device ``json``: no connection state: every missing minute is unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import Engine

from schemas.periods import Period
from services.ingest import connectivity as recorder
from services.ingest.formats.base import StateEvent
from services.ingest.stats import Outcome
from services.settlement.connectivity import MissingSplit, split_missing
from services.settlement.proposals import base
from services.settlement.proposals.registry import KINDS, propose
from services.settlement.proposals.settings import DetectorSettings
from services.settlement.review import completeness
from tests.ingest.conftest import T0, payload, register, sample
from tests.proposals.conftest import contract, months, terms_of

H = timedelta(hours=1)
D = timedelta(days=1)


def event(device: str | None, kind: str, at: timedelta, node: str = "gw-1") -> StateEvent:
    return StateEvent("g", node, device, kind, T0 + at)


def test_missing_minutes_split_into_offline_silent_and_unknown(
    db: Engine, write: Callable[..., Outcome]
) -> None:
    register(db, "on-off", "late", "json")
    write("on-off", payload(*[sample(m) for m in range(0, 60, 5)]))
    with db.begin() as conn:
        recorder.record(
            conn,
            [
                event("on-off", "DBIRTH", 0 * H),
                event("on-off", "DDEATH", 2 * H),
                event("on-off", "DBIRTH", 5 * H),
                event("late", "DBIRTH", 1 * D, "gw-2"),
                event(None, "NDEATH", 2 * D, "gw-2"),
            ],
        )
    missing = {"on-off": Decimal(44_580), "late": Decimal(44_640), "json": Decimal(44_640)}
    with db.connect() as conn:
        got = split_missing(conn, Period.parse("2026-10"), "UTC", missing)
    assert got["on-off"] == MissingSplit(Decimal(180), Decimal(44_400), Decimal(0))
    assert got["late"] == MissingSplit(Decimal(41_760), Decimal(1_440), Decimal(1_440))
    assert got["json"] == MissingSplit(unknown_min=Decimal(44_640))
    assert got["late"].mostly == "offline" and got["on-off"].mostly == "silent"


def test_completeness_and_data_gaps_say_which() -> None:
    terms = terms_of(contract())
    history = months(terms, "2026-06", [{"missing": 0}, {"missing": 1000}, {"missing": 0}])
    split = MissingSplit(Decimal(700), Decimal(200), Decimal(100))
    view = completeness(history[1].body, {"ra-a": split})
    device = next(d for d in view["devices"] if d["device_id"] == "ra-a")
    assert (device["offline_minutes"], device["silent_minutes"], device["unknown_minutes"]) == (
        700,
        200,
        100,
    )
    assert view["offline_minutes"] == 700 and view["unknown_minutes"] >= 100

    facts = base.Facts(history, terms, DetectorSettings(), missing={("2026-07", "ra-a"): split})
    (finding,) = KINDS["data_gaps"].detect(facts)
    assert finding.evidence[0] == {
        "period": "2026-07",
        "device_id": "ra-a",
        "missing_min": 1000,
        "period_min": 44640,
        "share": 0.022401,
        "offline_min": 700,
        "silent_min": 200,
        "unknown_min": 100,
        "mostly": "offline",
    }
    proposal = propose(finding, terms)
    assert proposal is not None
    assert "Mostly offline (between a Sparkplug death and the next birth" in proposal.rationale
    assert "700 offline, 200 silent while connected, 100 without connection state" in (
        proposal.rationale
    )
