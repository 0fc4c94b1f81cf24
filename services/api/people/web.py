"""The session cookie and CSRF rules as a browser meets them.

The cookie is HttpOnly (scripts cannot read it), SameSite=Lax (other sites'
forms do not carry it; links to viu still arrive signed in) and Secure when
the request came over HTTPS (directly or as a proxy's ``X-Forwarded-Proto``).
Every unsafe request authenticated by the cookie must also carry the
session's CSRF token: the ``csrf`` field of a form, or the ``X-CSRF-Token``
header for the JSON API.
"""

from __future__ import annotations

import secrets

from fastapi import Request, Response
from sqlalchemy import Connection

from services.api.people import sessions
from services.api.tokens import Principal
from services.errors import Forbidden

SESSION_COOKIE = "viu_session"
LOGIN_COOKIE = "viu_login"
"""Before a session exists, the sign-in form's CSRF token is a double-submit cookie."""
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def client_address(request: Request) -> str:
    """The peer address (uvicorn resolves trusted proxies' X-Forwarded-For into it)."""
    return request.client.host if request.client else "unknown"


def session_secret(request: Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    return value if value and len(value) <= 128 else None


def set_session(response: Response, request: Request, secret: str, hours: float) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )


def login_csrf(request: Request) -> str:
    """The sign-in form's token: the one in the browser's cookie, or a new one."""
    token = request.cookies.get(LOGIN_COOKIE)
    return token if token and len(token) <= 128 else secrets.token_urlsafe(24)


def set_login_csrf(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def principal_from_cookie(conn: Connection, request: Request) -> Principal | None:
    """The signed-in person, if any; an unsafe API request must prove it came from viu."""
    secret = session_secret(request)
    if secret is None:
        return None
    who = sessions.principal_for(conn, secret)
    unsafe = request.method not in SAFE_METHODS
    if (
        who is not None
        and unsafe
        and not sessions.csrf_ok(secret, request.headers.get(CSRF_HEADER))
    ):
        raise Forbidden(
            "a request signed in by cookie must carry the session's CSRF token "
            "(header X-CSRF-Token)"
        )
    return who
