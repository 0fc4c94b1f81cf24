"""Why an adjustment exists (spec §3.4): what changed in the inputs since the issue.

An adjustment is written when a period's inputs no longer match the issued
statement. Finance must be able to say why to the other party, so the
adjustment records, when it is computed:

- late samples: stored for the period after the issued statement's data
  watermark (the latest ingest time it included), corrections excluded;
- corrected samples: revisions made after that watermark;
- annotations created since the issued statement was computed;
- each device's usage that moved (reported minutes, uptime, quality,
  throughput, downtime by cause), issued against re-settled;
- a different contract version, if one now governs the period.

It is stored with the adjustment (and frozen when that is issued), because
later data would otherwise rewrite the reason of an issued document.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from schemas.periods import Period, period_bounds, zone

USAGE_FIELDS = ("reported_min", "uptime_min", "quality_min", "throughput")
FIELD_WORDS = {
    "reported_min": "reported minutes",
    "uptime_min": "uptime minutes",
    "quality_min": "quality minutes",
    "throughput": "throughput",
}

LATE_SQL = text(
    """
    SELECT count(*) FROM samples s
     WHERE s.device_id = ANY(:devices) AND s.ts >= :start AND s.ts < :end
       AND (CAST(:mark AS timestamptz) IS NULL OR s.received_at > :mark)
       AND NOT EXISTS (SELECT 1 FROM sample_revisions r
                        WHERE r.device_id = s.device_id AND r.ts = s.ts
                          AND (CAST(:mark AS timestamptz) IS NULL OR r.revised_at > :mark))
    """
)
CORRECTED_SQL = text(
    """
    SELECT count(DISTINCT (device_id, ts)) FROM sample_revisions
     WHERE device_id = ANY(:devices) AND ts >= :start AND ts < :end
       AND (CAST(:mark AS timestamptz) IS NULL OR revised_at > :mark)
    """
)
ANNOTATIONS_SQL = text(
    """
    SELECT id, device_id, from_ts, to_ts, cause, note, author, created_at FROM annotations
     WHERE device_id = ANY(:devices) AND from_ts < :end AND to_ts > :start
       AND created_at > :since
     ORDER BY id
    """
)


def explain(
    conn: Connection,
    issued: Any,
    resettled: dict[str, Any],
    *,
    period: Period,
    timezone: str,
    contract_version: int,
    watermark: datetime | None,
) -> dict[str, Any]:
    """What changed between the issued statement ``issued`` (a row) and ``resettled``."""
    before: dict[str, Any] = issued.body.get("resettled", issued.body)
    devices = [d["device_id"] for d in resettled.get("devices", [])]
    start, end = period_bounds(period, timezone)
    window = {"devices": devices, "start": start, "end": end, "mark": issued.watermark}
    late = int(conn.execute(LATE_SQL, window).scalar_one())
    corrected = int(conn.execute(CORRECTED_SQL, window).scalar_one())
    notes = [
        _annotation(r, timezone)
        for r in conn.execute(ANNOTATIONS_SQL, {**window, "since": issued.computed_at})
    ]
    moved = device_changes(before.get("devices", []), resettled.get("devices", []))
    changes: dict[str, Any] = {
        "late_samples": late,
        "corrected_samples": corrected,
        "annotations": notes,
        "devices": moved,
        "data_up_to": {
            "issued": issued.watermark.isoformat() if issued.watermark else None,
            "now": watermark.isoformat() if watermark else None,
        },
    }
    if contract_version != issued.contract_version:
        changes["contract_version"] = {"issued": issued.contract_version, "now": contract_version}
    changes["summary"] = summary(changes, timezone)
    return changes


def device_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[Any]:
    """Per device, every usage quantity that differs (issued → re-settled)."""
    old = {d["device_id"]: _quantities(d) for d in before}
    out = []
    for device in after:
        now = _quantities(device)
        was = old.get(device["device_id"], {})
        diff = {
            k: {"issued": _number(was.get(k, Decimal(0))), "now": _number(v)}
            for k, v in now.items()
            if was.get(k, Decimal(0)) != v
        }
        if diff:
            out.append({"device_id": device["device_id"], "changes": diff})
    return out


def _quantities(device: dict[str, Any]) -> dict[str, Decimal]:
    values = {k: Decimal(str(device.get(k, 0))) for k in USAGE_FIELDS}
    for cause, minutes in sorted(device.get("down_min", {}).items()):
        values[f"down_min.{cause}"] = Decimal(str(minutes))
    return values


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _annotation(r: Any, timezone: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "device_id": r.device_id,
        "from": r.from_ts.isoformat(),
        "to": r.to_ts.isoformat(),
        "cause": r.cause,
        "note": r.note,
        "author": r.author,
        "created_at": r.created_at.isoformat(),
        "local": f"{_local(r.from_ts, timezone)} to {_local(r.to_ts, timezone)}",
    }


def _local(ts: datetime, timezone: str) -> str:
    return ts.astimezone(zone(timezone)).strftime("%Y-%m-%d %H:%M")


def _qty(value: int | float) -> str:
    return format(Decimal(str(value)).normalize(), ",f")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def summary(changes: dict[str, Any], timezone: str) -> list[str]:
    """The reasons in sentences, as the statement page and the CSV show them."""
    lines = []
    if changes["late_samples"]:
        mark = changes["data_up_to"]["issued"]
        since = f" after the issued data (up to {_local(datetime.fromisoformat(mark), timezone)} {timezone})"
        lines.append(f"{_plural(changes['late_samples'], 'late sample')}{since if mark else ''}")
    if changes["corrected_samples"]:
        lines.append(f"{_plural(changes['corrected_samples'], 'corrected sample')}")
    for a in changes["annotations"]:
        note = f": {a['note']}" if a["note"] else ""
        lines.append(
            f"annotation #{a['id']} on {a['device_id']}, {a['local']} ({timezone}), "
            f"downtime classified as {a['cause']} by {a['author']}{note}"
        )
    for d in changes["devices"]:
        moves = ", ".join(
            f"{FIELD_WORDS.get(k, k.replace('down_min.', 'downtime minutes ('))}"
            f"{')' if k.startswith('down_min.') else ''} {_qty(v['issued'])} → {_qty(v['now'])}"
            for k, v in d["changes"].items()
        )
        lines.append(f"{d['device_id']}: {moves}")
    if "contract_version" in changes:
        v = changes["contract_version"]
        lines.append(f"contract version {v['issued']} → {v['now']}")
    return lines or ["the settlement inputs changed"]
