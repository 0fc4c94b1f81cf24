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
from schemas.vocabulary import DisputeStatus
from services.api import resolutions
from services.api.audit import Audit
from services.api.deps import Conn, require
from services.api.params import ContractIdPath, RowIdPath
from services.api.parties import acting
from services.api.schemas.base import returns
from services.api.schemas.disputes import DisputeOut
from services.api.scoping import READ_ROLES, visible_contract
from services.api.tokens import Principal
from services.settlement import disputes

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
    return disputes.as_json(resolutions.resolve(conn, caller, dispute_id, body, audit))
