"""Every error leaves the API as RFC 9457 ``application/problem+json``.

No stack trace, SQL or internal detail ever reaches a response body.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services import dberrors
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


REQUEST_ID = "viu.request_id"
"""Where ``middleware.RequestId`` leaves the request id in the ASGI scope: the 500
handler runs outside that middleware, after its context variable is reset."""


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    rid = str(request.scope.get(REQUEST_ID) or "-")
    log.error(
        "unhandled error on %s %s (request %s)",
        request.method,
        request.url.path,
        rid,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    response = problem(
        500,
        "Internal error",
        f"an unexpected error occurred; it was logged with request id {rid}",
        "internal",
        request_id=rid,
    )
    response.headers["X-Request-ID"] = rid
    return response


async def _database(request: Request, exc: Exception) -> JSONResponse:
    """503 while the database is away or overloaded (retry later); any other error is a 500."""
    if dberrors.is_transient(exc):
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            dberrors.reason(exc),
        )
        response = problem(
            503,
            "A dependency is unavailable",
            "the database is unavailable; retry later",
            "unavailable",
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    return await _unexpected(request, exc)


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


def install(app: FastAPI) -> None:
    from schemas.money import UnknownCurrency
    from schemas.periods import InvalidPeriod, NaiveDatetime, UnknownTimezone

    for domain_error in (InvalidPeriod, NaiveDatetime, UnknownTimezone, UnknownCurrency):
        app.add_exception_handler(domain_error, _bad_value)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(SQLAlchemyError, _database)
    app.add_exception_handler(psycopg.Error, _database)
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(ViuError, _viu_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
