"""People's accounts and sessions over HTTP (admin only); ``viu user`` offers the same."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.api.audit import Audit
from services.api.deps import Conn, require
from services.api.params import RowIdPath
from services.api.people import sessions, users
from services.api.schemas.base import returns
from services.api.schemas.users import SessionOut, SessionsEnded, UserDisabled, UserOut
from services.api.tokens import Principal

router = APIRouter(tags=["people"])
Admin = Annotated[Principal, Depends(require("admin"))]


@router.post("/users", status_code=201, **returns(UserOut))
def create(body: users.UserIn, conn: Conn, caller: Admin, audit: Audit) -> dict[str, Any]:
    """A person who signs in at /login with this email and password."""
    user = users.create_user(conn, body, caller.subject)
    audit(conn, "user.create", "user", str(user.id), email=user.email, role=user.role)
    return user.as_json()


@router.get("/users", **returns(list[UserOut]))
def list_all(conn: Conn, _: Admin) -> list[dict[str, Any]]:
    """Every person, by email (never a password hash)."""
    return [u.as_json() for u in users.listing(conn)]


@router.post("/users/{user_id}/disable", **returns(UserDisabled))
def disable(user_id: RowIdPath, conn: Conn, _: Admin, audit: Audit) -> dict[str, Any]:
    """The person can no longer sign in; their sessions end now."""
    user, ended = users.disable(conn, user_id)
    audit(conn, "user.disable", "user", str(user_id), sessions_ended=ended)
    return {**user.as_json(), "sessions_ended": ended}


@router.get("/users/{user_id}/sessions", **returns(list[SessionOut]))
def list_sessions(user_id: RowIdPath, conn: Conn, _: Admin) -> list[dict[str, Any]]:
    users.get(conn, user_id)
    return sessions.listing(conn, user_id)


@router.delete("/users/{user_id}/sessions", **returns(SessionsEnded))
def revoke_sessions(user_id: RowIdPath, conn: Conn, _: Admin, audit: Audit) -> dict[str, Any]:
    """Sign the person out everywhere (they may sign in again)."""
    users.get(conn, user_id)
    ended = sessions.revoke_all(conn, user_id)
    audit(conn, "user.sessions_revoke", "user", str(user_id), sessions_ended=ended)
    return {"sessions_ended": ended}
