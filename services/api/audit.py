"""The audit dependency: binds the caller and the request's origin once per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Connection

from services import audit
from services.api.deps import get_principal
from services.api.tokens import Principal


@dataclass(frozen=True)
class Recorder:
    principal: Principal
    source: str | None

    def __call__(
        self, conn: Connection, action: str, object_type: str, object_id: str, **details: Any
    ) -> None:
        audit.record(
            conn,
            actor=self.principal.subject,
            role=self.principal.role,
            party=self.principal.party,
            source=self.source,
            action=action,
            object_type=object_type,
            object_id=object_id,
            details={**details, "email": self.principal.email}
            if self.principal.is_person
            else details,
        )

    def proposal(self, conn: Connection, action: str, row: Any, **details: Any) -> None:
        """A decision on a proposal, with the proposal's state after it (API and pages)."""
        self(
            conn,
            action,
            "proposal",
            str(row.id),
            contract_id=row.contract_id,
            kind=row.kind,
            status=row.status,
            accepted_version=row.accepted_version,
            action_id=row.action_id,
            **details,
        )


def get_recorder(
    request: Request, principal: Annotated[Principal, Depends(get_principal)]
) -> Recorder:
    client = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-for")
    source = f"{client} (for {forwarded})" if forwarded else client
    return Recorder(principal, source)


Audit = Annotated[Recorder, Depends(get_recorder)]
