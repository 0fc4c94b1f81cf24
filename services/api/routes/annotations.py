"""Annotations over HTTP (spec §1.3, §7.2): who re-classified which downtime, and who agreed.

One party's annotation is ``pending`` until the other party approves it
(``/approve``) or rejects it with a reason (``/reject``); an admin token's
annotation is an operator's data fix and counts at once, audited as such.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from sqlalchemy import Connection, Engine

from schemas.telemetry import DEVICE_ID, Annotation
from schemas.vocabulary import AnnotationStatus
from services.api import resolutions
from services.api.audit import Audit
from services.api.decisions import DecisionIn, reason_of
from services.api.deps import Conn, get_engine, require
from services.api.params import RowIdPath
from services.api.parties import contract_of, own_party
from services.api.schemas.annotations import AnnotationOut
from services.api.schemas.base import returns
from services.api.scoping import READ_ROLES, visible_contract, visible_device
from services.api.tokens import Principal
from services.errors import Invalid
from services.ingest import annotations as notes
from services.ingest import pipeline
from services.ingest.http import ExactJSON

router = APIRouter(tags=["annotations"])
Annotator = Annotated[Principal, Depends(require("admin", "provider", "customer"))]
Reader = Annotated[Principal, Depends(require(*READ_ROLES))]


@router.post("/annotations", status_code=201, response_class=ExactJSON, **returns(AnnotationOut))
def create_annotation(
    body: Annotation,
    engine: Annotated[Engine, Depends(get_engine)],
    caller: Annotator,
    audit: Audit,
) -> Any:
    """Store the annotation; it counts once the other party approved it (an admin's at once)."""

    def work(conn: Connection) -> dict[str, Any]:
        contract_id = visible_device(conn, caller, body.device_id)
        party = own_party(conn, caller, contract_id)
        note = notes.create(conn, body, caller.subject, party=party)
        audit(
            conn,
            "annotation.create",
            "annotation",
            str(note["id"]),
            device_id=body.device_id,
            cause=body.cause,
            status=note["status"],
            party=party,
            admin_data_fix=party is None,
            **{"from": body.from_ts.isoformat(), "to": body.to_ts.isoformat()},
        )
        return note

    return ExactJSON(pipeline.in_transaction(engine, work), status_code=201)


@router.get("/annotations", response_class=ExactJSON, **returns(list[AnnotationOut]))
def list_annotations(
    conn: Conn,
    caller: Reader,
    device_id: Annotated[str | None, Query(pattern=DEVICE_ID.pattern)] = None,
    contract_id: Annotated[str | None, Query(pattern=DEVICE_ID.pattern)] = None,
    status: Annotated[AnnotationStatus | None, Query()] = None,
) -> Any:
    """A device's or a contract's annotations (``status=pending``: those awaiting approval)."""
    if device_id is None and contract_id is None:
        raise Invalid("name a device_id or a contract_id", field="device_id")
    if device_id is not None:
        visible_device(conn, caller, device_id)
    if contract_id is not None:
        visible_contract(conn, caller, contract_id)
    return ExactJSON(notes.listing(conn, device_id, contract_id=contract_id, status=status))


def _visible(conn: Conn, caller: Principal, annotation_id: int) -> Any:
    row = notes.get(conn, annotation_id)
    contract_of(conn, caller, row, f"annotation {annotation_id}")
    return row


@router.post(
    "/annotations/{annotation_id}/approve", response_class=ExactJSON, **returns(AnnotationOut)
)
def approve(
    annotation_id: RowIdPath,
    conn: Conn,
    caller: Annotator,
    audit: Audit,
    body: Annotated[DecisionIn | None, Body()] = None,
) -> Any:
    """The other party approves: from now on the annotation counts (an issued month gets an
    adjustment on the next run)."""
    return _decide(conn, caller, audit, annotation_id, "approved", body)


@router.post(
    "/annotations/{annotation_id}/reject", response_class=ExactJSON, **returns(AnnotationOut)
)
def reject(
    annotation_id: RowIdPath,
    conn: Conn,
    caller: Annotator,
    audit: Audit,
    body: Annotated[DecisionIn | None, Body()] = None,
) -> Any:
    """The other party rejects, with a reason: the annotation never counts."""
    return _decide(conn, caller, audit, annotation_id, "rejected", body)


def _decide(
    conn: Conn,
    caller: Principal,
    audit: Audit,
    annotation_id: int,
    decision: Any,
    body: DecisionIn | None,
) -> Any:
    row = _visible(conn, caller, annotation_id)
    reason = reason_of(body, required=decision == "rejected")
    party = body.party if body else None
    note = resolutions.decide_annotation(conn, caller, row, decision, reason, party, audit)
    return ExactJSON(note)
