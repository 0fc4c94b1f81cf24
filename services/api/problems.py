"""Every error leaves the API as RFC 9457 ``application/problem+json``.

No stack trace, SQL or internal detail ever reaches a response body.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.errors import ViuError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
RETRY_AFTER_S = 5


PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": why, "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}}
    for status, why in (
        (401, "missing, unknown, expired or revoked token"),
        (403, "the token's role may not do this"),
        (404, "no such resource, or not visible to the caller's party"),
        (409, "conflicts with the current state"),
        (413, "request body too large"),
        (422, "invalid input; `errors` names each field"),
        (503, "a dependency (database) is unavailable; retry after `Retry-After` seconds"),
    )
}
"""Documented on every /v1 route: all errors are problem+json."""

BUSY_RESPONSE: dict[str, Any] = {
    "description": "too many runs at once; retry after `Retry-After` seconds",
    "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}},
}


def alternative(media_type: str) -> dict[int | str, dict[str, Any]]:
    """Document a route's second representation (``format=csv`` / ``format=html``)."""
    return {200: {"content": {media_type: {"schema": {"type": "string"}}}}}


def problem(status: int, title: str, detail: str, slug: str, **extra: Any) -> JSONResponse:
    body = {"type": f"https://viu.dev/problems/{slug}", "title": title, "status": status}
    body["detail"] = detail
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"field": _field(tuple(e.get("loc", ()))), "message": str(e["msg"])} for e in errors]


async def _viu_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ViuError)
    response = problem(exc.status, exc.title, exc.detail, exc.slug, **exc.extra)
    if exc.status in (429, 503):
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(list(exc.errors()))
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, "Invalid input", detail, "invalid", errors=errors)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, str(exc.detail), str(exc.detail), f"http-{exc.status_code}")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "Internal error", "an unexpected error occurred; it was logged", "internal")


async def _bad_value(_: Request, exc: Exception) -> JSONResponse:
    return problem(422, "Invalid input", str(exc), "invalid")


async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
    """A date or number so far out that arithmetic on it overflows (year 1, year 9999 ± a zone)."""
    log.info("out-of-range value on %s %s: %s", request.method, request.url.path, exc)
    return problem(
        422,
        "Invalid input",
        "a date or number is outside the range viu computes with "
        "(dates must stay within years 1 to 9999 in every time zone)",
        "invalid",
    )


async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
    """A value PostgreSQL refuses (NUL in text, a number out of range): the caller's input."""
    log.info("unstorable value on %s %s: %s", request.method, request.url.path, exc)
    return problem(
        422,
        "Invalid input",
        "a value cannot be stored (e.g. a NUL character or an out-of-range number)",
        "invalid",
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database is down, refuses connections, or the pool had none free in time."""
    why = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    log.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.url.path,
        why[0] if why else type(exc).__name__,
    )
    response = problem(
        503, "Service unavailable", "the database is unavailable; retry later", "unavailable"
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def install(app: FastAPI) -> None:
    from schemas.money import UnknownCurrency
    from schemas.periods import InvalidPeriod, NaiveDatetime, UnknownTimezone

    for domain_error in (InvalidPeriod, NaiveDatetime, UnknownTimezone, UnknownCurrency):
        app.add_exception_handler(domain_error, _bad_value)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(OverflowError, _out_of_range)
    for unavailable in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(ViuError, _viu_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
