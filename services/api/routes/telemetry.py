"""Telemetry over HTTP (spec §1.2, §6): ingest, stored samples, stats, dead letters.

Thin: every write goes through ``services.ingest.pipeline`` exactly like MQTT.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection, Engine

from services.api.audit import Audit
from services.api.deps import Conn, get_engine, get_settings, require
from services.api.params import RowIdPath
from services.api.repositories import telemetry as stored
from services.api.schemas.base import returns
from services.api.schemas.telemetry import (
    DeadLetterPage,
    IngestOut,
    IngestStats,
    ReplayOut,
    SamplePage,
)
from services.api.scoping import READ_ROLES, contract_filter, sees_all, visible_device
from services.api.tokens import Principal
from services.config import Settings
from services.errors import Invalid, NotFound, PayloadTooLarge
from services.ingest import deadletters, pipeline, replay, stats
from services.ingest.admission import Window
from services.ingest.decode import Message, http_topic
from services.ingest.http import ExactJSON, dead_letter_out, query_ts, sample_out
from services.ingest.stats import Outcome

router = APIRouter(tags=["telemetry"])
EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Writer = Annotated[Principal, Depends(require("admin", "provider"))]
Reader = Annotated[Principal, Depends(require(*READ_ROLES))]
Auditor = Annotated[Principal, Depends(require("admin", "auditor"))]
DeadLetterReader = Annotated[Principal, Depends(require("admin", "auditor", "provider"))]


async def raw_body(request: Request, settings: SettingsDep) -> bytes:
    """The request body as bytes, refused early when over ``max_body_bytes``."""
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"body over {limit} bytes")
    return bytes(body)


@router.post(
    "/telemetry/{device_id}",
    response_class=ExactJSON,
    **returns(IngestOut),
    responses={
        202: {"description": "stored; some items dead-lettered", "model": IngestOut},
        422: {"description": "nothing storable; all dead-lettered"},
    },
)
def post_telemetry(
    device_id: str,
    body: Annotated[bytes, Depends(raw_body)],
    engine: EngineDep,
    settings: SettingsDep,
    caller: Writer,
) -> Any:
    """Ingest one sample or a ``{"samples": [...]}`` batch, exactly as over MQTT.

    What the database refuses for good is dead-lettered like invalid input;
    a transient database error is a 503 (``problems``), anything else a 500.
    """
    if caller.role != "admin":
        with engine.connect() as conn:
            visible_device(conn, caller, device_id)
    message = Message(http_topic(device_id), body, datetime.now(UTC))
    outcome = pipeline.ingest(engine, [message], window=Window.of(settings))
    return _ingest_response(outcome)


def _ingest_response(outcome: Outcome) -> Any:
    body: dict[str, Any] = outcome.counts() | {
        "dead_letter_ids": outcome.dead_letter_ids,
        "dead_letters": [
            {"id": i, "reason": r}
            for i, r in zip(outcome.dead_letter_ids, outcome.dead_letter_reasons, strict=True)
        ],
    }
    kept = outcome.stored + outcome.duplicates + outcome.corrections
    if outcome.dead_lettered and not kept:
        reasons = "; ".join(outcome.dead_letter_reasons)[:2000]
        raise Invalid(f"nothing stored; dead-lettered: {reasons}", **body)
    return ExactJSON(body, status_code=202 if outcome.dead_lettered else 200)


@router.get("/devices/{device_id}/samples", response_class=ExactJSON, **returns(SamplePage))
def list_samples(
    device_id: str,
    conn: Conn,
    caller: Reader,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    cursor: str | None = None,
) -> Any:
    """Stored samples in ``[from, to)`` by ``ts``; follow ``next_cursor`` for more."""
    visible_device(conn, caller, device_id)
    found = stored.samples_page(
        conn,
        device_id,
        from_ts=query_ts(from_, "from"),
        to_ts=query_ts(to, "to"),
        after=query_ts(cursor, "cursor"),
        limit=limit + 1,
    )
    more = len(found) > limit
    items = [sample_out(r) for r in found[:limit]]
    next_cursor = items[-1]["ts"] if more else None
    return ExactJSON({"device_id": device_id, "items": items, "next_cursor": next_cursor})


@router.get("/ingest/stats", **returns(IngestStats))
def ingest_stats(conn: Conn, _: Auditor) -> dict[str, Any]:
    """Counters since this process started and in total (persisted with the data)."""
    return stats.report(conn)


@router.get("/dead-letters", response_class=ExactJSON, **returns(DeadLetterPage))
def list_dead_letters(
    conn: Conn,
    caller: DeadLetterReader,
    status: Annotated[str | None, Query(pattern="^(open|replayed|failed)$")] = None,
    device_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[int | None, Query(ge=0)] = None,
) -> Any:
    """Dead letters by id, oldest first; providers see their devices' entries only."""
    scope = None if sees_all(caller) else _visible_devices(conn, caller)
    found = deadletters.listing(
        conn, status=status, device_id=device_id, device_ids=scope, after=cursor, limit=limit + 1
    )
    items = [dead_letter_out(r) for r in found[:limit]]
    next_cursor = items[-1]["id"] if len(found) > limit else None
    return ExactJSON({"items": items, "next_cursor": next_cursor})


def _visible_devices(conn: Connection, caller: Principal) -> list[str]:
    return stored.device_ids(conn, contract_filter(caller))


@router.post(
    "/dead-letters/{dead_letter_id}/replay", response_class=ExactJSON, **returns(ReplayOut)
)
def replay_dead_letter(
    dead_letter_id: RowIdPath,
    engine: EngineDep,
    settings: SettingsDep,
    caller: Writer,
    audit: Audit,
) -> Any:
    """Run a dead letter through the write path again (e.g. after registering its device)."""

    def work(conn: Connection) -> tuple[dict[str, Any], Outcome | None]:
        if caller.role != "admin":
            entry = deadletters.get(conn, dead_letter_id)
            if entry["device_id"] is None:
                raise NotFound(f"no dead letter {dead_letter_id}")
            try:
                visible_device(conn, caller, entry["device_id"])
            except NotFound:
                raise NotFound(f"no dead letter {dead_letter_id}") from None
        entry, outcome = replay.replay(conn, dead_letter_id, caller.subject, Window.of(settings))
        audit(
            conn,
            "dead_letter.replay",
            "dead_letter",
            str(dead_letter_id),
            status=entry["status"],
            stored=None if outcome is None else outcome.stored,
        )
        return entry, outcome

    entry, outcome = pipeline.in_transaction(engine, work)
    if outcome is not None:
        pipeline.record(outcome, 1, 0.0)
    body = dead_letter_out(entry)
    body["outcome"] = (
        None if outcome is None else outcome.counts() | {"dead_letter_ids": outcome.dead_letter_ids}
    )
    return ExactJSON(body)
