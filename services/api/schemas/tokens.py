"""Responses of ``routes/tokens.py``."""

from __future__ import annotations

from datetime import datetime

from services.api.schemas.base import Out


class TokenCreated(Out):
    """The new token; ``token`` is shown this once only."""

    id: int
    token: str
    role: str
    party: str | None


class TokenOut(Out):
    id: int
    role: str
    party: str | None
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
