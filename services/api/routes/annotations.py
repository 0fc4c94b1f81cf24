"""Annotations over HTTP (spec §1.3): who re-classified which downtime, and when."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection, Engine

from schemas.telemetry import DEVICE_ID, Annotation
from services.api.audit import Audit
from services.api.deps import Conn, get_engine, require
from services.api.scoping import READ_ROLES, visible_device
from services.api.tokens import Principal
from services.ingest import annotations as notes
from services.ingest import pipeline
from services.ingest.http import ExactJSON

router = APIRouter(tags=["annotations"])
Annotator = Annotated[Principal, Depends(require("admin", "provider", "customer"))]
Reader = Annotated[Principal, Depends(require(*READ_ROLES))]


@router.post("/annotations", status_code=201, response_class=ExactJSON)
def create_annotation(
    body: Annotation,
    engine: Annotated[Engine, Depends(get_engine)],
    caller: Annotator,
    audit: Audit,
) -> Any:
    """Store the annotation and re-classify the rollups it covers, in one transaction."""

    def work(conn: Connection) -> dict[str, Any]:
        visible_device(conn, caller, body.device_id)
        note = notes.create(conn, body, caller.subject)
        audit(
            conn,
            "annotation.create",
            "annotation",
            str(note["id"]),
            device_id=body.device_id,
            cause=body.cause,
            **{"from": body.from_ts.isoformat(), "to": body.to_ts.isoformat()},
        )
        return note

    return ExactJSON(pipeline.in_transaction(engine, work), status_code=201)


@router.get("/annotations", response_class=ExactJSON)
def list_annotations(
    conn: Conn,
    caller: Reader,
    device_id: Annotated[str, Query(pattern=DEVICE_ID.pattern)],
) -> Any:
    visible_device(conn, caller, device_id)
    return ExactJSON(notes.listing(conn, device_id))
