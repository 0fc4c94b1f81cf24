"""The quarterly review for the meeting (spec §5, §8), and a hub listing the reviews.

``/contracts/{id}/reviews/{quarter}`` is the joint view: the same page for
both parties (the provider's cost and margin are not on it), built from the
same ``review`` as the API with ``provider=False``. ``?view=provider`` adds
cost and margin for the provider's side only; ``?view=customer`` is the
customer's own view. Open proposals carry their decision controls.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection

from schemas.periods import Period, Quarter
from services.api.charts import pack_charts
from services.api.pages.core import Me, PageConn, PageRoute, Viewer, page
from services.api.pages.proposals import cards, notice
from services.api.params import ContractIdPath, QuarterPath
from services.api.render import review_context
from services.api.scoping import contract_filter, is_provider_side, visible_contract
from services.errors import Forbidden
from services.settlement import contracts, statements
from services.settlement.review import review

router = APIRouter(route_class=PageRoute, include_in_schema=False)
View = Literal["joint", "provider", "customer"]


def _allowed(me: Viewer, view: View, provider: str, customer: str) -> None:
    """A party's own view is for that party's people (and admins) only."""
    if view == "provider" and not is_provider_side(me.who, provider):
        raise Forbidden(
            f"the provider's own view (with its cost and margin) is for {provider}'s people "
            "only; the joint view without ?view=provider shows both parties the same figures"
        )
    if view == "customer" and not (me.is_admin or me.who.party == customer):
        raise Forbidden(
            f"the customer's own view is for {customer}'s people only; the joint view without "
            "?view=customer shows both parties the same figures"
        )


def _views(me: Viewer, provider: str, customer: str) -> list[tuple[View, str]]:
    """The views this person may switch between."""
    out: list[tuple[View, str]] = [("joint", "Joint view")]
    if is_provider_side(me.who, provider):
        out.append(("provider", f"{provider}'s own view (cost and margin)"))
    if me.is_admin or me.who.party == customer:
        out.append(("customer", f"{customer}'s own view"))
    return out


@router.get("/contracts/{contract_id}/reviews/{quarter}")
def review_page(
    contract_id: ContractIdPath,
    quarter: QuarterPath,
    request: Request,
    me: Me,
    conn: PageConn,
    view: Annotated[View, Query()] = "joint",
) -> HTMLResponse:
    provider, customer = visible_contract(conn, me.who, contract_id)
    _allowed(me, view, provider, customer)
    q = Quarter.parse(quarter)
    pack = review(conn, contract_id, q, provider=view == "provider")
    return page(
        request,
        "review.html",
        nav="reviews",
        **{**review_context(pack, pack_charts(pack)), "view": view},
        views=_views(me, provider, customer),
        proposals=cards(conn, me, contract_id, pack["proposals"]),
        back=str(request.url.path) + (f"?view={view}" if view != "joint" else ""),
        notice=notice(conn, me, request.query_params.get("decided")),
        prev=str(q.prev()),
        next=str(_next(q)),
    )


def _next(q: Quarter) -> Quarter:
    return q.months()[2].next().quarter


def quarters_of(conn: Connection, contract_id: str) -> list[str]:
    """The quarters with a statement, newest first."""
    periods = {
        str(Period.parse(str(r.period).strip()).quarter)
        for r in statements.of_contract(conn, contract_id)
    }
    return sorted(periods, reverse=True)


@router.get("/reviews")
def hub(request: Request, me: Me, conn: PageConn) -> HTMLResponse:
    """Every visible contract with its quarters and its governance pages."""
    rows: list[dict[str, Any]] = []
    for cid in contracts.contract_ids(conn, contract_filter(me.who)):
        rows.append({"v": contracts.latest_version(conn, cid), "quarters": quarters_of(conn, cid)})
    return page(request, "reviews.html", nav="reviews", rows=rows)
