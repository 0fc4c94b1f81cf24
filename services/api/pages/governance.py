"""A contract's joint work (spec §7): corrective actions, disputes and annotations, read
with the same services and scoping as the API. A pending annotation is approved or
rejected (with a reason) here by the other party, through the API's service."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from schemas.governance import ResolveIn
from services.api import resolutions
from services.api.audit import Recorder
from services.api.pages.core import Form, Me, PageConn, PageRoute, back_to, error_page, page
from services.api.pages.proposals import DECIDERS, MAX_REASON, my_party
from services.api.params import ContractIdPath, RowIdPath
from services.api.parties import contract_of
from services.api.people.web import client_address
from services.api.scoping import visible_contract
from services.errors import Forbidden
from services.ingest import annotations as notes
from services.settlement import actions, contracts, disputes

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/contracts/{contract_id}/governance")
def governance(
    contract_id: ContractIdPath, request: Request, me: Me, conn: PageConn
) -> HTMLResponse:
    provider, customer = visible_contract(conn, me.who, contract_id)
    mine = my_party(me, provider, customer)
    notes_ = [
        {
            **n,
            "can_decide": n["status"] == "pending"
            and (me.is_admin or (mine and n["party"] != mine)),
        }
        for n in notes.listing(conn, contract_id=contract_id)
    ]
    return page(
        request,
        "governance.html",
        nav="reviews",
        nav_here="governance",
        c=contracts.latest_version(conn, contract_id),
        actions=[actions.as_json(conn, r) for r in actions.listing(conn, contract_id)],
        disputes=[
            {
                **d,
                "can_resolve": d["status"] == "open"
                and me.who.role in DECIDERS
                and (me.is_admin or (mine and d["raised_by_party"] != mine)),
            }
            for d in map(disputes.as_json, disputes.listing(conn, contract_id))
        ],
        annotations=notes_,
        notice=_notice(request.query_params.get("decided")),
    )


def _notice(decided: str | None) -> str | None:
    if decided in ("upheld", "dismissed"):
        then = (
            "the month is settled again with it (an adjustment if it was issued)"
            if decided == "upheld"
            else "it is closed with your note"
        )
        return f"The dispute is {decided}: {then}."
    if decided not in ("approved", "rejected"):
        return None
    what = "now counts" if decided == "approved" else "will never count"
    return f"The annotation is {decided}: it {what} in settlement (an issued month gets an adjustment)."


@router.post("/annotations/{annotation_id}/{decision}", response_model=None)
def decide_annotation(
    annotation_id: RowIdPath,
    decision: Literal["approve", "reject"],
    request: Request,
    me: Me,
    fields: Form,
    conn: PageConn,
) -> RedirectResponse | HTMLResponse:
    """The other party's approve / reject buttons (a rejection needs a reason)."""
    row = notes.get(conn, annotation_id)
    contract_of(conn, me.who, row, f"annotation {annotation_id}")
    if me.who.role not in DECIDERS:
        raise Forbidden(f"only the contract's parties decide annotations; you are {me.who.role}")
    back = f"/contracts/{row.contract_id}/governance"
    reason = fields.get("reason", "").strip()[:MAX_REASON] or None
    if decision == "reject" and reason is None:
        detail = f"Nothing was saved: write why annotation {annotation_id} is rejected."
        return error_page(request, 422, "A rejection needs a reason", detail, back=back)
    asked: Any = fields.get("party") if fields.get("party") in ("provider", "customer") else None
    outcome: Literal["approved", "rejected"] = "approved" if decision == "approve" else "rejected"
    audit = Recorder(me.who, client_address(request))
    resolutions.decide_annotation(conn, me.who, row, outcome, reason, asked, audit)
    return back_to(f"{back}?decided={outcome}")


@router.post("/disputes/{dispute_id}/resolve", response_model=None)
def resolve_dispute(
    dispute_id: RowIdPath, request: Request, me: Me, fields: Form, conn: PageConn
) -> RedirectResponse | HTMLResponse:
    """The other party upholds or dismisses a dispute, with a note (needed either way).
    Upholding with a new annotation is the API's (its body carries the annotation)."""
    row = disputes.get(conn, dispute_id)
    contract_of(conn, me.who, row, f"dispute {dispute_id}")
    if me.who.role not in DECIDERS:
        raise Forbidden(f"only the contract's parties resolve disputes; you are {me.who.role}")
    back = f"/contracts/{row.contract_id}/governance"
    outcome = fields.get("outcome")
    note = fields.get("note", "").strip()[:MAX_REASON]
    if outcome not in ("upheld", "dismissed") or not note:
        detail = f"Nothing was saved: choose uphold or dismiss and write a note for dispute {dispute_id}."
        return error_page(
            request, 422, "A resolution needs an outcome and a note", detail, back=back
        )
    asked = fields.get("party") if fields.get("party") in ("provider", "customer") else None
    body = ResolveIn(outcome=outcome, note=note, party=asked)  # type: ignore[arg-type]
    resolutions.resolve(conn, me.who, dispute_id, body, Recorder(me.who, client_address(request)))
    return back_to(f"{back}?decided={outcome}")
