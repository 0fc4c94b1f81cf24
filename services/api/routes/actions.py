"""Corrective actions over HTTP (spec §7.4): create, list with their measured effect, close.

Either party (or an admin) records an action for either party; the owner
completes it (``/complete``), either party may drop it with a reason
(``/drop``). Everyone who sees the contract sees its actions.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from schemas.governance import ActionCloseIn, ActionIn
from schemas.vocabulary import ActionStatus
from services.api.audit import Audit
from services.api.deps import Conn, require
from services.api.params import ContractIdPath, RowIdPath
from services.api.parties import contract_of, own_party
from services.api.schemas.actions import ActionOut
from services.api.schemas.base import returns
from services.api.scoping import READ_ROLES, visible_contract
from services.api.tokens import Principal
from services.settlement import actions

router = APIRouter(tags=["actions"])
Party_ = Annotated[Principal, Depends(require("admin", "provider", "customer"))]
Reader = Annotated[Principal, Depends(require(*READ_ROLES))]


@router.post("/contracts/{contract_id}/actions", status_code=201, **returns(ActionOut))
def create_action(
    contract_id: ContractIdPath, body: ActionIn, conn: Conn, caller: Party_, audit: Audit
) -> dict[str, Any]:
    """Record work one party owes (an open action with the same owner, KPI and devices is
    returned instead of a second one)."""
    own_party(conn, caller, contract_id)
    row = actions.create(conn, contract_id, body, caller.subject)
    audit(
        conn,
        "action.create",
        "action",
        str(row.id),
        contract_id=contract_id,
        **body.model_dump(mode="json"),
    )
    return actions.as_json(conn, row)


@router.get("/contracts/{contract_id}/actions", **returns(list[ActionOut]))
def list_actions(
    contract_id: ContractIdPath,
    conn: Conn,
    caller: Reader,
    status: Annotated[ActionStatus | None, Query()] = None,
) -> list[dict[str, Any]]:
    """The contract's actions with their KPI before and after (overdue ones flagged)."""
    visible_contract(conn, caller, contract_id)
    rows = actions.listing(conn, contract_id, None if status is None else [status])
    return [actions.as_json(conn, r) for r in rows]


def _visible(conn: Conn, caller: Principal, action_id: int) -> Any:
    row = actions.get(conn, action_id)
    contract_of(conn, caller, row, f"action {action_id}")
    return row


def _close(
    conn: Conn,
    caller: Principal,
    audit: Audit,
    action_id: int,
    status: ActionStatus,
    body: ActionCloseIn | None,
) -> dict[str, Any]:
    row = _visible(conn, caller, action_id)
    party = own_party(conn, caller, row.contract_id)
    text = None if body is None else (body.reason if status == "dropped" else body.note)
    closed = actions.close(conn, action_id, status, party, caller.subject, text)
    audit(
        conn,
        f"action.{'complete' if status == 'done' else 'drop'}",
        "action",
        str(action_id),
        contract_id=row.contract_id,
        note=text,
        party=party,
    )
    return actions.as_json(conn, closed)


@router.post("/actions/{action_id}/complete", **returns(ActionOut))
def complete(
    action_id: RowIdPath,
    conn: Conn,
    caller: Party_,
    audit: Audit,
    body: Annotated[ActionCloseIn | None, Body()] = None,
) -> dict[str, Any]:
    """The owner marks the work done; its effect is measured from the next full period."""
    return _close(conn, caller, audit, action_id, "done", body)


@router.post("/actions/{action_id}/drop", **returns(ActionOut))
def drop(
    action_id: RowIdPath,
    conn: Conn,
    caller: Party_,
    audit: Audit,
    body: Annotated[ActionCloseIn | None, Body()] = None,
) -> dict[str, Any]:
    """Either party drops the action, with a reason."""
    return _close(conn, caller, audit, action_id, "dropped", body)
