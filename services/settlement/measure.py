"""A KPI on some of a contract's devices, per period and pooled, from the settlement rollups.

Corrective actions are judged by this (spec §7.4): their KPI on their devices
before and after. It reads the same rollups with the same §3.1 and §3.2
functions as settlement, under the version in force in each period, so a
period's value equals that of a settlement of those devices for that period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection

from schemas.money import decimal_context, round_kpi
from schemas.periods import Period, period_minutes
from schemas.vocabulary import RATIO_KPIS, KpiName
from services.settlement import contracts
from services.settlement.kpis import DeviceQuantities, device_quantities, fleet_kpis
from services.settlement.usage import load_usage


@dataclass(frozen=True)
class Measured:
    """One period's quantities of the devices measured, and the KPI they give."""

    period: Period
    value: Decimal | None
    quantities: tuple[DeviceQuantities, ...]
    rated_capacity_per_hour: Decimal


def measure(
    conn: Connection, contract_id: str, devices: Sequence[str], kpi: KpiName, period: Period
) -> Measured | None:
    """``kpi`` on ``devices`` (empty: all the contract's) in ``period``; ``None`` when no
    version governs the period."""
    version = contracts.version_in_force(conn, contract_id, period)
    if version is None:
        return None
    terms = version.terms
    chosen = [d for d in terms.devices if not devices or d in devices]
    if not chosen:
        return None
    usage, _ = load_usage(conn, terms.model_copy(update={"devices": chosen}), period)
    minutes = period_minutes(period, terms.timezone)
    quantities = tuple(
        device_quantities(u, minutes, terms.missing_data, terms.excused_causes) for u in usage
    )
    value = fleet_kpis(quantities, terms.rated_capacity_per_hour)[kpi]
    return Measured(period, value, quantities, terms.rated_capacity_per_hour)


def pooled(measured: Sequence[Measured], kpi: KpiName) -> Decimal | None:
    """Several periods as one: a ratio from numerators and denominators summed (never
    ratios averaged), a sum such as throughput as its mean per period."""
    if not measured:
        return None
    if kpi not in RATIO_KPIS:
        known = [m.value for m in measured if m.value is not None]
        with decimal_context():
            return round_kpi(sum(known, Decimal(0)) / len(known)) if known else None
    quantities = [q for m in measured for q in m.quantities]
    value = fleet_kpis(quantities, measured[-1].rated_capacity_per_hour)[kpi]
    return None if value is None else round_kpi(value)
