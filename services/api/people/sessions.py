"""Sessions of signed-in people: stored as hashes, expiring, revocable.

The cookie carries a random secret; the database keeps only its SHA-256, so
neither a database copy nor the audit trail can sign anyone in. The CSRF
token of a session is derived from that secret (a hash with another prefix):
only someone who holds the cookie can know it, and nothing more is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from schemas.db import user_sessions, users
from services.api.tokens import Principal


def _digest(prefix: str, plain: str) -> str:
    return hashlib.sha256(f"{prefix}\0{plain}".encode()).hexdigest()


def hash_session(plain: str) -> str:
    return _digest("viu-session", plain)


def csrf_token(plain: str) -> str:
    """The CSRF token that goes with a session's secret."""
    return _digest("viu-csrf", plain)


def csrf_ok(plain: str, given: str | None) -> bool:
    return csrf_ok_token(csrf_token(plain), given)


def csrf_ok_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison: a timing difference must not reveal the token."""
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


def start(
    conn: Connection,
    user_id: int,
    *,
    hours: float,
    source: str | None,
    user_agent: str | None,
    now: datetime | None = None,
) -> tuple[int, str]:
    """A new session for ``user_id``; returns (id, the secret for the cookie)."""
    now = now or datetime.now(UTC)
    plain = secrets.token_urlsafe(32)
    session_id = conn.execute(
        insert(user_sessions)
        .values(
            user_id=user_id,
            token_hash=hash_session(plain),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
            source=(source or "")[:200] or None,
            user_agent=(user_agent or "")[:200] or None,
        )
        .returning(user_sessions.c.id)
    ).scalar_one()
    return int(session_id), plain


def principal_for(conn: Connection, plain: str) -> Principal | None:
    """The person behind a live session (not expired, not revoked, account enabled)."""
    row = conn.execute(
        select(user_sessions.c.id.label("session_id"), users)
        .join(users, users.c.id == user_sessions.c.user_id)
        .where(
            user_sessions.c.token_hash == hash_session(plain),
            user_sessions.c.revoked_at.is_(None),
            user_sessions.c.expires_at > datetime.now(UTC),
            users.c.disabled_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    return Principal(
        token_id=None,
        role=row.role,
        party=row.party,
        user_id=row.id,
        name=row.name,
        email=row.email,
        session_id=row.session_id,
    )


def end(conn: Connection, session_id: int) -> None:
    conn.execute(
        update(user_sessions)
        .where(user_sessions.c.id == session_id, user_sessions.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


def revoke_all(conn: Connection, user_id: int) -> int:
    """End every live session of a person; returns how many there were."""
    return int(
        conn.execute(
            update(user_sessions)
            .where(
                user_sessions.c.user_id == user_id,
                user_sessions.c.revoked_at.is_(None),
                user_sessions.c.expires_at > datetime.now(UTC),
            )
            .values(revoked_at=datetime.now(UTC))
        ).rowcount
    )


def listing(conn: Connection, user_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(user_sessions)
        .where(user_sessions.c.user_id == user_id)
        .order_by(user_sessions.c.id.desc())
    ).mappings()
    now = datetime.now(UTC)
    return [
        {
            "id": r["id"],
            "created_at": r["created_at"].isoformat(),
            "expires_at": r["expires_at"].isoformat(),
            "revoked_at": r["revoked_at"].isoformat() if r["revoked_at"] else None,
            "active": r["revoked_at"] is None and r["expires_at"] > now,
            "source": r["source"],
            "user_agent": r["user_agent"],
        }
        for r in rows
    ]
