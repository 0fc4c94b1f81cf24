"""Signing in and out at /login (spec §8)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Engine

from services.api.deps import get_engine, get_settings
from services.api.pages.core import SECURITY_HEADERS, Form, Me, PageRoute, form_fields, html
from services.api.people import sessions, signin
from services.api.people.sessions import csrf_ok_token
from services.api.people.web import (
    LOGIN_COOKIE,
    clear_session,
    client_address,
    login_csrf,
    session_secret,
    set_login_csrf,
    set_session,
)
from services.config import Settings

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Fields = Annotated[dict[str, str], Depends(form_fields)]


def safe_next(target: str | None) -> str:
    """Only a path on this site: never ``//evil.example`` or ``https://…`` (open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/contracts"
    return target


def _login_page(
    request: Request,
    *,
    status: int = 200,
    message: str | None = None,
    email: str = "",
    target: str | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    token = login_csrf(request)
    body = html(
        "login.html",
        me=None,
        nav=None,
        request=request,
        standalone=False,
        csrf=token,
        message=message,
        email=email,
        next=safe_next(target or request.query_params.get("next")),
        notice=notice,
    )
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    set_login_csrf(response, request, token)
    return response


@router.get("/login")
def login_form(request: Request, engine: Annotated[Engine, Depends(get_engine)]) -> Response:
    secret = session_secret(request)
    if secret is not None:
        with engine.connect() as conn:
            if sessions.principal_for(conn, secret) is not None:
                return RedirectResponse(safe_next(request.query_params.get("next")), 303)
    notice = "You have signed out." if request.query_params.get("signed_out") else None
    return _login_page(request, notice=notice)


@router.post("/login")
def login(
    request: Request,
    fields: Fields,
    engine: Annotated[Engine, Depends(get_engine)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> Response:
    email, password = fields.get("email", "").strip(), fields.get("password", "")
    target = safe_next(fields.get("next"))
    cookie = request.cookies.get(LOGIN_COOKIE)
    if cookie is None or not csrf_ok_token(cookie, fields.get("csrf")):
        return _login_page(
            request,
            status=403,
            email=email,
            target=target,
            message="The sign-in form had expired. Please sign in again.",
        )
    if not email or not password:
        return _login_page(
            request,
            status=422,
            email=email,
            target=target,
            message="Enter your email and password.",
        )
    with engine.begin() as conn:
        outcome = signin.attempt(
            conn,
            email,
            password,
            address=client_address(request),
            user_agent=request.headers.get("user-agent"),
            hours=settings.session_hours,
        )
    if outcome.wait.seconds:
        page = _login_page(
            request,
            status=429,
            email=email,
            target=target,
            message=f"{outcome.wait.reason.capitalize()}. "
            f"Try again in {outcome.wait.seconds} seconds.",
        )
        page.headers["retry-after"] = str(outcome.wait.seconds)
        return page
    if not outcome.ok or outcome.secret is None:
        return _login_page(
            request, status=401, email=email, target=target, message="Wrong email or password."
        )
    response = RedirectResponse(target, status_code=303)
    set_session(response, request, outcome.secret, settings.session_hours)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(
    request: Request, me: Me, _: Form, engine: Annotated[Engine, Depends(get_engine)]
) -> Response:
    with engine.begin() as conn:
        signin.sign_out(conn, me.who, client_address(request))
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    clear_session(response, request)
    return response
