"""Contract pages: the list, and one contract in plain language with its outlook."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from schemas.periods import Period
from services.api.pages.core import Me, PageConn, PageRoute, page
from services.api.params import ContractIdPath
from services.api.routes.settlements import statement_json
from services.api.scoping import contract_filter, visible_contract
from services.api.wording import describe
from services.errors import Conflict
from services.settlement import contracts as repo
from services.settlement import statements
from services.settlement.outlook import project

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/")
def home(_: Me) -> RedirectResponse:
    return RedirectResponse("/contracts", status_code=303)


@router.get("/contracts")
def contract_list(request: Request, me: Me, conn: PageConn) -> HTMLResponse:
    rows = []
    for cid in repo.contract_ids(conn, contract_filter(me.who)):
        latest = repo.latest_version(conn, cid)
        docs = statements.of_contract(conn, cid)
        rows.append({"v": latest, "last": statement_json(docs[0]) if docs else None})
    return page(request, "contracts.html", nav="contracts", rows=rows)


@router.get("/contracts/{contract_id}")
def contract_page(
    contract_id: ContractIdPath, request: Request, me: Me, conn: PageConn
) -> HTMLResponse:
    visible_contract(conn, me.who, contract_id)
    versions = repo.list_versions(conn, contract_id)
    latest = versions[-1]
    docs = [statement_json(r) for r in statements.of_contract(conn, contract_id)]
    return page(
        request,
        "contract.html",
        nav="contracts",
        c=latest,
        terms=describe(latest.terms),
        versions=list(reversed(versions)),
        statements=docs,
        outlook=_outlook(conn, contract_id),
        quarter=str(Period.parse(docs[0]["period"]).quarter) if docs else None,
    )


def _outlook(conn: PageConn, contract_id: str) -> dict[str, Any]:
    """The running month projected, or why there is none (not in force, just begun)."""
    try:
        return {"data": project(conn, contract_id).as_json(), "why_not": None}
    except Conflict as exc:
        return {"data": None, "why_not": exc.detail}
