"""Per-device quantities (spec §3.1) and fleet KPIs (spec §3.2).

Fleet KPIs sum numerators and denominators across devices and never average
per-device ratios: a device that ran 10 minutes must not weigh as much as one
that ran all month.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from schemas.money import decimal_context, round_kpi
from schemas.statement import DeviceSummary
from schemas.vocabulary import DOWNTIME_CAUSES, DowntimeCause, KpiName, MissingDataPolicy

ZERO = Decimal(0)
SIXTY = Decimal(60)


def _decimal(value: Decimal | int | float | str) -> Decimal:
    """Telemetry numbers arrive as JSON floats; their text form is what was sent."""
    return Decimal(str(value)) if isinstance(value, float) else Decimal(value)


def _all_causes(down_min: Mapping[DowntimeCause, Decimal]) -> dict[DowntimeCause, Decimal]:
    """Every cause present, in a fixed order, so two equal usages compare equal."""
    return {cause: _decimal(down_min.get(cause, ZERO)) for cause in DOWNTIME_CAUSES}


@dataclass(frozen=True)
class DeviceUsage:
    """What one device reported in a period, causes already (re)classified.

    ``reported_min`` sums interval_s/60 and ``down_min[c]`` sums
    interval_s/60 - uptime_min over the samples whose effective cause is c.
    """

    device_id: str
    reported_min: Decimal = ZERO
    uptime_min: Decimal = ZERO
    quality_min: Decimal = ZERO
    throughput: Decimal = ZERO
    down_min: Mapping[DowntimeCause, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("reported_min", "uptime_min", "quality_min", "throughput"):
            object.__setattr__(self, name, _decimal(getattr(self, name)))
        object.__setattr__(self, "down_min", _all_causes(self.down_min))


@dataclass(frozen=True)
class DeviceQuantities:
    """A device's quantities for a period after the missing-data policy."""

    device_id: str
    period_min: Decimal
    reported_min: Decimal
    missing_min: Decimal
    uptime_min: Decimal
    quality_min: Decimal
    throughput: Decimal
    down_min: Mapping[DowntimeCause, Decimal]
    excused_min: Decimal
    base_min: Decimal


def device_quantities(
    usage: DeviceUsage,
    period_min: int | Decimal,
    missing_data: MissingDataPolicy,
    excused_causes: Collection[DowntimeCause],
) -> DeviceQuantities:
    """Apply §3.1: unreported minutes become downtime, excused time or uptime."""
    with decimal_context():
        period = Decimal(period_min)
        missing = max(ZERO, period - usage.reported_min)
        down = _all_causes(usage.down_min)
        uptime = usage.uptime_min
        if missing_data == "downtime":
            down["unplanned"] += missing
        elif missing_data == "uptime":
            uptime += missing
        excused = sum((down[c] for c in DOWNTIME_CAUSES if c in excused_causes), ZERO)
        if missing_data == "excused":
            excused += missing
        return DeviceQuantities(
            device_id=usage.device_id,
            period_min=period,
            reported_min=usage.reported_min,
            missing_min=missing,
            uptime_min=uptime,
            quality_min=usage.quality_min,
            throughput=usage.throughput,
            down_min=down,
            excused_min=excused,
            base_min=period - excused,
        )


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """``None`` marks an undefined KPI; a non-positive base has no meaning either."""
    return numerator / denominator if denominator > 0 else None


def fleet_kpis_exact(
    quantities: Sequence[DeviceQuantities], rated_capacity_per_hour: Decimal
) -> dict[KpiName, Decimal | None]:
    """The eight KPIs of §3.2 at full precision (``None``: zero denominator)."""
    with decimal_context():
        uptime = sum((q.uptime_min for q in quantities), ZERO)
        quality = sum((q.quality_min for q in quantities), ZERO)
        throughput = sum((q.throughput for q in quantities), ZERO)
        base = sum((q.base_min for q in quantities), ZERO)
        availability = _ratio(uptime, base)
        quality_rate = _ratio(quality, uptime)
        performance = _ratio(throughput, rated_capacity_per_hour * uptime / SIXTY)
        oee = None
        if availability is not None and performance is not None and quality_rate is not None:
            oee = availability * performance * quality_rate
        return {
            "availability": availability,
            "quality_rate": quality_rate,
            "performance": performance,
            "utilisation": _ratio(throughput, rated_capacity_per_hour * base / SIXTY),
            "oee": oee,
            "throughput": throughput,
            "utilised_capacity_hours": throughput / rated_capacity_per_hour,
            "uptime_hours": uptime / SIXTY,
        }


def fleet_kpis(
    quantities: Sequence[DeviceQuantities], rated_capacity_per_hour: Decimal
) -> dict[KpiName, Decimal | None]:
    """The eight KPIs of §3.2, each rounded half-even to 6 places.

    ``oee`` is the product of the unrounded components, rounded once, so that it
    does not carry three rounding errors.
    """
    exact = fleet_kpis_exact(quantities, rated_capacity_per_hour)
    return {name: None if value is None else round_kpi(value) for name, value in exact.items()}


def summary_quantities(summary: DeviceSummary) -> DeviceQuantities:
    """A statement's device summary back as quantities, to compute that device's own KPIs."""
    return DeviceQuantities(
        device_id=summary.device_id,
        period_min=summary.period_min,
        reported_min=summary.reported_min,
        missing_min=summary.missing_min,
        uptime_min=summary.uptime_min,
        quality_min=summary.quality_min,
        throughput=summary.throughput,
        down_min=_all_causes(summary.down_min),
        excused_min=summary.excused_min,
        base_min=summary.base_min,
    )
