"""Statement pages: a month's statements (with the CSV), one statement, and issuing it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from schemas.governance import DisputeIn
from schemas.periods import Period, period_of
from services.api.audit import Recorder
from services.api.pages.core import Form, Me, PageConn, PageRoute, back_to, error_page, page
from services.api.params import ContractIdPath, PeriodPath
from services.api.parties import acting
from services.api.people.web import client_address
from services.api.routes import settlements as api
from services.api.scoping import contract_filter, visible_contract
from services.errors import Forbidden, NotFound
from services.settlement import disputes
from services.settlement import statements as repo

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PeriodQuery = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-10"])]


@router.get("/statements")
def month(request: Request, me: Me, conn: PageConn, period: PeriodQuery = None) -> HTMLResponse:
    """Every statement of a month the person may see; default: last month."""
    p = Period.parse(period) if period else period_of(datetime.now(UTC), "UTC").prev()
    docs = [api.statement_json(r) for r in repo.of_period(conn, p, contract_filter(me.who))]
    return page(
        request,
        "statements.html",
        nav="statements",
        period=str(p),
        prev=str(p.prev()),
        next=str(p.next()),
        docs=docs,
    )


@router.get("/contracts/{contract_id}/statements/{period}")
def one(
    contract_id: ContractIdPath,
    period: PeriodPath,
    request: Request,
    me: Me,
    conn: PageConn,
    seq: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> HTMLResponse:
    visible_contract(conn, me.who, contract_id)
    rows = repo.rows_for(conn, contract_id, Period.parse(period))
    row = next((r for r in rows if r.seq == seq), None)
    if row is None:
        what = f" adjustment {seq}" if seq else ""
        raise NotFound(
            f"no statement{what} for {contract_id} in {period} yet: settlement writes one "
            "when the month closes (or when finance runs it)"
        )
    s = api.statement_json(row, rows)
    pending = rows[-1] if rows[-1].status == "draft" else None
    return page(
        request,
        "statement.html",
        nav="statements",
        s=s,
        can_issue=me.may_issue and pending is not None and pending.seq == seq,
        pending_seq=pending.seq if pending is not None and pending.seq != seq else None,
        just_issued=request.query_params.get("issued") == "1",
        just_disputed=request.query_params.get("disputed") == "1",
        may_dispute=row.status == "draft" and me.who.role in ("admin", "provider", "customer"),
    )


@router.post("/contracts/{contract_id}/statements/{period}/issue")
def issue(
    contract_id: ContractIdPath,
    period: PeriodPath,
    request: Request,
    me: Me,
    _: Form,
    conn: PageConn,
) -> RedirectResponse:
    """The page's issue button: the API's issue, under the person's name."""
    if not me.may_issue:
        raise Forbidden(f"only finance or an admin may issue statements (you are {me.who.role})")
    recorder = Recorder(me.who, client_address(request))
    issued = api.issue(
        contract_id=contract_id, period=period, conn=conn, caller=me.who, audit=recorder
    )
    return back_to(f"/contracts/{contract_id}/statements/{period}?seq={issued['seq']}&issued=1")


@router.post("/contracts/{contract_id}/statements/{period}/dispute", response_model=None)
def dispute(
    contract_id: ContractIdPath,
    period: PeriodPath,
    request: Request,
    me: Me,
    fields: Form,
    conn: PageConn,
) -> RedirectResponse | HTMLResponse:
    """The dispute form of a draft: the API's dispute, for the person's own party."""
    visible_contract(conn, me.who, contract_id)
    back = f"/contracts/{contract_id}/statements/{period}"
    if me.who.role not in ("admin", "provider", "customer"):
        raise Forbidden(f"only the contract's parties dispute statements; you are {me.who.role}")
    asked = fields.get("party") if fields.get("party") in ("provider", "customer") else None
    try:
        body = DisputeIn.model_validate(
            {
                "contract_id": contract_id,
                "period": period,
                "line_kind": fields.get("line_kind") or None,
                "reason": fields.get("reason", "").strip(),
                "party": asked,
            }
        )
    except ValidationError:
        detail = "Nothing was saved: a dispute needs a reason (1 to 2000 characters) and a line of the statement."
        return error_page(request, 422, "The dispute is incomplete", detail, back=back)
    who = acting(conn, me.who, contract_id, body.party)
    row = disputes.raise_dispute(conn, body, who.party, who.by, who.as_admin)
    Recorder(me.who, client_address(request))(
        conn,
        "dispute.raise",
        "dispute",
        str(row.id),
        contract_id=contract_id,
        period=period,
        line_kind=body.line_kind,
        party=who.party,
        as_admin=who.as_admin,
        reason=body.reason,
    )
    return back_to(f"{back}?disputed=1")
