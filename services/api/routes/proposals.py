"""Realignment proposals over HTTP (spec §4, §6).

Who decides: an admin, or a provider or customer token of the contract's own
parties — acceptance records a decision taken between the parties (typically
in the quarterly review) and says who recorded it. ``unfair_split`` proposals
are derived from the provider's costs, so only the provider side sees and
decides them; for a customer they do not exist (404).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.api.audit import Audit
from services.api.deps import Conn, require
from services.api.params import ContractIdPath
from services.api.scoping import READ_ROLES, is_provider_side, visible_contract
from services.api.tokens import Principal
from services.errors import Forbidden, NotFound
from services.settlement.proposals import repository as repo
from services.settlement.proposals import service
from services.settlement.proposals import settings as detector_settings
from services.settlement.proposals.registry import PROVIDER_ONLY_KINDS
from services.settlement.proposals.settings import DetectorSettings

router = APIRouter(tags=["proposals"])
Reader = Annotated[Principal, Depends(require(*READ_ROLES))]
Decider = Annotated[Principal, Depends(require("admin", "provider", "customer"))]
Detector = Annotated[Principal, Depends(require("admin", "provider", "customer", "finance"))]
ProposalId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Status = Literal["open", "accepted", "rejected", "superseded"]


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=50)


def _provider_side(conn: Conn, caller: Principal, contract_id: str) -> bool:
    provider, _ = visible_contract(conn, caller, contract_id)
    return is_provider_side(caller, provider)


def _visible(conn: Conn, caller: Principal, proposal_id: int) -> Any:
    """The proposal if ``caller`` may see it; 404 otherwise (ids do not leak)."""
    row = repo.get(conn, proposal_id)
    try:
        provider_side = _provider_side(conn, caller, row.contract_id)
    except NotFound:
        raise NotFound(f"no proposal {proposal_id}") from None
    if row.kind in PROVIDER_ONLY_KINDS and not provider_side:
        raise NotFound(f"no proposal {proposal_id}")
    return row


def _must_be_party(conn: Conn, caller: Principal, contract_id: str) -> None:
    """Admin, or the contract's own provider or customer (by role and party)."""
    provider, customer = visible_contract(conn, caller, contract_id)
    if caller.role == "admin":
        return
    party = provider if caller.role == "provider" else customer
    if caller.party != party:
        raise Forbidden(f"only the contract's own {caller.role} may do this")


@router.get("/contracts/{contract_id}/proposals")
def list_proposals(
    contract_id: ContractIdPath,
    conn: Conn,
    caller: Reader,
    status: Annotated[Status | None, Query()] = None,
) -> list[dict[str, Any]]:
    """The contract's proposals, newest first (``status`` filters)."""
    provider_side = _provider_side(conn, caller, contract_id)
    rows = repo.list_for(conn, contract_id, (status,) if status else repo.STATUSES)
    return [repo.as_json(r) for r in rows if provider_side or r.kind not in PROVIDER_ONLY_KINDS]


@router.post("/contracts/{contract_id}/proposals/detect")
def detect(contract_id: ContractIdPath, conn: Conn, caller: Detector) -> dict[str, Any]:
    """Run the detectors now over the closed periods; returns what changed and the open list."""
    provider_side = _provider_side(conn, caller, contract_id)
    result = service.detect(conn, contract_id)
    rows = repo.open_for(conn, contract_id)
    visible = [r for r in rows if provider_side or r.kind not in PROVIDER_ONLY_KINDS]
    hidden = {r.id for r in rows} - {r.id for r in visible}
    changes = {k: [i for i in ids if i not in hidden] for k, ids in result.as_json().items()}
    return {**changes, "open": [repo.as_json(r) for r in visible]}


@router.get("/contracts/{contract_id}/proposals/settings")
def get_settings(contract_id: ContractIdPath, conn: Conn, caller: Reader) -> dict[str, Any]:
    """The detector thresholds in force for the contract (the spec's defaults unless set)."""
    visible_contract(conn, caller, contract_id)
    return detector_settings.load(conn, contract_id).as_json()


@router.put("/contracts/{contract_id}/proposals/settings")
def put_settings(
    contract_id: ContractIdPath, body: DetectorSettings, conn: Conn, caller: Decider, audit: Audit
) -> dict[str, Any]:
    """Set the thresholds (fields left out take the spec's defaults)."""
    _must_be_party(conn, caller, contract_id)
    detector_settings.save(conn, contract_id, body, caller.subject)
    audit(conn, "detector_settings.set", "contract", contract_id, settings=body.as_json())
    return body.as_json()


@router.post("/contracts/{contract_id}/proposals/accept")
def accept_together(
    contract_id: ContractIdPath, body: AcceptIn, conn: Conn, caller: Decider, audit: Audit
) -> list[dict[str, Any]]:
    """Accept several proposals agreed in one review: all changes go into one new version."""
    _must_be_party(conn, caller, contract_id)
    for proposal_id in body.ids:
        _visible(conn, caller, proposal_id)
    rows = service.accept_together(conn, contract_id, body.ids, caller.subject)
    for r in rows:
        _audit_decision(audit, conn, "proposal.accept", r)
    return [repo.as_json(r) for r in rows]


@router.get("/proposals/{proposal_id}")
def get_proposal(proposal_id: ProposalId, conn: Conn, caller: Reader) -> dict[str, Any]:
    return repo.as_json(_visible(conn, caller, proposal_id))


@router.post("/proposals/{proposal_id}/accept")
def accept(proposal_id: ProposalId, conn: Conn, caller: Decider, audit: Audit) -> dict[str, Any]:
    """Accept: a new contract version from the next period, recording who accepted."""
    row = _visible(conn, caller, proposal_id)
    _must_be_party(conn, caller, row.contract_id)
    accepted = service.accept(conn, proposal_id, caller.subject)
    _audit_decision(audit, conn, "proposal.accept", accepted)
    return repo.as_json(accepted)


@router.post("/proposals/{proposal_id}/reject")
def reject(
    proposal_id: ProposalId, body: RejectIn, conn: Conn, caller: Decider, audit: Audit
) -> dict[str, Any]:
    """Reject with a reason; the same change is not proposed again."""
    row = _visible(conn, caller, proposal_id)
    _must_be_party(conn, caller, row.contract_id)
    rejected = service.reject(conn, proposal_id, caller.subject, body.reason)
    _audit_decision(audit, conn, "proposal.reject", rejected, reason=body.reason)
    return repo.as_json(rejected)


def _audit_decision(audit: Audit, conn: Conn, action: str, row: Any, **details: Any) -> None:
    audit(
        conn,
        action,
        "proposal",
        str(row.id),
        contract_id=row.contract_id,
        kind=row.kind,
        accepted_version=row.accepted_version,
        **details,
    )
