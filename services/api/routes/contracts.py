"""Contracts and versions over HTTP (spec §2, §6)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection

from schemas.contract import ID_PATTERN, ContractIn, ContractTerms
from services.api.audit import Audit
from services.api.deps import Caller, Conn, require
from services.api.params import ContractIdPath
from services.api.repositories import contracts as listing
from services.api.schemas.base import returns
from services.api.schemas.contracts import (
    ContractOut,
    ContractPage,
    ContractVersionOut,
    KpiSeries,
)
from services.api.scoping import contract_filter, sees_contract, visible_contract
from services.api.tokens import Principal
from services.errors import Forbidden
from services.settlement import contracts as repo
from services.settlement.contracts import Version
from services.settlement.series import kpi_series

router = APIRouter(tags=["contracts"])
Writer = Annotated[Principal, Depends(require("admin", "provider"))]


def _may_write(p: Principal, provider: str) -> None:
    if p.role == "provider" and p.party != provider:
        raise Forbidden("a provider token may only write its own party's contracts")


def _reveal(conn: Connection, caller: Principal) -> Callable[[str], bool]:
    """A conflict may name another contract only if the caller may see it (else: 404 wording)."""
    return lambda contract_id: sees_contract(conn, caller, contract_id)


def _with_history(v: Version, versions: list[Version]) -> dict[str, Any]:
    body = v.as_json()
    body["versions"] = [
        {"version": x.version, "effective_from": x.terms.effective_from} for x in versions
    ]
    return body


@router.post("/contracts", status_code=201, **returns(ContractOut))
def create_contract(body: ContractIn, conn: Conn, caller: Writer, audit: Audit) -> dict[str, Any]:
    """Create a contract (version 1) and register its devices."""
    _may_write(caller, body.provider)
    v = repo.create_contract(conn, body, caller.subject, _reveal(conn, caller))
    audit(conn, "contract.create", "contract", v.contract_id, version=1, devices=body.devices)
    return _with_history(v, [v])


@router.get("/contracts", **returns(ContractPage))
def list_contracts(
    conn: Conn,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> dict[str, Any]:
    """Contracts the caller may see, ordered by id; page with ``after``."""
    ids = listing.page_ids(conn, contract_filter(caller), after, limit + 1)
    items = [repo.latest_version(conn, cid).as_json() for cid in ids[:limit]]
    return {"items": items, "next_after": ids[limit - 1] if len(ids) > limit else None}


@router.get("/contracts/{contract_id}", **returns(ContractOut))
def get_contract(contract_id: ContractIdPath, conn: Conn, caller: Caller) -> dict[str, Any]:
    """The contract's latest version, with the list of all versions."""
    visible_contract(conn, caller, contract_id)
    versions = repo.list_versions(conn, contract_id)
    return _with_history(versions[-1], versions)


@router.post("/contracts/{contract_id}/versions", status_code=201, **returns(ContractVersionOut))
def add_version(
    contract_id: ContractIdPath, body: ContractTerms, conn: Conn, caller: Writer, audit: Audit
) -> dict[str, Any]:
    """New terms from ``effective_from`` on; earlier versions never change."""
    provider, _ = visible_contract(conn, caller, contract_id)
    _may_write(caller, provider)
    v = repo.add_version(conn, contract_id, body, caller.subject, _reveal(conn, caller))
    audit(
        conn,
        "contract.version",
        "contract",
        contract_id,
        version=v.version,
        effective_from=body.effective_from,
    )
    return v.as_json()


@router.get("/contracts/{contract_id}/versions", **returns(list[ContractVersionOut]))
def list_versions(contract_id: ContractIdPath, conn: Conn, caller: Caller) -> list[dict[str, Any]]:
    visible_contract(conn, caller, contract_id)
    return [v.as_json() for v in repo.list_versions(conn, contract_id)]


@router.get("/contracts/{contract_id}/kpis", **returns(KpiSeries))
def kpis(
    contract_id: ContractIdPath,
    conn: Conn,
    caller: Caller,
    from_: Annotated[date, Query(alias="from")],
    to: Annotated[date, Query()],
    granularity: Annotated[Literal["day", "month"], Query()] = "day",
) -> dict[str, Any]:
    """KPIs per day or month (dates in the contract's zone, ``to`` inclusive), for charts."""
    visible_contract(conn, caller, contract_id)
    tz = repo.latest_version(conn, contract_id).terms.timezone
    points = kpi_series(conn, contract_id, from_, to, granularity, tz)
    return {
        "contract_id": contract_id,
        "granularity": granularity,
        "timezone": tz,
        "points": [
            {
                "label": p.label,
                "start": p.start.isoformat(),
                "contract_version": p.contract_version,
                "kpis": {k: None if v is None else float(v) for k, v in p.kpis.items()},
            }
            for p in points
        ],
    }
