"""Party scoping: which contracts a caller may see.

Provider and customer tokens reach only contracts where their party is the
provider or the customer; a token with a party (finance, auditor) is scoped
the same way; admin and party-less finance/auditor tokens see everything.
Invisible contracts answer 404, never 403, so contract ids do not leak.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, false, or_, select, true

from schemas.db import contracts, devices
from services.api.tokens import Principal
from services.errors import NotFound

READ_ROLES = ("admin", "provider", "customer", "finance", "auditor")


def sees_all(p: Principal) -> bool:
    return p.role == "admin" or (p.role in ("finance", "auditor") and p.party is None)


def contract_filter(p: Principal) -> ColumnElement[bool]:
    """A WHERE clause on ``contracts`` admitting what ``p`` may see."""
    if sees_all(p):
        return true()
    if p.party is None:
        return false()
    return or_(contracts.c.provider == p.party, contracts.c.customer == p.party)


def can_see(p: Principal, provider: str, customer: str) -> bool:
    return sees_all(p) or (p.party is not None and p.party in (provider, customer))


def is_provider_side(p: Principal, provider: str) -> bool:
    """Provider costs and margins are for the provider (and admin/auditor), never a customer."""
    if p.role == "admin" or (p.role == "auditor" and p.party is None):
        return True
    return p.party == provider and p.role in ("provider", "finance", "auditor")


def visible_contract(conn: Connection, p: Principal, contract_id: str) -> tuple[str, str]:
    """(provider, customer) of a contract ``p`` may see; NotFound otherwise."""
    row = conn.execute(
        select(contracts.c.provider, contracts.c.customer).where(
            contracts.c.contract_id == contract_id, contract_filter(p)
        )
    ).first()
    if row is None:
        raise NotFound(f"no contract '{contract_id}'")
    return row.provider, row.customer


def sees_contract(conn: Connection, p: Principal, contract_id: str) -> bool:
    """Whether ``p`` may see the contract (and so learn that its id exists)."""
    try:
        visible_contract(conn, p, contract_id)
    except NotFound:
        return False
    return True


def visible_device(conn: Connection, p: Principal, device_id: str) -> str:
    """The contract id of a device ``p`` may see; NotFound otherwise."""
    row = conn.execute(
        select(devices.c.contract_id)
        .join(contracts, contracts.c.contract_id == devices.c.contract_id)
        .where(devices.c.device_id == device_id, contract_filter(p))
    ).first()
    if row is None:
        raise NotFound(f"no device '{device_id}'")
    return str(row.contract_id)
