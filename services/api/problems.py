"""Every error leaves the API as RFC 9457 ``application/problem+json``.

No stack trace, SQL or internal detail ever reaches a response body.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.errors import ViuError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


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
    return problem(exc.status, exc.title, exc.detail, exc.slug, **exc.extra)


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


def install(app: FastAPI) -> None:
    from services.settlement.money import UnknownCurrency
    from services.settlement.periods import InvalidPeriod, NaiveDatetime, UnknownTimezone

    for domain_error in (InvalidPeriod, NaiveDatetime, UnknownTimezone, UnknownCurrency):
        app.add_exception_handler(domain_error, _bad_value)
    app.add_exception_handler(ViuError, _viu_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
