"""For which party a caller acts (spec §7.1): decisions are recorded per party.

A provider or customer token acts for its own party on its own contracts and
never for the other one; an admin may act for either party, but must say
which, and the record says it was an admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from schemas.vocabulary import Party
from services.api.scoping import visible_contract
from services.api.tokens import Principal
from services.errors import Forbidden, Invalid, NotFound


@dataclass(frozen=True)
class Acting:
    """Who decides: the party, the person or token, and whether an admin acted for it."""

    party: Party
    by: str
    as_admin: bool


def contract_of(conn: Connection, caller: Principal, row: Any, what: str) -> tuple[str, str]:
    """(provider, customer) of the contract ``row`` belongs to, if ``caller`` may see it; a
    404 naming ``what`` (e.g. "dispute 7") otherwise, so ids of others' objects do not leak."""
    try:
        return visible_contract(conn, caller, row.contract_id or "")
    except NotFound:
        raise NotFound(f"no {what}") from None


def own_party(conn: Connection, caller: Principal, contract_id: str) -> Party | None:
    """The caller's party on ``contract_id`` (404 if it cannot see it; None for admin)."""
    provider, customer = visible_contract(conn, caller, contract_id)
    if caller.role == "admin":
        return None
    if caller.role == "provider" and caller.party == provider:
        return "provider"
    if caller.role == "customer" and caller.party == customer:
        return "customer"
    raise Forbidden("only the contract's own provider or customer (or an admin) may do this")


def acting(
    conn: Connection,
    caller: Principal,
    contract_id: str,
    asked: Party | None,
    *,
    admin_default: Party | None = None,
) -> Acting:
    """The party ``caller`` acts for; ``asked`` is the body's ``party`` if any.

    ``admin_default``: the party an admin acts for when the action has only one
    possible party (the one that did not raise a dispute, say).
    """
    mine = own_party(conn, caller, contract_id)
    if mine is None:
        party = asked or admin_default
        if party is None:
            raise Invalid(
                'an admin acts for one party: send "party": "provider" or "customer"',
                field="party",
            )
        return Acting(party, f"{caller.subject} for the {party}", True)
    if asked is not None and asked != mine:
        raise Forbidden(f"a {caller.role} token acts for the {mine} only, never for the {asked}")
    return Acting(mine, caller.subject, False)
