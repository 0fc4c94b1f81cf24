"""Which database errors ingest waits out and which it dead-letters (services.dberrors)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pg
from sqlalchemy import exc as sa

from services import dberrors


def wrapped(orig: BaseException) -> sa.DBAPIError:
    return sa.DBAPIError.instance("SELECT 1", {}, orig, psycopg.Error)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        pg.AdminShutdown("terminating connection due to administrator command"),
        pg.CannotConnectNow("the database system is starting up"),
        pg.TooManyConnections("sorry, too many clients already"),
        pg.SerializationFailure("could not serialize access"),
        pg.DeadlockDetected("deadlock detected"),
        pg.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"),
        pg.DiskFull("could not extend file"),
        pg.InsufficientPrivilege("permission denied for table samples"),
        psycopg.OperationalError("connection to server at 127.0.0.1 failed: Connection refused"),
        psycopg.InterfaceError("the connection is closed"),
    ],
)
def test_connection_and_capacity_errors_are_waited_out(error: psycopg.Error) -> None:
    assert dberrors.is_transient(error) and dberrors.is_transient(wrapped(error))


@pytest.mark.parametrize(
    "error",
    [
        pg.RaiseException("operator rule: throughput 13 is not allowed"),
        pg.FeatureNotSupported("locking compressed tuples is not supported"),
        pg.CheckViolation("new row violates check constraint"),
        pg.NumericValueOutOfRange("numeric field overflow"),
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
    ],
)
def test_refusals_of_the_data_are_not_retried(error: Exception) -> None:
    assert not dberrors.is_transient(error)
    if isinstance(error, psycopg.Error):
        assert not dberrors.is_transient(wrapped(error))


def test_a_pool_timeout_is_transient() -> None:
    assert dberrors.is_transient(sa.TimeoutError("QueuePool limit of size 5 overflow 5 reached"))


def test_the_reason_is_the_databases_first_line() -> None:
    error = pg.RaiseException("operator rule\nCONTEXT: PL/pgSQL function refuse_13()")
    assert dberrors.reason(wrapped(error)) == "operator rule"
    assert dberrors.reason(ValueError("bad\nworse")) == "ValueError: bad"
