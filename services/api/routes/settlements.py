"""Settlement runs, statements, issue, and the finance export (spec §3, §6)."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Engine

from schemas.contract import ID_PATTERN
from schemas.periods import Period
from schemas.vocabulary import LINE_KINDS
from services.api import problems
from services.api.audit import Audit
from services.api.deps import Caller, Conn, get_engine, require
from services.api.params import ContractIdPath, PeriodPath
from services.api.render import statement_html
from services.api.schemas.base import returns
from services.api.schemas.settlements import RunOut, StatementList, StatementOut
from services.api.scoping import contract_filter, sees_contract, visible_contract
from services.api.tokens import Principal
from services.errors import Busy, NotFound
from services.settlement import disputes, runs
from services.settlement import statements as repo

router = APIRouter(tags=["settlement"])
Runner = Annotated[Principal, Depends(require("admin", "finance", "provider"))]
Issuer = Annotated[Principal, Depends(require("admin", "finance"))]
EngineDep = Annotated[Engine, Depends(get_engine)]
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
    """A statement as finance files it: number, parties, local dates, and for an
    adjustment the statement it adjusts and why (rows from ``repo.documents``)."""
    body = dict(row.body)
    body.pop("resettled", None)
    changes = body.pop("changes", None)
    adjusts = body.pop("adjusts", None)
    start, end = repo.period_dates(Period.parse(row.period))
    out = {
        "number": repo.number(row.contract_id, row.period, row.seq),
        "id": row.id,
        "contract_id": row.contract_id,
        "provider": row.provider,
        "customer": row.customer,
        "period": row.period,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "timezone": row.timezone,
        "seq": row.seq,
        "kind": "adjustment" if row.seq else "statement",
        "status": row.status,
        "currency": row.currency,
        "contract_version": row.contract_version,
        **{k: v for k, v in body.items() if k not in ("period", "currency")},
        "adjusts": _adjusts(row, adjusts),
        "reason": _reason(row, changes),
        "changes": changes,
        "watermark": row.watermark.isoformat() if row.watermark else None,
        "inputs_digest": row.inputs_digest,
        "computed_at": row.computed_at.isoformat(),
        "issued_at": row.issued_at.isoformat() if row.issued_at else None,
        "issued_by": row.issued_by,
    }
    if history is not None:
        out["adjustments"] = [
            {
                "seq": r.seq,
                "id": r.id,
                "number": repo.number(r.contract_id, r.period, r.seq),
                "status": r.status,
                "net": str(r.body["net"]),
                "reason": _reason(r, r.body.get("changes")),
            }
            for r in history
            if r.seq > 0
        ]
    return out


def _adjusts(row: Any, adjusts: dict[str, Any] | None) -> dict[str, Any] | None:
    """The statement an adjustment adjusts (older rows lack its number: derive it)."""
    if not adjusts:
        return None
    return {**adjusts, "number": repo.number(row.contract_id, row.period, adjusts["seq"])}


def _reason(row: Any, changes: dict[str, Any] | None) -> str | None:
    if not row.seq:
        return None
    if not changes:
        return "the settlement inputs changed (recorded before viu named the changes)"
    return "; ".join(changes["summary"])


@router.post("/settlements/run", responses={429: problems.BUSY_RESPONSE}, **returns(RunOut))
def run(body: RunIn, caller: Runner, engine: EngineDep, request: Request) -> dict[str, Any]:
    """Settle a period now for one contract or all the caller may see.

    Holds no connection of its own while ``run_period`` settles (each contract
    in a transaction of its own): a request holding one pooled connection
    while waiting for another deadlocks the pool under concurrency. Runs
    beyond VIU_SETTLEMENT_RUN_CONCURRENCY queue for up to
    VIU_SETTLEMENT_RUN_WAIT_S seconds, then answer 429.
    """
    period = Period.parse(body.period)
    with engine.connect() as conn:
        if body.contract_id:
            visible_contract(conn, caller, body.contract_id)
        ids = [
            c
            for c in runs.in_force(conn, period, body.contract_id)
            if body.contract_id or sees_contract(conn, caller, c)
        ]
    if body.contract_id and not ids:
        raise NotFound(f"contract '{body.contract_id}' is not in force in {period}")
    with run_slot(request):
        results = runs.run_period(engine, period, ids)
    return {"period": str(period), "results": [r.__dict__ for r in results]}


@contextmanager
def run_slot(request: Request) -> Iterator[None]:
    """One of the app's settlement-run slots, waited for at most VIU_SETTLEMENT_RUN_WAIT_S."""
    settings = request.app.state.settings
    slots: threading.BoundedSemaphore = request.app.state.settlement_slots
    if not slots.acquire(timeout=settings.settlement_run_wait_s):
        raise Busy(
            f"{settings.settlement_run_concurrency} settlement run(s) are in progress and "
            f"others waited {settings.settlement_run_wait_s:g} s; retry later"
        )
    try:
        yield
    finally:
        slots.release()


@router.get(
    "/contracts/{contract_id}/statements/{period}",
    responses=problems.alternative("text/html"),
    **returns(StatementOut),
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


@router.post("/contracts/{contract_id}/statements/{period}/issue", **returns(StatementOut))
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
    "number",
    "contract_id",
    "provider",
    "customer",
    "period",
    "period_start",
    "period_end",
    "timezone",
    "seq",
    "kind",
    "status",
    "currency",
    "contract_version",
    *LINE_KINDS,  # one column per line kind, in the spec's order
    "net",
    "adjusts",
    "reason",
    "issued_at",
    "issued_by",
]
"""The statement's own fields, as in its JSON; ``adjusts`` is the adjusted statement's number."""


@router.get("/settlements", responses=problems.alternative("text/csv"), **returns(StatementList))
def list_settlements(
    period: PeriodText,
    conn: Conn,
    caller: Caller,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Every statement of a period the caller may see (finance export)."""
    rows = repo.of_period(conn, Period.parse(period), contract_filter(caller))
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
        adjusts = (it["adjusts"] or {}).get("number")
        w.writerow({**it, "adjusts": adjusts, **{k: str(v) for k, v in sums.items()}})
    return buf.getvalue()
