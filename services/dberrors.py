"""Which database errors are worth waiting out, and which are about the data.

Ingest and the API must tell the two apart: a lost connection, a failover or
a deadlock goes away by itself (retry with backoff, answer 503), while a row
the database refuses for good (a constraint, an operator's trigger, a feature
TimescaleDB does not support on that row) fails the same way on every retry
and must be dead-lettered instead of stalling everything behind it.

The decision is made on the SQLSTATE (PostgreSQL's stable error code), not on
the message text. An error that cannot be the fault of one message (the
server is shutting down, read-only after a failover, a table or a permission
is missing) counts as transient too: stalling until an operator fixes it
loses nothing, dead-lettering every message would bury the data in replays.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa_exc

# Error classes (first two characters of the SQLSTATE) that are never about one row:
# connection, transaction rollback (serialization, deadlock), insufficient resources
# (too many connections, disk full), operator intervention (shutdown, cannot connect
# now, query canceled), system errors, configuration, authorization, missing database.
TRANSIENT_CLASSES = frozenset({"08", "28", "3D", "3F", "40", "53", "57", "58", "F0"})
TRANSIENT_STATES = frozenset(
    {
        "55P03",  # lock_not_available
        "25006",  # read_only_sql_transaction: a standby after a failover
        "25P03",  # idle_in_transaction_session_timeout
        "42501",  # insufficient_privilege: a grant is missing, not a bad row
        "42P01",  # undefined_table: the schema is not what viu expects
        "42883",  # undefined_function
    }
)


class Retry(Exception):
    """Raised by viu itself when a transaction failed on what it had assumed: write it again."""


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a psycopg error (bare or wrapped by SQLAlchemy), if the server sent one."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    return getattr(orig, "sqlstate", None) if isinstance(orig, psycopg.Error) else None


def is_transient(exc: BaseException) -> bool:
    """The database is away or busy: the same work can succeed later unchanged."""
    if isinstance(exc, Retry):
        return True
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True  # the pool had no connection to give within its timeout
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    if not isinstance(orig, psycopg.Error):
        return False
    state = orig.sqlstate
    if state is None:
        # Raised by the client without the server's word: a refused or dropped
        # connection (OperationalError, InterfaceError) is transient, a value
        # psycopg cannot send (DataError: NUL in text) is not.
        return isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError)
    return state[:2] in TRANSIENT_CLASSES or state in TRANSIENT_STATES


def reason(exc: BaseException) -> str:
    """The database's own message (first line), or the exception's type and text."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    if isinstance(orig, psycopg.Error):
        text = str(orig).strip().splitlines()
        return text[0] if text else type(orig).__name__
    return f"{type(exc).__name__}: {exc}".splitlines()[0]
