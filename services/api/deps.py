"""FastAPI dependencies, declared once: settings, database, caller, role checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine

from services.api.people.web import principal_from_cookie, session_secret
from services.api.tokens import Principal, authenticate
from services.config import Settings
from services.errors import Forbidden, Unauthorized

bearer = HTTPBearer(auto_error=False, description="viu API token")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_principal(
    request: Request,
    engine: Annotated[Engine, Depends(get_engine)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """A machine's bearer token, else a signed-in person's session cookie.

    Looked up on a short connection that is back in the pool at once:
    ``get_conn`` depends on this, so a request never holds one pooled
    connection while it waits for another (with N requests holding one each
    and waiting for a second, a pool of N would deadlock until its timeout).
    """
    token = creds.credentials if creds and creds.scheme.lower() == "bearer" else None
    if not token and session_secret(request) is None:
        raise Unauthorized("send 'Authorization: Bearer <token>' or sign in at /login")
    with engine.connect() as conn:
        principal = authenticate(conn, token) if token else principal_from_cookie(conn, request)
    if principal is None:
        raise Unauthorized(
            "unknown, expired or revoked token" if token else "session expired; sign in again"
        )
    return principal


def get_conn(
    engine: Annotated[Engine, Depends(get_engine)],
    _: Annotated[Principal, Depends(get_principal)],
) -> Iterator[Connection]:
    """One transaction per request: committed on success, rolled back on any error.

    Used with ``scope="function"`` (``Conn``): the commit happens before the
    response is sent. A 201 therefore means committed: a client acting on it
    at once (publishing telemetry for a device it just registered) finds it,
    and a commit that fails answers as an error instead of after a success.
    """
    with engine.begin() as conn:
        yield conn


def require(*roles: str) -> Callable[[Principal], Principal]:
    """A dependency admitting only the given roles."""

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"role '{principal.role}' may not do this (needs {', '.join(roles)})")
        return principal

    return check


Conn = Annotated[Connection, Depends(get_conn, scope="function")]
Caller = Annotated[Principal, Depends(get_principal)]
