"""KPIs settled from rollups equal a brute-force computation over the raw samples
as sent — with duplicates, corrections, gaps, a DST month and annotations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from schemas.contract import ContractIn
from schemas.periods import Period, period_bounds
from schemas.telemetry import Annotation
from services.ingest import annotations
from services.ingest.decode import Message
from services.ingest.writer import write_messages
from services.settlement import contracts
from services.settlement.runs import compute
from tests.conftest import empty_database

TZ = "Europe/Stockholm"
PERIOD = Period(2026, 10)  # clocks go back on 25 October: 44,700 minutes
DEVICES = ("pp-a", "pp-b")
RATED = Decimal(120)
START, END = period_bounds(PERIOD, TZ)
CAUSES = ("unplanned", "planned", "customer", "external")

# instants near both period edges and across the DST change, 7-minute grid (not bucket-aligned)
GRID = (
    [START + timedelta(minutes=7 * k) for k in range(-40, 40)]
    + [datetime(2026, 10, 25, 0, 0, tzinfo=UTC) + timedelta(minutes=7 * k) for k in range(40)]
    + [END + timedelta(minutes=7 * k) for k in range(-40, 20)]
)


@dataclass(frozen=True)
class Sent:
    device: str
    ts: datetime
    interval_s: int
    uptime: Decimal
    quality: Decimal
    throughput: Decimal
    cause: str


@st.composite
def samples(draw: Any) -> Sent:
    interval = draw(st.sampled_from([60, 420, 900, 3600]))
    uptime = Decimal(draw(st.integers(0, interval * 100 // 60))) / 100
    quality = Decimal(draw(st.integers(0, int(uptime * 100)))) / 100
    return Sent(
        device=draw(st.sampled_from(DEVICES)),
        ts=draw(st.sampled_from(GRID)),
        interval_s=interval,
        uptime=uptime,
        quality=quality,
        throughput=Decimal(draw(st.integers(0, 50_000))) / 100,
        cause=draw(st.sampled_from(CAUSES)),
    )


@st.composite
def notes(draw: Any) -> tuple[str, datetime, datetime, str]:
    a, b = sorted(draw(st.lists(st.sampled_from(GRID), min_size=2, max_size=2, unique=True)))
    return draw(st.sampled_from(DEVICES)), a, b, draw(st.sampled_from(CAUSES))


events = st.lists(st.one_of(samples(), notes()), min_size=1, max_size=60)


def _payload(s: Sent) -> bytes:
    return (
        json.dumps(
            {
                "ts": s.ts.isoformat(),
                "interval_s": s.interval_s,
                "uptime_min": str(s.uptime),
                "quality_min": str(s.quality),
                "throughput": str(s.throughput),
                "downtime_cause": s.cause,
            }
        )
        .replace('"uptime_min": "', '"uptime_min": ')
        .replace('", "quality_min": "', ', "quality_min": ')
        .replace('", "throughput": "', ', "throughput": ')
        .replace('", "downtime_cause"', ', "downtime_cause"')
        .encode()
    )


def _r6(v: Decimal | None) -> Decimal | None:
    return None if v is None else v.quantize(Decimal("0.000001"), ROUND_HALF_EVEN)


def brute_force(history: list[Any], policy: str, excused: set[str]) -> dict[str, Decimal | None]:
    """§3.1/§3.2 straight from the spec, over the last-sent sample of each identity."""
    latest: dict[tuple[str, datetime], Sent] = {}
    notes_seen: list[tuple[str, datetime, datetime, str]] = []
    for e in history:
        if isinstance(e, Sent):
            latest[(e.device, e.ts)] = e
        else:
            notes_seen.append(e)
    period_min = Decimal((END - START).total_seconds() / 60)
    tot = {k: Decimal(0) for k in ("uptime", "quality", "throughput", "base")}
    with localcontext() as ctx:
        ctx.prec = 50
        for d in DEVICES:
            mine = [s for (dev, ts), s in latest.items() if dev == d and START <= ts < END]
            reported = sum((Decimal(s.interval_s) / 60 for s in mine), Decimal(0))
            missing = max(Decimal(0), period_min - reported)
            uptime = sum((s.uptime for s in mine), Decimal(0))
            down = dict.fromkeys(CAUSES, Decimal(0))
            for s in mine:
                cause = s.cause
                for nd, a, b, c in notes_seen:  # later annotations win
                    if nd == d and a <= s.ts < b:
                        cause = c
                down[cause] += Decimal(s.interval_s) / 60 - s.uptime
            if policy == "downtime":
                down["unplanned"] += missing
            elif policy == "uptime":
                uptime += missing
            excused_min = sum((down[c] for c in excused), Decimal(0))
            if policy == "excused":
                excused_min += missing
            tot["uptime"] += uptime
            tot["quality"] += sum((s.quality for s in mine), Decimal(0))
            tot["throughput"] += sum((s.throughput for s in mine), Decimal(0))
            tot["base"] += period_min - excused_min
        u, q, t, b = tot["uptime"], tot["quality"], tot["throughput"], tot["base"]
        avail = u / b if b > 0 else None
        qual = q / u if u > 0 else None
        perf = t / (RATED * u / 60) if u > 0 else None
        oee = avail * perf * qual if None not in (avail, perf, qual) else None  # type: ignore[operator]
        return {
            "availability": _r6(avail),
            "quality_rate": _r6(qual),
            "performance": _r6(perf),
            "utilisation": _r6(t / (RATED * b / 60) if b > 0 else None),
            "oee": _r6(oee),
            "throughput": _r6(t),
            "utilised_capacity_hours": _r6(t / RATED),
            "uptime_hours": _r6(u / 60),
        }


def _contract(engine: Engine, policy: str, excused: list[str]) -> None:
    body = ContractIn.model_validate(
        {
            "contract_id": "PP-1",
            "provider": "P",
            "customer": "C",
            "currency": "EUR",
            "timezone": TZ,
            "devices": list(DEVICES),
            "effective_from": "2026-01",
            "unit": "t",
            "rated_capacity_per_hour": int(RATED),
            "missing_data": policy,
            "excused_causes": excused,
            "terms": {"fixed_fee": "0"},
        }
    )
    empty_database(engine)
    with engine.begin() as conn:
        contracts.create_contract(conn, body, "test")


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=events,
    policy=st.sampled_from(["downtime", "excused", "uptime"]),
    excused=st.lists(st.sampled_from(CAUSES), unique=True, max_size=3),
)
def test_rollup_kpis_equal_a_brute_force_over_raw_samples(engine, history, policy, excused) -> None:  # type: ignore[no-untyped-def]
    _contract(engine, policy, excused)
    received = datetime.now(UTC)
    for e in history:
        with engine.begin() as conn:
            if isinstance(e, Sent):
                write_messages(conn, [Message(f"viu/{e.device}/telemetry", _payload(e), received)])
            else:
                d, a, b, c = e
                note = Annotation.model_validate({"device_id": d, "from": a, "to": b, "cause": c})
                annotations.create(conn, note, "test")
    with engine.connect() as conn:
        got = compute(conn, "PP-1", PERIOD).body.kpis
    assert {k: got[k] for k in got} == brute_force(history, policy, set(excused))
