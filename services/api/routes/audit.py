"""The audit trail over HTTP (admin and auditor)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from services import audit
from services.api.deps import Conn, require
from services.api.schemas.audit import AuditPage
from services.api.schemas.base import returns
from services.api.tokens import Principal

router = APIRouter(tags=["audit"])
Reader = Annotated[Principal, Depends(require("admin", "auditor"))]


@router.get("/audit", **returns(AuditPage))
def list_audit(
    conn: Conn,
    _: Reader,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Newest first; page with ``before`` = the last id seen."""
    items = audit.listing(
        conn,
        object_type=object_type,
        object_id=object_id,
        action=action,
        before=before,
        limit=limit,
    )
    return {"items": items, "next_before": items[-1]["id"] if len(items) == limit else None}
