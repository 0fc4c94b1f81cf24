"""Responses of ``routes/users.py``."""

from __future__ import annotations

from services.api.schemas.base import Out, Timestamp


class UserOut(Out):
    id: int
    email: str
    name: str
    role: str
    party: str | None
    created_at: Timestamp
    created_by: str | None
    disabled_at: Timestamp | None


class UserDisabled(UserOut):
    sessions_ended: int


class SessionOut(Out):
    id: int
    created_at: Timestamp
    expires_at: Timestamp
    revoked_at: Timestamp | None
    active: bool
    source: str | None
    user_agent: str | None


class SessionsEnded(Out):
    sessions_ended: int
