"""Failed sign-ins slow down further attempts, per account and per address.

An account may fail ``ACCOUNT_FREE`` times in a row (since its last success)
without delay; after that each further attempt must wait ``FIRST_DELAY``,
doubling with every failure up to ``MAX_DELAY``. An address (the client's IP)
gets ``ADDRESS_FREE`` failures per ``ADDRESS_WINDOW`` across all accounts, so
guessing many accounts from one place is slowed as well; a success does not
reset it (one valid account must not launder an address). While a wait is
due the password is not even checked, so the attempt tells nothing.

Attempts live in PostgreSQL so that every API replica counts the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import ceil

from sqlalchemy import Connection, delete, func, insert, select

from schemas.db import sign_in_attempts as attempts

ACCOUNT_FREE = 5
ADDRESS_FREE = 20
ADDRESS_WINDOW = timedelta(hours=1)
FIRST_DELAY = timedelta(seconds=15)
MAX_DELAY = timedelta(minutes=15)
KEEP = timedelta(days=1)


@dataclass(frozen=True)
class Wait:
    """How long until the next attempt is heard, and why (0 s: go ahead)."""

    seconds: int
    reason: str = ""


def delay(failures: int, free: int) -> timedelta:
    """The wait after ``failures`` failures of which ``free`` cost nothing."""
    if failures < free:
        return timedelta(0)
    return min(FIRST_DELAY * 2 ** min(failures - free, 16), MAX_DELAY)


def _failures(conn: Connection, *where: object) -> tuple[int, datetime | None]:
    row = conn.execute(
        select(func.count(), func.max(attempts.c.at)).where(
            attempts.c.ok.is_(False),
            *where,  # type: ignore[arg-type]
        )
    ).one()
    return int(row[0]), row[1]


def wait(conn: Connection, email: str, address: str, now: datetime | None = None) -> Wait:
    now = now or datetime.now(UTC)
    last_ok = conn.execute(
        select(func.max(attempts.c.at)).where(attempts.c.email == email, attempts.c.ok)
    ).scalar()
    since = max(last_ok or now - KEEP, now - KEEP)
    checks = (
        ("this account", ACCOUNT_FREE, (attempts.c.email == email, attempts.c.at > since)),
        (
            "this address",
            ADDRESS_FREE,
            (attempts.c.address == address, attempts.c.at > now - ADDRESS_WINDOW),
        ),
    )
    longest = Wait(0)
    for who, free, where in checks:
        count, last = _failures(conn, *where)
        if last is None:
            continue
        due = last + delay(count, free) - now
        seconds = ceil(due.total_seconds())
        if seconds > longest.seconds:
            longest = Wait(seconds, f"too many failed sign-ins for {who}")
    return longest


def record(
    conn: Connection, email: str, address: str, ok: bool, now: datetime | None = None
) -> None:
    now = now or datetime.now(UTC)
    conn.execute(delete(attempts).where(attempts.c.at < now - KEEP))
    conn.execute(insert(attempts).values(at=now, email=email, address=address[:64], ok=ok))
