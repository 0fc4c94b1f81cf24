"""Early warning and what-if over HTTP (spec §3.4, §4): projections that store nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.contract import ContractTerms
from services.api.deps import Caller, Conn
from services.api.params import ContractIdPath
from services.api.problems import validation_errors
from services.api.routes.value import PERIOD_PATTERN, period_range
from services.api.schemas.base import returns
from services.api.schemas.outlook import OutlookOut, SimulationOut
from services.api.scoping import visible_contract
from services.errors import Invalid
from services.settlement import actions
from services.settlement.outlook import project
from services.settlement.proposals.impact import simulate

router = APIRouter(tags=["outlook"])


@router.get("/contracts/{contract_id}/outlook", **returns(OutlookOut))
def outlook(
    contract_id: ContractIdPath,
    conn: Conn,
    caller: Caller,
    at: Annotated[datetime | None, Query(description="project as of this instant")] = None,
) -> dict[str, Any]:
    """The running period projected from the month to date, with every KPI flagged that
    is heading for a penalty or a missed bonus, and the corrective actions overdue."""
    visible_contract(conn, caller, contract_id)
    if at is not None and at.tzinfo is None:
        raise Invalid("'at' needs a UTC offset, e.g. 2026-10-12T00:00:00Z", field="at")
    return {
        **project(conn, contract_id, at).as_json(),
        "overdue_actions": actions.overdue_for(conn, contract_id, at),
    }


class SimulateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    terms: dict[str, Any]
    from_: str = Field(alias="from", pattern=PERIOD_PATTERN)
    to: str = Field(pattern=PERIOD_PATTERN)


def _alternative(body: SimulateIn) -> ContractTerms:
    """The alternative terms; ``effective_from`` does not matter here and may be left out."""
    data = {"effective_from": body.from_, **body.terms}
    try:
        return ContractTerms.model_validate(data)
    except ValidationError as exc:
        errors = [
            {**e, "field": f"terms.{e['field']}"}
            for e in validation_errors([dict(e) for e in exc.errors()])
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Invalid(detail, errors=errors) from None


@router.post("/contracts/{contract_id}/simulate", **returns(SimulationOut))
def simulate_terms(
    contract_id: ContractIdPath, body: SimulateIn, conn: Conn, caller: Caller
) -> dict[str, Any]:
    """Re-settle ``[from, to]`` under alternative terms next to the terms in force; stores
    nothing."""
    visible_contract(conn, caller, contract_id)
    first, last = period_range(conn, contract_id, body.from_, body.to)
    return simulate(conn, contract_id, _alternative(body), first, last)
