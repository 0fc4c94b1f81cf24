"""Disputes over HTTP (spec §7.2): raise, list, resolve by the other party.

An upheld dispute becomes something that changes the numbers: the disputed
annotation stops counting, or the resolution's annotation starts counting
(both parties agreed to it), and the period is re-settled at once — an
adjustment draft if the period was issued meanwhile.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from schemas.governance import DisputeIn, ResolveIn
from schemas.periods import Period
from schemas.vocabulary import DisputeStatus
from services import decisions
from services.api.audit import Audit
from services.api.deps import Conn, require
from services.api.params import ContractIdPath, RowIdPath
from services.api.parties import acting, contract_of
from services.api.schemas.base import returns
from services.api.schemas.disputes import DisputeOut
from services.api.scoping import READ_ROLES, visible_contract, visible_device
from services.api.tokens import Principal
from services.errors import Invalid
from services.ingest import annotations as notes
from services.settlement import disputes, runs

router = APIRouter(tags=["disputes"])
Party_ = Annotated[Principal, Depends(require("admin", "provider", "customer"))]
Reader = Annotated[Principal, Depends(require(*READ_ROLES))]


@router.post("/disputes", status_code=201, **returns(DisputeOut))
def raise_dispute(body: DisputeIn, conn: Conn, caller: Party_, audit: Audit) -> dict[str, Any]:
    """Contest a draft statement's line (or the whole statement) or an annotation."""
    who = acting(conn, caller, body.contract_id, body.party)
    row = disputes.raise_dispute(conn, body, who.party, who.by, who.as_admin)
    audit(
        conn,
        "dispute.raise",
        "dispute",
        str(row.id),
        contract_id=body.contract_id,
        period=body.period,
        line_kind=body.line_kind,
        kpi=body.kpi,
        annotation_id=body.annotation_id,
        party=who.party,
        as_admin=who.as_admin,
        reason=body.reason,
    )
    return disputes.as_json(row)


@router.get("/contracts/{contract_id}/disputes", **returns(list[DisputeOut]))
def list_disputes(
    contract_id: ContractIdPath,
    conn: Conn,
    caller: Reader,
    status: Annotated[DisputeStatus | None, Query()] = None,
) -> list[dict[str, Any]]:
    """The contract's disputes, oldest first (``status=open``: those blocking an issue)."""
    visible_contract(conn, caller, contract_id)
    return [disputes.as_json(r) for r in disputes.listing(conn, contract_id, status=status)]


@router.post("/disputes/{dispute_id}/resolve", **returns(DisputeOut))
def resolve(
    dispute_id: RowIdPath, body: ResolveIn, conn: Conn, caller: Party_, audit: Audit
) -> dict[str, Any]:
    """Resolve a dispute the other party raised: ``upheld`` or ``dismissed``, with a note."""
    row = disputes.get(conn, dispute_id)
    contract_of(conn, caller, row, f"dispute {dispute_id}")
    who = acting(
        conn, caller, row.contract_id, body.party, admin_default=decisions.other(row.raised_party)
    )
    resolved = disputes.resolve(
        conn, dispute_id, who.party, body.outcome, body.note, who.by, who.as_admin
    )
    if body.outcome == "upheld":
        resolved = disputes.record_result(
            conn, dispute_id, _uphold(conn, caller, resolved, body, who.by)
        )
    audit(
        conn,
        f"dispute.{body.outcome}",
        "dispute",
        str(dispute_id),
        contract_id=row.contract_id,
        period=row.period.strip(),
        party=who.party,
        as_admin=who.as_admin,
        note=body.note,
        result=resolved.result,
    )
    return disputes.as_json(resolved)


def _uphold(conn: Conn, caller: Principal, row: Any, body: ResolveIn, by: str) -> dict[str, Any]:
    """What the upheld dispute becomes, and the period re-settled with it."""
    result: dict[str, Any] = {}
    if row.annotation_id is not None:
        disputed = notes.get(conn, row.annotation_id, for_update=True)
        if disputed.status != "rejected":
            notes.set_status(conn, disputed, "rejected")
            result["withdrawn_annotation_id"] = disputed.id
    if body.annotation is not None:
        if visible_device(conn, caller, body.annotation.device_id) != row.contract_id:
            raise Invalid(
                f"device {body.annotation.device_id} is not a device of {row.contract_id}",
                field="annotation.device_id",
            )
        note = notes.create(conn, body.annotation, by, party=row.resolved_party, approved=True)
        decisions.record(
            conn,
            notes.KIND,
            note["id"],
            row.contract_id,
            row.raised_party,
            "approved",
            f"{row.raised_by} (dispute {row.id})",
            as_admin=row.raised_as_admin,
        )
        result["annotation_id"] = note["id"]
    period = Period.parse(row.period.strip())
    settled = runs.settle_contract(conn, row.contract_id, period)
    result["settlement"] = {"period": str(period), "outcome": settled.outcome, "net": settled.net}
    return result
