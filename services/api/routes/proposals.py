"""Realignment proposals over HTTP (spec §4, §6, §7.1).

Both parties decide: a provider or customer token decides for its own party
(never for the other), an admin for the party it names. A proposal is
accepted once both parties accepted it; either party's rejection (with a
reason) rejects it. Provider-side kinds (``unfair_split``: derived from the
provider's costs) exist only for the provider side; for a customer they are
404, and the provider decides them alone.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from schemas.vocabulary import Party
from services import decisions
from services.api.audit import Audit
from services.api.decisions import DecisionIn, reason_of
from services.api.deps import Conn, require
from services.api.params import ContractIdPath, RowIdPath
from services.api.parties import acting, own_party
from services.api.schemas.base import returns
from services.api.schemas.proposals import DetectOut, ProposalOut
from services.api.scoping import READ_ROLES, is_provider_side, visible_contract
from services.api.tokens import Principal
from services.errors import NotFound
from services.settlement.proposals import decide, service
from services.settlement.proposals import repository as repo
from services.settlement.proposals import settings as detector_settings
from services.settlement.proposals.registry import PROVIDER_ONLY_KINDS
from services.settlement.proposals.settings import DetectorSettings

router = APIRouter(tags=["proposals"])
Reader = Annotated[Principal, Depends(require(*READ_ROLES))]
Decider = Annotated[Principal, Depends(require("admin", "provider", "customer"))]
Detector = Annotated[Principal, Depends(require("admin", "provider", "customer", "finance"))]
Status = Literal["open", "accepted", "rejected", "superseded"]


class AcceptIn(BaseModel):
    """Proposals agreed together, accepted by the caller's party (an admin names it)."""

    model_config = ConfigDict(extra="forbid")
    proposal_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        min_length=1, max_length=50, validation_alias=AliasChoices("proposal_ids", "ids")
    )
    party: Party | None = None


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


@router.get("/contracts/{contract_id}/proposals", **returns(list[ProposalOut]))
def list_proposals(
    contract_id: ContractIdPath,
    conn: Conn,
    caller: Reader,
    status: Annotated[Status | None, Query()] = None,
) -> list[dict[str, Any]]:
    """The contract's proposals, newest first (``status`` filters)."""
    provider_side = _provider_side(conn, caller, contract_id)
    rows = repo.list_for(conn, contract_id, (status,) if status else repo.STATUSES)
    return proposals_json(
        conn, [r for r in rows if provider_side or r.kind not in PROVIDER_ONLY_KINDS]
    )


@router.post("/contracts/{contract_id}/proposals/detect", **returns(DetectOut))
def detect(contract_id: ContractIdPath, conn: Conn, caller: Detector) -> dict[str, Any]:
    """Run the detectors now over the closed periods; returns what changed and the open list."""
    provider_side = _provider_side(conn, caller, contract_id)
    result = service.detect(conn, contract_id)
    rows = repo.open_for(conn, contract_id)
    visible = [r for r in rows if provider_side or r.kind not in PROVIDER_ONLY_KINDS]
    hidden = {r.id for r in rows} - {r.id for r in visible}
    changes = {k: [i for i in ids if i not in hidden] for k, ids in result.as_json().items()}
    return {**changes, "open": proposals_json(conn, visible)}


@router.get("/contracts/{contract_id}/proposals/settings", **returns(DetectorSettings))
def get_settings(contract_id: ContractIdPath, conn: Conn, caller: Reader) -> dict[str, Any]:
    """The detector thresholds in force for the contract (the spec's defaults unless set)."""
    visible_contract(conn, caller, contract_id)
    return detector_settings.load(conn, contract_id).as_json()


@router.put("/contracts/{contract_id}/proposals/settings", **returns(DetectorSettings))
def put_settings(
    contract_id: ContractIdPath, body: DetectorSettings, conn: Conn, caller: Decider, audit: Audit
) -> dict[str, Any]:
    """Set the thresholds (fields left out take the spec's defaults)."""
    own_party(conn, caller, contract_id)
    detector_settings.save(conn, contract_id, body, caller.subject)
    audit(conn, "detector_settings.set", "contract", contract_id, settings=body.as_json())
    return body.as_json()


def _decider(conn: Conn, caller: Principal, contract_id: str, party: Party | None) -> Any:
    who = acting(conn, caller, contract_id, party)
    return decide.Decider(who.party, who.by, who.as_admin)


def proposal_json(conn: Conn, row: Any) -> dict[str, Any]:
    """A proposal with each party's decision so far."""
    return proposals_json(conn, [row])[0]


def proposals_json(conn: Conn, rows: list[Any]) -> list[dict[str, Any]]:
    decided = decisions.listing(conn, "proposal", [r.id for r in rows])
    return [{**repo.as_json(r), "decisions": decided[r.id]} for r in rows]


@router.post("/contracts/{contract_id}/proposals/accept", **returns(list[ProposalOut]))
def accept_together(
    contract_id: ContractIdPath, body: AcceptIn, conn: Conn, caller: Decider, audit: Audit
) -> list[dict[str, Any]]:
    """Accept proposals agreed in one review, for the caller's party; those both parties
    accepted take effect together (one contract version)."""
    visible_contract(conn, caller, contract_id)
    for proposal_id in body.proposal_ids:
        _visible(conn, caller, proposal_id)
    who = _decider(conn, caller, contract_id, body.party)
    rows = decide.accept(conn, contract_id, body.proposal_ids, who)
    for r in rows:
        audit.proposal(conn, "proposal.accept", r, party=who.party, as_admin=who.as_admin)
    return [proposal_json(conn, r) for r in rows]


@router.get("/proposals/{proposal_id}", **returns(ProposalOut))
def get_proposal(proposal_id: RowIdPath, conn: Conn, caller: Reader) -> dict[str, Any]:
    return proposal_json(conn, _visible(conn, caller, proposal_id))


@router.post("/proposals/{proposal_id}/accept", **returns(ProposalOut))
def accept(
    proposal_id: RowIdPath,
    conn: Conn,
    caller: Decider,
    audit: Audit,
    body: Annotated[DecisionIn | None, Body()] = None,
) -> dict[str, Any]:
    """Accept for the caller's party; once both parties accepted, the change takes effect
    from the next period (with any other proposal accepted this month)."""
    row = _visible(conn, caller, proposal_id)
    who = _decider(conn, caller, row.contract_id, body.party if body else None)
    [accepted] = decide.accept(conn, row.contract_id, [proposal_id], who)
    audit.proposal(conn, "proposal.accept", accepted, party=who.party, as_admin=who.as_admin)
    return proposal_json(conn, accepted)


@router.post("/proposals/{proposal_id}/reject", **returns(ProposalOut))
def reject(
    proposal_id: RowIdPath,
    conn: Conn,
    caller: Decider,
    audit: Audit,
    body: Annotated[DecisionIn | None, Body()] = None,
) -> dict[str, Any]:
    """Reject for the caller's party, with a reason; the same change is not proposed again."""
    row = _visible(conn, caller, proposal_id)
    reason = reason_of(body, required=True)
    assert reason is not None
    who = _decider(conn, caller, row.contract_id, body.party if body else None)
    rejected = decide.reject(conn, proposal_id, who, reason)
    audit.proposal(
        conn,
        "proposal.reject",
        rejected,
        reason=reason,
        party=who.party,
        as_admin=who.as_admin,
    )
    return proposal_json(conn, rejected)
