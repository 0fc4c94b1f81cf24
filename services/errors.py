"""Domain errors: one type per failure a user can cause.

The API maps them to ``application/problem+json`` in one place
(``services.api.problems``); ingest maps them to a dead-letter reason.
"""

from __future__ import annotations

from typing import Any


class ViuError(Exception):
    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class Unauthorized(ViuError):
    status, slug, title = 401, "unauthorized", "Missing or invalid bearer token"


class Forbidden(ViuError):
    status, slug, title = 403, "forbidden", "Not allowed for this role"


class NotFound(ViuError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ViuError):
    status, slug, title = 409, "conflict", "Conflict with the current state"


class PayloadTooLarge(ViuError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class Invalid(ViuError):
    status, slug, title = 422, "invalid", "Invalid input"


class Unavailable(ViuError):
    status, slug, title = 503, "unavailable", "A dependency is unavailable"


class Busy(ViuError):
    """Too many of one kind of operation at once; the caller may retry later."""

    status, slug, title = 429, "busy", "Too many requests of this kind at once"
