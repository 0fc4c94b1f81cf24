"""The quarterly review pack (spec §5): JSON, or a printable page with SVG charts.

Both parties get the same KPI, money, downtime and completeness data; the
provider's view (``is_provider_side``) adds cost to serve, margin and the
value-split proposals.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from schemas.periods import Quarter
from services.api import problems
from services.api.charts import pack_charts
from services.api.deps import Caller, Conn
from services.api.params import ContractIdPath, QuarterPath
from services.api.render import review_html
from services.api.schemas.base import returns
from services.api.schemas.reviews import ReviewOut
from services.api.scoping import is_provider_side, visible_contract
from services.settlement.review import review

router = APIRouter(tags=["reviews"])


@router.get(
    "/contracts/{contract_id}/reviews/{quarter}",
    responses=problems.alternative("text/html"),
    **returns(ReviewOut),
)
def get_review(
    contract_id: ContractIdPath,
    quarter: QuarterPath,
    conn: Conn,
    caller: Caller,
    format: Annotated[Literal["json", "html"], Query()] = "json",
) -> dict[str, Any] | HTMLResponse:
    """Per month of the quarter: KPIs vs targets, money, downtime, completeness, value;
    and the open proposals with their impact."""
    provider, _ = visible_contract(conn, caller, contract_id)
    pack = review(
        conn, contract_id, Quarter.parse(quarter), provider=is_provider_side(caller, provider)
    )
    if format == "html":
        return HTMLResponse(review_html(pack, pack_charts(pack)))
    return pack
