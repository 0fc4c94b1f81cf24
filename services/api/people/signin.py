"""Signing in: the throttle, the password check and a new session, as one outcome.

``attempt`` never raises for a wrong password: the failed attempt must be
committed (the slow-down depends on it) while nothing else is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

from services import audit
from services.api.people import passwords, sessions, throttle
from services.api.people.users import by_email, normalize_email
from services.api.tokens import Principal


@dataclass(frozen=True)
class Outcome:
    principal: Principal | None = None
    secret: str | None = None
    wait: throttle.Wait = field(default_factory=lambda: throttle.Wait(0))

    @property
    def ok(self) -> bool:
        return self.principal is not None


def attempt(
    conn: Connection,
    email: str,
    password: str,
    *,
    address: str,
    user_agent: str | None,
    hours: float,
) -> Outcome:
    """Check the throttle, then the password; on success start a session (audited)."""
    email = normalize_email(email)[:254]
    due = throttle.wait(conn, email, address)
    if due.seconds > 0:
        return Outcome(wait=due)
    user = by_email(conn, email)
    if user is None or user.disabled_at is not None:
        passwords.burn_time(password)
        throttle.record(conn, email, address, ok=False)
        return Outcome()
    if not passwords.verify(user.password_hash, password):
        throttle.record(conn, email, address, ok=False)
        return Outcome()
    throttle.record(conn, email, address, ok=True)
    session_id, secret = sessions.start(
        conn, user.id, hours=hours, source=address, user_agent=user_agent
    )
    who = sessions.principal_for(conn, secret)
    assert who is not None and who.session_id == session_id
    record(conn, who, "user.sign_in", address)
    return Outcome(principal=who, secret=secret)


def sign_out(conn: Connection, who: Principal, address: str | None) -> None:
    if who.session_id is not None:
        sessions.end(conn, who.session_id)
        record(conn, who, "user.sign_out", address)


def record(conn: Connection, who: Principal, action: str, address: str | None) -> None:
    audit.record(
        conn,
        actor=who.subject,
        role=who.role,
        party=who.party,
        source=address,
        action=action,
        object_type="user",
        object_id=str(who.user_id),
        details={"email": who.email, "session": who.session_id},
    )
