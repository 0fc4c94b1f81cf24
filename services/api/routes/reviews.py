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
from schemas.vocabulary import RATIO_KPIS
from services.api import charts, problems
from services.api.deps import Caller, Conn
from services.api.params import ContractIdPath, QuarterPath
from services.api.render import review_html
from services.api.schemas.base import returns
from services.api.schemas.reviews import ReviewOut
from services.api.scoping import is_provider_side, visible_contract
from services.settlement.review import review

router = APIRouter(tags=["reviews"])


def pack_charts(pack: dict[str, Any]) -> dict[str, list[str]]:
    """The page's SVG charts, by section."""
    value = charts.value_chart(pack)
    return {
        "kpis": charts.kpi_charts(pack),
        "money": [charts.money_chart(pack)],
        "operations": [charts.downtime_chart(pack), charts.completeness_chart(pack)],
        "value": [value] if value else [],
        "promise": promise_charts(pack),
    }


def promise_charts(pack: dict[str, Any]) -> list[str]:
    """Per promised figure: delivered per month against the promise and the baseline."""
    promise = pack.get("promise")
    if not promise or not promise["periods"]:
        return []
    labels = [p["period"] for p in promise["periods"]]
    out = []
    for figure in promise["promised"]:
        rows = [p["figures"].get(figure, {}) for p in promise["periods"]]

        def series(key: str, rows: list[dict[str, Any]] = rows) -> list[float | None]:
            return [None if r.get(key) is None else float(r[key]) for r in rows]

        lines = [
            charts.Series("delivered", series("realised"), charts.PALETTE[0]),
            charts.Series("promised", series("promised"), charts.PALETTE[1], dashed=True),
        ]
        if any(v is not None for v in series("baseline")):
            lines.append(
                charts.Series("at signing", series("baseline"), charts.PALETTE[5], dashed=True)
            )
        ratio = figure in RATIO_KPIS
        out.append(
            charts.line_chart(f"{figure}: promised vs delivered", labels, lines, percent=ratio)
        )
    return out


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
