"""Settlement runs, statements, issue, and the finance export (spec §3, §6)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from schemas.contract import ID_PATTERN
from schemas.db import contracts, statements
from schemas.periods import Period
from schemas.vocabulary import LINE_KINDS
from services.api import problems
from services.api.audit import Audit
from services.api.deps import Caller, Conn, get_engine, require
from services.api.params import ContractIdPath, PeriodPath
from services.api.render import statement_html
from services.api.scoping import contract_filter, visible_contract
from services.api.tokens import Principal
from services.errors import NotFound
from services.settlement import disputes, runs
from services.settlement import statements as repo

router = APIRouter(tags=["settlement"])
Runner = Annotated[Principal, Depends(require("admin", "finance", "provider"))]
Issuer = Annotated[Principal, Depends(require("admin", "finance"))]
PeriodText = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-10"])]


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str = Field(examples=["2026-10"])
    contract_id: str | None = Field(default=None, pattern=ID_PATTERN)

    @field_validator("period")
    @classmethod
    def _period(cls, v: str) -> str:
        return str(Period.parse(v))


def statement_json(row: Any, history: list[Any] | None = None) -> dict[str, Any]:
    body = dict(row.body)
    body.pop("resettled", None)
    out = {
        "id": row.id,
        "contract_id": row.contract_id,
        "period": row.period,
        "seq": row.seq,
        "kind": "adjustment" if row.seq else "statement",
        "status": row.status,
        "currency": row.currency,
        "contract_version": row.contract_version,
        **{k: v for k, v in body.items() if k not in ("period", "currency")},
        "watermark": row.watermark.isoformat() if row.watermark else None,
        "inputs_digest": row.inputs_digest,
        "computed_at": row.computed_at.isoformat(),
        "issued_at": row.issued_at.isoformat() if row.issued_at else None,
        "issued_by": row.issued_by,
    }
    if history is not None:
        out["adjustments"] = [
            {"seq": r.seq, "id": r.id, "status": r.status, "net": str(r.body["net"])}
            for r in history
            if r.seq > 0
        ]
    return out


@router.post("/settlements/run")
def run(body: RunIn, conn: Conn, caller: Runner, engine=Depends(get_engine)) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Settle a period now for one contract or all the caller may see."""
    period = Period.parse(body.period)
    if body.contract_id:
        visible_contract(conn, caller, body.contract_id)
    ids = [
        c
        for c in runs.in_force(conn, period, body.contract_id)
        if body.contract_id or _sees(conn, caller, c)
    ]
    if body.contract_id and not ids:
        raise NotFound(f"contract '{body.contract_id}' is not in force in {period}")
    results = runs.run_period(engine, period, ids)
    return {"period": str(period), "results": [r.__dict__ for r in results]}


def _sees(conn: Any, caller: Principal, contract_id: str) -> bool:
    try:
        visible_contract(conn, caller, contract_id)
    except NotFound:
        return False
    return True


@router.get(
    "/contracts/{contract_id}/statements/{period}", responses=problems.alternative("text/html")
)
def get_statement(
    contract_id: ContractIdPath,
    period: PeriodPath,
    conn: Conn,
    caller: Caller,
    seq: Annotated[int, Query(ge=0, le=10_000)] = 0,
    format: Annotated[Literal["json", "html"], Query()] = "json",
) -> Any:
    """The statement of a period (``seq`` > 0: one of its adjustments)."""
    visible_contract(conn, caller, contract_id)
    rows = repo.rows_for(conn, contract_id, Period.parse(period))
    row = next((r for r in rows if r.seq == seq), None)
    if row is None:
        raise NotFound(f"no statement {contract_id} {period}" + (f" seq {seq}" if seq else ""))
    data = statement_json(row, rows)
    if format == "html":
        return HTMLResponse(statement_html(data))
    return data


class IssueIn(BaseModel):
    """``override_reason``: issue although disputes on the period are open (recorded)."""

    model_config = ConfigDict(extra="forbid")
    override_reason: str | None = Field(default=None, min_length=1, max_length=2000)


@router.post("/contracts/{contract_id}/statements/{period}/issue")
def issue(
    contract_id: ContractIdPath,
    period: PeriodPath,
    conn: Conn,
    caller: Issuer,
    audit: Audit,
    body: Annotated[IssueIn | None, Body()] = None,
) -> dict[str, Any]:
    """Re-settle with the latest data, then issue: from now on the row is immutable.

    An open dispute on the period blocks this (409) unless an ``override_reason`` is given."""
    visible_contract(conn, caller, contract_id)
    p = Period.parse(period)
    overridden = disputes.check_issue(
        conn, contract_id, p, body.override_reason if body else None, caller.subject
    )
    runs.settle_contract(conn, contract_id, p)
    row = repo.issue(conn, contract_id, p, caller.subject)
    audit(
        conn,
        "statement.issue",
        "statement",
        f"{contract_id}/{p}/{row.seq}",
        net=str(row.net),
        inputs_digest=row.inputs_digest,
        **(
            {"override_reason": body.override_reason, "disputes": overridden}
            if overridden and body
            else {}
        ),
    )
    return statement_json(row, repo.rows_for(conn, contract_id, p))


CSV_COLUMNS = [
    "contract_id",
    "period",
    "seq",
    "kind",
    "status",
    "currency",
    "contract_version",
    *LINE_KINDS,  # one column per line kind, in the spec's order
    "net",
    "issued_at",
    "issued_by",
]


@router.get("/settlements", responses=problems.alternative("text/csv"))
def list_settlements(
    period: PeriodText,
    conn: Conn,
    caller: Caller,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Every statement of a period the caller may see (finance export)."""
    rows = conn.execute(
        select(statements)
        .join(contracts, contracts.c.contract_id == statements.c.contract_id)
        .where(statements.c.period == str(Period.parse(period)), contract_filter(caller))
        .order_by(statements.c.contract_id, statements.c.seq)
    ).all()
    items = [statement_json(r) for r in rows]
    if format == "csv":
        return Response(_csv(items), media_type="text/csv; charset=utf-8")
    return {"period": period, "items": items}


def _csv(items: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    for it in items:
        sums: dict[str, Decimal] = {}
        for ln in it["lines"]:
            sums[ln["kind"]] = sums.get(ln["kind"], Decimal(0)) + Decimal(ln["amount"])
        w.writerow({**it, **{k: str(v) for k, v in sums.items()}})
    return buf.getvalue()
