"""Cost to serve and the realised value split (spec §2, §4).

Costs are the provider's: only the contract's provider (or an admin) records
them, only the provider side reads them. The value split is shared, but a
customer's view holds nothing costs could be derived from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from schemas.periods import Period, period_of
from services.api.audit import Audit
from services.api.deps import Caller, Conn
from services.api.params import ContractIdPath
from services.api.schemas.base import returns
from services.api.schemas.value import CostList, CostOut, ValueOut
from services.api.scoping import is_provider_side, visible_contract
from services.api.tokens import Principal
from services.errors import Forbidden, Invalid
from services.settlement import contracts, promise
from services.settlement.costs import CostIn, add_cost, cost_json, list_costs
from services.settlement.value import MAX_PERIODS, customer_view, provider_view, realised

router = APIRouter(tags=["value"])
PERIOD_PATTERN = r"^[1-9]\d{3}-(0[1-9]|1[0-2])$"
PeriodQuery = Annotated[str | None, Query(pattern=PERIOD_PATTERN, examples=["2026-10"])]


def period_range(
    conn: Conn, contract_id: str, first: str | None, last: str | None
) -> tuple[Period, Period]:
    """``[from, to]`` as periods; defaults to the twelve months up to the current one."""
    tz = contracts.latest_version(conn, contract_id).terms.timezone
    end = Period.parse(last) if last else period_of(datetime.now(UTC), tz)
    start = Period.parse(first) if first else end
    if not first:
        for _ in range(11):
            start = start.prev()
    if end < start:
        raise Invalid("'to' must not be before 'from'", field="to")
    count = (end.year - start.year) * 12 + end.month - start.month + 1
    if count > MAX_PERIODS:
        raise Invalid(f"at most {MAX_PERIODS} periods per request", field="from")
    return start, end


def _provider_only(conn: Conn, caller: Principal, contract_id: str) -> str:
    provider, _ = visible_contract(conn, caller, contract_id)
    if not is_provider_side(caller, provider):
        raise Forbidden("costs are visible to the provider only")
    return provider


@router.post("/contracts/{contract_id}/costs", status_code=201, **returns(CostOut))
def post_cost(
    contract_id: ContractIdPath, body: CostIn, conn: Conn, caller: Caller, audit: Audit
) -> dict[str, Any]:
    """Record a cost to serve the contract in a period (provider of the contract, or admin)."""
    provider = _provider_only(conn, caller, contract_id)
    if caller.role != "admin" and not (caller.role == "provider" and caller.party == provider):
        raise Forbidden("only the contract's provider records its costs")
    cost = add_cost(conn, contract_id, body, caller.subject)
    audit(
        conn,
        "cost.add",
        "contract",
        contract_id,
        period=body.period,
        amount=str(body.amount),
        category=body.category,
    )
    return cost


@router.get("/contracts/{contract_id}/costs", **returns(CostList))
def get_costs(
    contract_id: ContractIdPath,
    conn: Conn,
    caller: Caller,
    from_: Annotated[str | None, Query(alias="from", pattern=PERIOD_PATTERN)] = None,
    to: PeriodQuery = None,
) -> dict[str, Any]:
    """The recorded cost entries (provider side only)."""
    _provider_only(conn, caller, contract_id)
    first, last = period_range(conn, contract_id, from_, to)
    rows = list_costs(conn, contract_id, first, last)
    return {"contract_id": contract_id, "items": [cost_json(r) for r in rows]}


@router.get("/contracts/{contract_id}/value", **returns(ValueOut))
def get_value(
    contract_id: ContractIdPath,
    conn: Conn,
    caller: Caller,
    from_: Annotated[str | None, Query(alias="from", pattern=PERIOD_PATTERN)] = None,
    to: PeriodQuery = None,
) -> dict[str, Any]:
    """The realised value split per settled period (a customer sees its own side only), and
    the value promised at the sale against what was delivered, per period and quarter."""
    provider, _ = visible_contract(conn, caller, contract_id)
    first, last = period_range(conn, contract_id, from_, to)
    provider_side = is_provider_side(caller, provider)
    view = provider_view if provider_side else customer_view
    value_model = contracts.latest_version(conn, contract_id).terms.value_model
    return {
        "contract_id": contract_id,
        "from": str(first),
        "to": str(last),
        "view": "provider" if provider_side else "customer",
        "value_model": None if value_model is None else value_model.model_dump(mode="json"),
        "periods": [view(s) for s in realised(conn, contract_id, first, last)],
        "promise": promise.report(conn, contract_id, first, last),
    }
