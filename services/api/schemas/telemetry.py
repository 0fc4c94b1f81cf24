"""Responses of ``routes/telemetry.py`` (spec §1.2, §6).

The ingest counters and stored rows are the ingester's: models here accept
keys it may add (a payload format, connection state) without breaking.
"""

from __future__ import annotations

from datetime import datetime

from services.api.schemas.base import Number, OpenOut


class IngestCounts(OpenOut):
    """The counters of spec §6 (``received``, ``stored``, ... ); more keys may follow."""

    received: int
    stored: int
    duplicates: int
    corrections: int
    dead_lettered: int


class DeadLetterRef(OpenOut):
    id: int
    reason: str


class IngestOut(IngestCounts):
    """What one ``POST /v1/telemetry/{device_id}`` did (202: some items dead-lettered)."""

    dead_letter_ids: list[int]
    dead_letters: list[DeadLetterRef]


class IngestStats(OpenOut):
    since_start: IngestCounts
    total: IngestCounts


class SampleOut(OpenOut):
    """A stored sample (spec §1.2); numbers are the stored decimals, exactly."""

    ts: datetime
    interval_s: int
    uptime_min: Number
    quality_min: Number
    throughput: Number
    downtime_cause: str | None = None
    seq: int | None = None


class SamplePage(OpenOut):
    device_id: str
    items: list[SampleOut]
    next_cursor: datetime | None


class DeadLetterOut(OpenOut):
    """A dead letter; ``payload`` is UTF-8 text or base64 (``payload_encoding``)."""

    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    status: str
    replayed_at: datetime | None
    replayed_by: str | None
    replay_result: str | None
    payload: str
    payload_encoding: str


class ReplayOutcome(IngestCounts):
    dead_letter_ids: list[int]


class ReplayOut(DeadLetterOut):
    outcome: ReplayOutcome | None


class DeadLetterPage(OpenOut):
    items: list[DeadLetterOut]
    next_cursor: int | None
