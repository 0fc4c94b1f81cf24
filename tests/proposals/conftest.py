"""Builders for the proposal tests: contracts, constructed months, rollups written directly."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from schemas.contract import ContractTerms
from schemas.db import rollups
from schemas.periods import Period, period_bounds, period_minutes
from services.settlement.engine import settle
from services.settlement.kpis import DeviceUsage
from services.settlement.proposals.history import SettledPeriod
from tests.settlement.helpers import ok

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
"""Detection "now" of the database tests: June to October 2026 are closed periods."""

CONTRACT: dict[str, Any] = {
    "contract_id": "RA-1",
    "provider": "Connectcorp",
    "customer": "MineCo",
    "currency": "EUR",
    "timezone": "UTC",
    "devices": ["ra-a"],
    "effective_from": "2026-01",
    "unit": "t",
    "rated_capacity_per_hour": 100,
    "terms": {
        "fixed_fee": "10000.00",
        "usage": {
            "basis": "throughput",
            "minimum_commitment": 30000,
            "tiers": [{"up_to": None, "price": "0.50"}],
        },
        "kpis": [
            {
                "kpi": "availability",
                "target": 0.95,
                "deadband": 0.005,
                "penalty": {"per_point": "500.00"},
                "bonus": {"above": 0.97, "per_point": "200.00"},
            }
        ],
    },
}


def contract(**changes: Any) -> dict[str, Any]:
    """The base contract with top-level keys or ``terms`` keys replaced."""
    body = copy.deepcopy(CONTRACT)
    for key, value in changes.items():
        if key in body["terms"] or key in ("penalty_cap_pct", "bonus_cap_pct", "gain_share"):
            body["terms"][key] = value
        else:
            body[key] = value
    return body


def terms_of(body: dict[str, Any]) -> ContractTerms:
    data = {k: v for k, v in body.items() if k not in ("contract_id", "provider", "customer")}
    return ContractTerms.model_validate(data)


def usage(
    device: str,
    minutes: int,
    *,
    availability: float = 0.96,
    throughput: float = 35000,
    planned: float = 0,
    customer: float = 0,
    missing: float = 0,
) -> DeviceUsage:
    """A month of one device: availability over the non-excused reported minutes."""
    reported = Decimal(minutes) - Decimal(str(missing))
    excused = Decimal(str(planned)) + Decimal(str(customer))
    uptime = (Decimal(minutes) - excused) * Decimal(str(availability))
    unplanned = reported - uptime - excused
    return DeviceUsage(
        device_id=device,
        reported_min=reported,
        uptime_min=uptime,
        quality_min=uptime,
        throughput=Decimal(str(throughput)),
        down_min={
            "unplanned": unplanned,
            "planned": Decimal(str(planned)),
            "customer": Decimal(str(customer)),
        },
    )


def month(terms: ContractTerms, period: str, version: int = 1, **values: Any) -> SettledPeriod:
    """A period settled by the engine from one constructed device usage."""
    p = Period.parse(period)
    minutes = period_minutes(p, terms.timezone)
    body = settle(terms, p, [usage(d, minutes, **values) for d in terms.devices])
    return SettledPeriod(p, body, version, "issued", False)


def fleet_month(
    terms: ContractTerms, period: str, per_device: dict[str, dict[str, Any]], version: int = 1
) -> SettledPeriod:
    """A period settled by the engine from each device's own constructed usage."""
    p = Period.parse(period)
    minutes = period_minutes(p, terms.timezone)
    body = settle(terms, p, [usage(d, minutes, **per_device.get(d, {})) for d in terms.devices])
    return SettledPeriod(p, body, version, "issued", False)


def fleet_months(
    terms: ContractTerms, first: str, per_period: list[dict[str, dict[str, Any]]]
) -> list[SettledPeriod]:
    period = Period.parse(first)
    out = []
    for per_device in per_period:
        out.append(fleet_month(terms, str(period), per_device))
        period = period.next()
    return out


def months(terms: ContractTerms, first: str, values: list[dict[str, Any]]) -> list[SettledPeriod]:
    period = Period.parse(first)
    out = []
    for v in values:
        out.append(month(terms, str(period), **v))
        period = period.next()
    return out


def write_rollups(
    engine: Engine,
    terms: ContractTerms,
    period: str,
    per_device: dict[str, dict[str, Any]] | None = None,
    **values: Any,
) -> None:
    """One rollup row per device holding a whole month (rollups only ever get summed);
    ``per_device`` gives some devices values of their own."""
    p = Period.parse(period)
    start, _ = period_bounds(p, terms.timezone)
    minutes = period_minutes(p, terms.timezone)
    with engine.begin() as conn:
        for d in terms.devices:
            u = usage(d, minutes, **{**values, **(per_device or {}).get(d, {})})
            conn.execute(
                insert(rollups).values(
                    device_id=d,
                    bucket=start,
                    samples=1,
                    reported_s=int(u.reported_min * 60),
                    uptime_min=u.uptime_min,
                    quality_min=u.quality_min,
                    throughput=u.throughput,
                    down_unplanned=u.down_min["unplanned"],
                    down_planned=u.down_min["planned"],
                    down_customer=u.down_min["customer"],
                    down_external=u.down_min["external"],
                    last_received_at=start,
                )
            )


@pytest.fixture
def headers(make_token: Callable[..., str]) -> Callable[[str, str | None], dict[str, str]]:
    def make(role: str, party: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(role, party)}"}

    return make


@pytest.fixture
def create(api: Any, admin: dict[str, str]) -> Callable[..., ContractTerms]:
    """Create a contract through the API; returns its terms."""

    def make(body: dict[str, Any] | None = None) -> ContractTerms:
        body = body or contract()
        ok(api.post("/v1/contracts", json=body, headers=admin), 201)
        return terms_of(body)

    return make


def settle_months(api: Any, admin: dict[str, str], contract_id: str, periods: list[str]) -> None:
    for period in periods:
        ok(
            api.post(
                "/v1/settlements/run",
                json={"period": period, "contract_id": contract_id},
                headers=admin,
            )
        )


def daily_samples(
    period: str, availability: float, throughput: float = 1200
) -> list[dict[str, Any]]:
    """A month (UTC) of one-day samples: unplanned downtime (1 - availability) of each day."""
    p = Period.parse(period)
    return [
        {
            "ts": f"{day.isoformat()}T00:00:00Z",
            "interval_s": 86400,
            "uptime_min": round(1440 * availability, 4),
            "quality_min": round(1440 * availability, 4),
            "throughput": throughput,
        }
        for day in p.days()
    ]
