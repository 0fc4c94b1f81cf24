"""Which contract owns a device, when (spec §6: a device belongs to at most one contract at a time).

A version that lists a device claims it from its ``effective_from``; a later
version that drops it releases it from that version's period. The database
enforces one open ownership per device (``device_owners_one_at_a_time``), so
of two contracts claiming one device at the same moment exactly one succeeds,
whatever the timing; the checks here only turn that into a clear answer.
Settlement reads only the devices a contract owned in the period, so a
contract that lists a device it does not own never sees (or bills) its data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from schemas.contract import ContractTerms
from schemas.db import device_owners, devices
from schemas.periods import Period
from services.errors import Conflict

Reveal = Callable[[str], bool]
"""Whether the caller may learn that a contract id exists (its own contracts, or admin)."""


def reveal_nothing(contract_id: str) -> bool:
    """The default: a conflict names no other contract."""
    return False


def claim(
    conn: Connection, contract_id: str, device_ids: Sequence[str], since: str, reveal: Reveal
) -> None:
    """Make ``contract_id`` the owner of ``device_ids`` from period ``since`` on.

    Conflict when another contract owns one now, or owned it after ``since``;
    the message names that contract only if ``reveal`` allows it.
    """
    now = datetime.now(UTC)
    for device_id in sorted(set(device_ids)):  # one order everywhere: no deadlocks
        conn.execute(
            pg_insert(devices)
            .values(device_id=device_id, contract_id=contract_id, registered_at=now)
            .on_conflict_do_nothing(index_elements=["device_id"])
        )
        # Serialises every claim and release of this device (a new row: its insert did).
        conn.execute(
            select(devices.c.device_id).where(devices.c.device_id == device_id).with_for_update()
        )
        if _holds(conn, contract_id, device_id):
            continue
        _refuse_if_taken(conn, contract_id, device_id, since, reveal)
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(device_owners).values(
                        device_id=device_id,
                        contract_id=contract_id,
                        from_period=since,
                        claimed_at=now,
                    )
                )
        except IntegrityError:  # the index saw a claim the checks above could not
            raise _taken(device_id, None, reveal) from None
        conn.execute(
            update(devices).where(devices.c.device_id == device_id).values(contract_id=contract_id)
        )


def release(conn: Connection, contract_id: str, keep: Sequence[str], since: str) -> list[str]:
    """End the contract's ownership of every device not in ``keep``, from period ``since``."""
    released = conn.execute(
        update(device_owners)
        .where(
            device_owners.c.contract_id == contract_id,
            device_owners.c.until_period.is_(None),
            device_owners.c.device_id.not_in(list(keep)),
        )
        .values(until_period=since, released_at=datetime.now(UTC))
        .returning(device_owners.c.device_id)
    )
    return sorted(released.scalars())


def _holds(conn: Connection, contract_id: str, device_id: str) -> bool:
    row = conn.execute(
        select(device_owners.c.id).where(
            device_owners.c.device_id == device_id,
            device_owners.c.contract_id == contract_id,
            device_owners.c.until_period.is_(None),
        )
    ).first()
    return row is not None


def _refuse_if_taken(
    conn: Connection, contract_id: str, device_id: str, since: str, reveal: Reveal
) -> None:
    other = conn.execute(
        select(device_owners.c.contract_id, device_owners.c.until_period)
        .where(
            device_owners.c.device_id == device_id,
            device_owners.c.contract_id != contract_id,
            or_(device_owners.c.until_period.is_(None), device_owners.c.until_period > since),
        )
        .order_by(device_owners.c.until_period.desc().nulls_first())
        .limit(1)
    ).first()
    if other is not None:
        raise _taken(device_id, other, reveal)


def _taken(device_id: str, other: object, reveal: Reveal) -> Conflict:
    owner = getattr(other, "contract_id", None)
    until = getattr(other, "until_period", None)
    if owner is not None and reveal(owner):
        when = f" until {until}" if until else ""
        return Conflict(
            f"device '{device_id}' belongs to contract '{owner}'{when}", field="devices"
        )
    # Another party's contract: say no more than a 404 would.
    return Conflict(f"device '{device_id}' is not available to this contract", field="devices")


def owned(conn: Connection, contract_id: str, period: Period, among: Sequence[str]) -> list[str]:
    """The devices of ``among`` that ``contract_id`` owned during ``period``, in ``among``'s order."""
    p = str(period)
    rows = conn.execute(
        select(device_owners.c.device_id).where(
            device_owners.c.contract_id == contract_id,
            device_owners.c.device_id.in_(list(among)),
            device_owners.c.from_period <= p,
            or_(device_owners.c.until_period.is_(None), device_owners.c.until_period > p),
        )
    )
    mine = set(rows.scalars())
    return [d for d in among if d in mine]


def owned_terms(
    conn: Connection, contract_id: str, terms: ContractTerms, period: Period
) -> ContractTerms:
    """``terms`` restricted to the devices the contract owned in ``period``."""
    mine = owned(conn, contract_id, period, terms.devices)
    if mine == list(terms.devices):
        return terms
    return terms.model_copy(update={"devices": mine})


def ever_owned(conn: Connection, contract_id: str) -> set[str]:
    """Every device the contract has owned at some time."""
    q = select(func.distinct(device_owners.c.device_id)).where(
        and_(device_owners.c.contract_id == contract_id)
    )
    return set(conn.execute(q).scalars())
