"""The page framework: templates, the signed-in person, forms with CSRF, HTML errors.

Pages are server-rendered Jinja2 (autoescaped) with one stylesheet and a few
lines of plain JavaScript served by the app itself; nothing is built or
fetched from elsewhere. A page applies the same roles and party scoping as
the API because it calls the same services with the same ``Principal``.
Errors become pages, never problem+json or a stack trace: no session → a
redirect to ``/login``; another party's contract → 404; bad input → 422.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy import Connection, Engine

from schemas.money import UnknownCurrency
from schemas.periods import InvalidPeriod, NaiveDatetime, UnknownTimezone
from services.api.deps import get_engine
from services.api.people import sessions
from services.api.people.web import session_secret
from services.api.problems import validation_errors
from services.api.templating import STATIC, html
from services.api.tokens import Principal
from services.errors import Forbidden, Invalid, ViuError

log = logging.getLogger(__name__)
__all__ = ["STATIC", "html"]
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
"""Pages show money and carry a session: no framing, no foreign scripts, no caching."""
BAD_INPUT = (InvalidPeriod, NaiveDatetime, UnknownTimezone, UnknownCurrency)


class SignInRequired(Exception):
    """No live session: the page answers with a redirect to /login."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in person looking at a page, and their session's CSRF token."""

    who: Principal
    csrf: str

    @property
    def may_issue(self) -> bool:
        return self.who.role in ("admin", "finance")

    @property
    def is_admin(self) -> bool:
        return self.who.role == "admin"


def viewer(request: Request, engine: Annotated[Engine, Depends(get_engine)]) -> Viewer:
    secret = session_secret(request)
    who = None
    if secret is not None:
        with engine.connect() as conn:
            who = sessions.principal_for(conn, secret)
    if who is None or secret is None:
        raise SignInRequired
    me = Viewer(who, sessions.csrf_token(secret))
    request.state.viewer = me
    return me


Me = Annotated[Viewer, Depends(viewer)]


def page_conn(engine: Annotated[Engine, Depends(get_engine)], _: Me) -> Iterator[Connection]:
    """The page's transaction, opened once the person is known (their lookup is done and its
    connection back in the pool) and committed before the response, like the API's ``Conn``.

    Not the API's ``Conn``: that one authenticates the API's way, where a cookie-signed
    unsafe request must carry the CSRF token as a header; a form carries it as a field
    (``Form`` checks it)."""
    with engine.begin() as conn:
        yield conn


PageConn = Annotated[Connection, Depends(page_conn, scope="function")]


async def form_fields(request: Request) -> dict[str, str]:
    """A URL-encoded form (what a plain HTML form posts); no multipart parser needed."""
    raw = await request.body()
    if not raw:
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Invalid("send the form as application/x-www-form-urlencoded")
    text = raw.decode("utf-8", errors="replace")
    return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=100))


def checked_form(me: Me, fields: Annotated[dict[str, str], Depends(form_fields)]) -> dict[str, str]:
    """A form of a signed-in person, with the session's CSRF token (else 403)."""
    if not sessions.csrf_ok_token(me.csrf, fields.get("csrf")):
        raise Forbidden(
            "this form has expired or did not come from viu (missing or wrong CSRF token): "
            "reload the page and try again"
        )
    return fields


Form = Annotated[dict[str, str], Depends(checked_form)]


def page(request: Request, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    me = getattr(request.state, "viewer", None)
    context.setdefault("nav", None)
    body = html(name, me=me, request=request, standalone=False, **context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def error_page(
    request: Request, status: int, title: str, detail: str, back: str | None = None
) -> HTMLResponse:
    """``back``: the page the person came from (else the contracts)."""
    return page(request, "error.html", status=status, title=title, detail=detail, back=back)


def back_to(path: str) -> RedirectResponse:
    """After a form: 303 See Other, so reloading the result does not post again."""
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)


def _came_from(request: Request) -> str:
    """The page a form was posted from (same site only): after signing in again the person
    returns there, not to a form address that only answers POST."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc or not referer.path.startswith("/"):
        return "/contracts"
    return referer.path + (f"?{referer.query}" if referer.query else "")


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = _came_from(request)
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


class PageRoute(APIRoute):
    """A route whose errors are pages: the same error types as the API, shown to people."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except SignInRequired:
                return _to_login(request)
            except ViuError as exc:
                return error_page(request, exc.status, exc.title, exc.detail)
            except RequestValidationError as exc:
                errors = validation_errors(list(exc.errors()))
                detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
                return error_page(request, 422, "Invalid input", detail)
            except BAD_INPUT as exc:
                return error_page(request, 422, "Invalid input", str(exc))
            except Exception:
                log.exception("unhandled error on page %s", request.url.path)
                return error_page(
                    request, 500, "Something went wrong", "an unexpected error was logged"
                )

        return route
