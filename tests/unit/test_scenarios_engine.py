"""The shared worked examples, settled by the engine alone.

Telemetry is aggregated here in plain Python, independently of viu's ingest and
rollups, so that a disagreement points at the engine and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.contract import ContractIn
from schemas.money import decimal_context, round_kpi
from schemas.periods import Period, parse_timestamp, period_bounds
from schemas.vocabulary import KPI_NAMES, DowntimeCause
from services.settlement.engine import settle
from services.settlement.kpis import DeviceUsage

SCENARIOS = Path(__file__).resolve().parents[3] / "shared" / "scenarios"
FILES = sorted(SCENARIOS.glob("*.json")) if SCENARIOS.is_dir() else []


def latest_samples(samples: Iterable[dict[str, Any]]) -> dict[datetime, dict[str, Any]]:
    """A later sample with the same ts replaces the earlier one."""
    return {parse_timestamp(sample["ts"]): sample for sample in samples}


def effective_cause(
    device_id: str, ts: datetime, sample: dict[str, Any], annotations: list[dict[str, Any]]
) -> DowntimeCause:
    """The sample's own cause, unless an annotation covering ts reclassifies it."""
    cause: DowntimeCause = sample.get("downtime_cause", "unplanned")
    for note in annotations:
        covers = parse_timestamp(note["from"]) <= ts < parse_timestamp(note["to"])
        if note["device_id"] == device_id and covers:
            cause = note["cause"]
    return cause


def device_usage(
    device_id: str,
    samples: Iterable[dict[str, Any]],
    bounds: tuple[datetime, datetime],
    annotations: list[dict[str, Any]],
) -> DeviceUsage:
    seconds, uptime, quality, throughput = 0, Decimal(0), Decimal(0), Decimal(0)
    down: dict[DowntimeCause, Decimal] = {}
    with decimal_context():
        for ts, sample in latest_samples(samples).items():
            if not bounds[0] <= ts < bounds[1]:
                continue
            ran = Decimal(str(sample["uptime_min"]))
            seconds += sample["interval_s"]
            uptime += ran
            quality += Decimal(str(sample["quality_min"]))
            throughput += Decimal(str(sample["throughput"]))
            cause = effective_cause(device_id, ts, sample, annotations)
            down[cause] = down.get(cause, Decimal(0)) + Decimal(sample["interval_s"]) / 60 - ran
        return DeviceUsage(device_id, Decimal(seconds) / 60, uptime, quality, throughput, down)


def settle_scenario(scenario: dict[str, Any]) -> dict[str, Any]:
    contract = ContractIn.model_validate(scenario["contract"])
    period = Period.parse(scenario["period"])
    bounds = period_bounds(period, contract.timezone)
    annotations = scenario.get("annotations") or []
    usage = [
        device_usage(device_id, samples, bounds, annotations)
        for device_id, samples in scenario["telemetry"].items()
    ]
    return settle(contract, period, usage).model_dump(mode="json")


@pytest.mark.skipif(not FILES, reason=f"no scenarios in {SCENARIOS}")
@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_engine_reproduces_the_worked_example(path: Path) -> None:
    scenario = json.loads(path.read_text())
    expected = scenario["expected"]
    statement = settle_scenario(scenario)

    assert set(expected["kpis"]) == set(KPI_NAMES)
    for name in KPI_NAMES:
        want = expected["kpis"][name]
        got = statement["kpis"][name]
        assert (got is None) == (want is None), name
        if want is not None:
            assert round_kpi(Decimal(str(got))) == round_kpi(Decimal(str(want))), name

    def shape(lines: list[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
        return [(line["kind"], line.get("kpi"), line["amount"]) for line in lines]

    assert shape(statement["lines"]) == shape(expected["lines"])
    assert statement["net"] == expected["net"]
