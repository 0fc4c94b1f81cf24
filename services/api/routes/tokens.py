"""Token management over HTTP (admin only); the CLI offers the same."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from services.api import tokens
from services.api.audit import Audit
from services.api.deps import Conn, require
from services.api.params import RowIdPath
from services.api.schemas.base import returns
from services.api.schemas.tokens import TokenCreated, TokenOut
from services.api.tokens import Principal, Role

router = APIRouter(tags=["tokens"])
Admin = Annotated[Principal, Depends(require("admin"))]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    party: str | None = Field(default=None, min_length=1, max_length=200)
    label: str | None = Field(default=None, max_length=200)
    expires_at: datetime | None = None


@router.post("/tokens", status_code=201, **returns(TokenCreated))
def create(body: TokenIn, conn: Conn, _: Admin, audit: Audit) -> dict[str, Any]:
    token_id, plain = tokens.create_token(
        conn, body.role, body.party, label=body.label, expires_at=body.expires_at
    )
    audit(conn, "token.create", "token", str(token_id), role=body.role, party=body.party)
    return {"id": token_id, "token": plain, "role": body.role, "party": body.party}


@router.get("/tokens", **returns(list[TokenOut]))
def list_all(conn: Conn, _: Admin) -> list[dict[str, Any]]:
    return tokens.list_tokens(conn)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke(token_id: RowIdPath, conn: Conn, _: Admin, audit: Audit) -> None:
    tokens.revoke_token(conn, token_id)
    audit(conn, "token.revoke", "token", str(token_id))
