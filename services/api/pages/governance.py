"""A contract's joint work (spec §7): corrective actions, disputes and annotations, read
with the same services and scoping as the API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.api.pages.core import Me, PageConn, PageRoute, page
from services.api.params import ContractIdPath
from services.api.scoping import visible_contract
from services.ingest import annotations as notes
from services.settlement import actions, contracts, disputes

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/contracts/{contract_id}/governance")
def governance(
    contract_id: ContractIdPath, request: Request, me: Me, conn: PageConn
) -> HTMLResponse:
    visible_contract(conn, me.who, contract_id)
    return page(
        request,
        "governance.html",
        nav="reviews",
        nav_here="governance",
        c=contracts.latest_version(conn, contract_id),
        actions=[actions.as_json(conn, r) for r in actions.listing(conn, contract_id)],
        disputes=[disputes.as_json(r) for r in disputes.listing(conn, contract_id)],
        annotations=notes.listing(conn, contract_id=contract_id),
    )
