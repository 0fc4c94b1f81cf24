"""Early warning (spec §3.4): the period's statement projected from the month to date.

The month-to-date usage is scaled to the whole period at the current rate
(period minutes / elapsed minutes): sums such as throughput extrapolate at the
current daily rate, ratios such as availability stay what they are so far,
and missing minutes stay missing. The projection is settled by
``engine.settle`` like any statement, so a flag means exactly "if the month
continues like this, this line will be on the statement".
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from schemas.contract import ContractTerms, json_number
from schemas.money import decimal_context
from schemas.periods import Period, period_bounds, period_minutes, period_of
from schemas.statement import KpiEvaluation, StatementBody
from services.config import Settings
from services.errors import Conflict, Unavailable, ViuError
from services.settlement import contracts, ownership
from services.settlement.engine import settle
from services.settlement.kpis import DeviceUsage, device_quantities, fleet_kpis
from services.settlement.usage import load_usage

log = logging.getLogger(__name__)
BUCKET = timedelta(minutes=15)
PUBLISH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Outlook:
    contract_id: str
    period: Period
    as_of: datetime
    elapsed_min: Decimal
    period_min: int
    contract_version: int
    month_to_date: dict[str, Decimal | None]
    projected: StatementBody
    flags: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "contract_id": self.contract_id,
            "period": str(self.period),
            "as_of": self.as_of.isoformat(),
            "contract_version": self.contract_version,
            "elapsed_days": float(self.elapsed_min / 1440),
            "period_days": float(Decimal(self.period_min) / 1440),
            "month_to_date": {"kpis": _numbers(self.month_to_date)},
            "projected": self.projected.model_dump(mode="json"),
            "flags": self.flags,
        }


def _numbers(kpis: dict[str, Decimal | None]) -> dict[str, int | float | None]:
    return {k: None if v is None else json_number(v) for k, v in kpis.items()}


def _bucket_floor(ts: datetime) -> datetime:
    """Rollups are 15-minute buckets: the month to date ends on one."""
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return epoch + ((ts.astimezone(UTC) - epoch) // BUCKET) * BUCKET


def scale(usage: DeviceUsage, factor: Decimal) -> DeviceUsage:
    """``usage`` as if the rest of the period ran at the same rate."""
    with decimal_context():
        return DeviceUsage(
            device_id=usage.device_id,
            reported_min=usage.reported_min * factor,
            uptime_min=usage.uptime_min * factor,
            quality_min=usage.quality_min * factor,
            throughput=usage.throughput * factor,
            down_min={cause: minutes * factor for cause, minutes in usage.down_min.items()},
        )


def month_to_date_kpis(
    terms: ContractTerms, usage: Sequence[DeviceUsage], elapsed_min: Decimal
) -> dict[str, Decimal | None]:
    """The KPIs so far, with the elapsed minutes as the period (as the KPI charts do)."""
    quantities = [
        device_quantities(u, elapsed_min, terms.missing_data, terms.excused_causes) for u in usage
    ]
    kpis = fleet_kpis(quantities, terms.rated_capacity_per_hour)
    return {str(name): value for name, value in kpis.items()}


def project(conn: Connection, contract_id: str, now: datetime | None = None) -> Outlook:
    """The outlook of the period running at ``now`` (default: the current one)."""
    now = now or datetime.now(UTC)
    tz = contracts.latest_version(conn, contract_id).terms.timezone
    period = period_of(now, tz)
    version = contracts.version_in_force(conn, contract_id, period)
    if version is None:
        raise Conflict(f"contract '{contract_id}' is not in force in {period}")
    terms = ownership.owned_terms(conn, contract_id, version.terms, period)
    start, _ = period_bounds(period, terms.timezone)
    until = _bucket_floor(now)
    elapsed = Decimal(int((until - start).total_seconds())) / 60
    if elapsed <= 0:
        raise Conflict(f"{period} has only just begun: nothing to project yet")
    usage, _ = load_usage(conn, terms, period, until=until)
    minutes = period_minutes(period, terms.timezone)
    with decimal_context():
        factor = Decimal(minutes) / elapsed
    projected = settle(terms, period, [scale(u, factor) for u in usage])
    return Outlook(
        contract_id=contract_id,
        period=period,
        as_of=until,
        elapsed_min=elapsed,
        period_min=minutes,
        contract_version=version.version,
        month_to_date=month_to_date_kpis(terms, usage, elapsed),
        projected=projected,
        flags=flags(projected),
    )


def _flag(e: KpiEvaluation) -> dict[str, Any] | None:
    value = None if e.value is None else json_number(e.value)
    if e.status == "penalty":
        return {
            "kpi": e.kpi,
            "flag": "projected_penalty",
            "projected_value": value,
            "target": json_number(e.target),
            "projected_amount": format(e.penalty, "f"),
            "message": f"{e.kpi} is heading for a penalty: {e.explanation}",
        }
    if e.bonus_above is not None and e.value is not None and e.status != "bonus":
        return {
            "kpi": e.kpi,
            "flag": "missed_bonus",
            "projected_value": value,
            "bonus_above": json_number(e.bonus_above),
            "projected_amount": "0",
            "message": f"{e.kpi} projected at {value}: the bonus above "
            f"{json_number(e.bonus_above)} would be missed",
        }
    return None


def flags(projected: StatementBody) -> list[dict[str, Any]]:
    """Every KPI projected to trigger a penalty or miss a bonus."""
    return [f for e in projected.evaluations if (f := _flag(e)) is not None]


def alert_topic(prefix: str, contract_id: str) -> str:
    return f"{prefix}/{contract_id}/alerts"


def publish(mqtt_url: str, topic: str, payload: dict[str, Any], settings: Settings) -> None:
    """Publish one alert with QoS 1 and wait for the broker's acknowledgement (TLS as configured)."""
    from services import broker

    where = broker.endpoint(mqtt_url)
    client = broker.paho_client(settings, mqtt_url, f"viu-alerts-{uuid.uuid4().hex[:8]}")
    try:
        client.connect(where.host, where.port)
        client.loop_start()
        info = client.publish(topic, json.dumps(payload), qos=1)
        info.wait_for_publish(PUBLISH_TIMEOUT_S)
        if not info.is_published():
            raise Unavailable(f"the broker did not acknowledge the alert on {topic}")
    except OSError as exc:
        raise Unavailable(f"cannot reach the MQTT broker: {broker.describe(exc, where)}") from None
    finally:
        client.disconnect()
        client.loop_stop()


def alert_if_flagged(
    conn: Connection,
    settings: Settings,
    contract_id: str,
    now: datetime | None = None,
    mqtt_url: str | None = None,
) -> Outlook | None:
    """Project the running period and publish its flags, if any; never raises.

    Called after the daily month-to-date draft: an alert is a side effect that
    must not cost the draft.
    """
    url = mqtt_url or settings.mqtt_url
    try:
        with conn.begin_nested():
            outlook = project(conn, contract_id, now)
        if outlook.flags and url:
            topic = alert_topic(settings.mqtt_topic_prefix, contract_id)
            publish(url, topic, alert_payload(outlook), settings)
        return outlook
    except ViuError as exc:
        log.info("no early warning for %s: %s", contract_id, exc.detail)
    except Exception:
        log.exception("early warning for %s failed", contract_id)
    return None


def alert_payload(outlook: Outlook) -> dict[str, Any]:
    return {
        "contract_id": outlook.contract_id,
        "period": str(outlook.period),
        "as_of": outlook.as_of.isoformat(),
        "projected_net": format(outlook.projected.net, "f"),
        "flags": outlook.flags,
    }
