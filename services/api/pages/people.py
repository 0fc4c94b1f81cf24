"""The admin's page of people: create a person, disable one, end their sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from services.api.audit import Recorder
from services.api.pages.core import Form, Me, PageConn, PageRoute, back_to, page
from services.api.params import RowIdPath
from services.api.people import sessions, users
from services.api.people.web import client_address
from services.api.problems import validation_errors
from services.api.tokens import ROLES
from services.errors import Forbidden, ViuError

router = APIRouter(route_class=PageRoute, include_in_schema=False)
FIELDS = ("email", "name", "role", "party")


def _admin(me: Me) -> None:
    if not me.is_admin:
        raise Forbidden("only an admin manages people")


def _people_page(
    request: Request,
    conn: PageConn,
    *,
    status: int = 200,
    errors: list[str] | None = None,
    **extra: object,
) -> HTMLResponse:
    return page(
        request,
        "people.html",
        status=status,
        nav="people",
        people=users.listing(conn),
        roles=ROLES,
        errors=errors or [],
        values=extra.get("values") or {},
        notice=extra.get("notice"),
    )


@router.get("/users")
def people(request: Request, me: Me, conn: PageConn) -> HTMLResponse:
    _admin(me)
    notice = request.query_params.get("done")
    return _people_page(request, conn, notice=notice)


@router.post("/users", response_model=None)
def create(request: Request, me: Me, form: Form, conn: PageConn) -> HTMLResponse | RedirectResponse:
    """Invalid values come back on the same page, each named; nothing is stored then."""
    _admin(me)
    values = {k: form.get(k, "").strip() for k in FIELDS}
    try:
        body = users.UserIn(**values, password=form.get("password", ""))  # type: ignore[arg-type]
        user = users.create_user(conn, body, me.who.subject)
    except ValidationError as exc:
        errors = [
            f"{e['field']}: {e['message']}"
            for e in validation_errors([dict(e) for e in exc.errors()])
        ]
        return _people_page(request, conn, status=422, errors=errors, values=values)
    except ViuError as exc:
        return _people_page(request, conn, status=exc.status, errors=[exc.detail], values=values)
    Recorder(me.who, client_address(request))(
        conn, "user.create", "user", str(user.id), email=user.email, role=user.role
    )
    return back_to(f"/users?done=Created {user.name} <{user.email}>.")


@router.post("/users/{user_id}/disable")
def disable(
    user_id: RowIdPath, request: Request, me: Me, _: Form, conn: PageConn
) -> RedirectResponse:
    _admin(me)
    user, ended = users.disable(conn, user_id)
    Recorder(me.who, client_address(request))(
        conn, "user.disable", "user", str(user_id), sessions_ended=ended
    )
    return back_to(f"/users?done=Disabled {user.email}; ended {ended} session(s).")


@router.post("/users/{user_id}/sessions/revoke")
def revoke(
    user_id: RowIdPath, request: Request, me: Me, _: Form, conn: PageConn
) -> RedirectResponse:
    _admin(me)
    user = users.get(conn, user_id)
    ended = sessions.revoke_all(conn, user_id)
    Recorder(me.who, client_address(request))(
        conn, "user.sessions_revoke", "user", str(user_id), sessions_ended=ended
    )
    return back_to(f"/users?done=Ended {ended} session(s) of {user.email}.")
