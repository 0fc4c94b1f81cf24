"""The independently computed worked examples, through the whole path:
HTTP ingest → rollups → settlement run → statement."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.settlement.helpers import load, ok, post_samples, run, scenarios, statement


def _lines(lines: list[dict[str, Any]]) -> list[tuple[str, str | None, Decimal]]:
    return [(ln["kind"], ln.get("kpi"), Decimal(ln["amount"])) for ln in lines]


@pytest.mark.parametrize("path", scenarios(), ids=lambda p: p.stem)
def test_worked_example_settles_to_the_expected_statement(api, admin, path: Path) -> None:  # type: ignore[no-untyped-def]
    case = load(path)
    contract = case["contract"]
    ok(api.post("/v1/contracts", json=contract, headers=admin), 201)
    for device, samples in case["telemetry"].items():
        post_samples(api, admin, device, samples)
    for note in case.get("annotations") or []:
        ok(api.post("/v1/annotations", json=note, headers=admin), 201)
    run(api, admin, contract["contract_id"], case["period"])

    got = statement(api, admin, contract["contract_id"], case["period"])
    want = case["expected"]
    assert got["status"] == "draft"
    assert got["currency"] == contract["currency"]
    for kpi, value in want["kpis"].items():
        assert Decimal(str(got["kpis"][kpi])) == Decimal(str(value)).quantize(
            Decimal("0.000001")
        ), kpi
    assert _lines(got["lines"]) == _lines(want["lines"])
    assert Decimal(got["net"]) == Decimal(want["net"])
    assert all(ln["explanation"] for ln in got["lines"])
