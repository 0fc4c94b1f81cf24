"""Contracts and their immutable versions (spec §2): the repository and its rules.

A version is never edited: a change of terms is a new version whose
``effective_from`` is the first period it governs. Devices are registered
through the contract that lists them, which owns them from the version's
period on (``ownership``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from schemas.contract import ContractIn, ContractTerms
from schemas.db import contract_versions, contracts
from schemas.periods import Period
from services.errors import Conflict, NotFound
from services.settlement import ownership
from services.settlement.ownership import Reveal, reveal_nothing


@dataclass(frozen=True)
class Version:
    contract_id: str
    provider: str
    customer: str
    version: int
    terms: ContractTerms
    created_at: datetime
    created_by: str | None

    def as_json(self) -> dict[str, Any]:
        body = self.terms.model_dump(mode="json")
        return {
            "contract_id": self.contract_id,
            "provider": self.provider,
            "customer": self.customer,
            "version": self.version,
            **body,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


def create_contract(
    conn: Connection, body: ContractIn, by: str | None, reveal: Reveal = reveal_nothing
) -> Version:
    """Create the contract and its version 1; its devices become its own from effective_from.

    ``reveal(contract_id)`` says whether a conflict may name another contract
    (it may not when that contract belongs to another party).
    """
    exists = conn.execute(
        select(contracts.c.contract_id).where(contracts.c.contract_id == body.contract_id)
    ).first()
    if exists is not None:
        raise _id_taken(body.contract_id, reveal)
    try:
        with conn.begin_nested():  # a concurrent create of the same id fails here
            conn.execute(
                insert(contracts).values(
                    contract_id=body.contract_id,
                    provider=body.provider,
                    customer=body.customer,
                    created_at=datetime.now(UTC),
                )
            )
    except IntegrityError:
        raise _id_taken(body.contract_id, reveal) from None
    return _add_version(conn, body.contract_id, body.contract_terms(), 1, by, reveal)


def _id_taken(contract_id: str, reveal: Reveal) -> Conflict:
    if reveal(contract_id):
        return Conflict(f"contract '{contract_id}' exists; post a new version instead")
    return Conflict(f"contract id '{contract_id}' is not available; choose another")


def lock(conn: Connection, contract_id: str) -> None:
    """Serialise changes of a contract's versions."""
    conn.execute(
        select(contracts.c.contract_id)
        .where(contracts.c.contract_id == contract_id)
        .with_for_update()
    )


def add_version(
    conn: Connection,
    contract_id: str,
    terms: ContractTerms,
    by: str | None,
    reveal: Reveal = reveal_nothing,
) -> Version:
    """Append a version; it must govern a later period than every earlier one."""
    lock(conn, contract_id)
    latest = latest_version(conn, contract_id)
    if terms.effective_period <= Period.parse(latest.terms.effective_from):
        raise Conflict(
            f"effective_from {terms.effective_from} must be after {latest.terms.effective_from} "
            f"(version {latest.version}); versions are immutable",
            field="effective_from",
        )
    return _add_version(conn, contract_id, terms, latest.version + 1, by, reveal)


def amend_pending(
    conn: Connection, contract_id: str, number: int, terms: ContractTerms, by: str
) -> Version:
    """Amend a version that governs no period yet (proposals accepted one by one in one
    month share it); the database refuses this for a version that may be in force."""
    conn.execute(
        update(contract_versions)
        .where(
            contract_versions.c.contract_id == contract_id,
            contract_versions.c.version == number,
            contract_versions.c.effective_from == terms.effective_from,
        )
        .values(body=terms.model_dump(mode="json"), created_by=by)
    )
    return get_version(conn, contract_id, number)


def _add_version(
    conn: Connection,
    contract_id: str,
    terms: ContractTerms,
    number: int,
    by: str | None,
    reveal: Reveal,
) -> Version:
    ownership.release(conn, contract_id, terms.devices, terms.effective_from)
    ownership.claim(conn, contract_id, terms.devices, terms.effective_from, reveal)
    conn.execute(
        insert(contract_versions).values(
            contract_id=contract_id,
            version=number,
            effective_from=terms.effective_from,
            body=terms.model_dump(mode="json"),
            created_at=datetime.now(UTC),
            created_by=by,
        )
    )
    return get_version(conn, contract_id, number)


def _versions_query() -> Any:
    return select(contract_versions, contracts.c.provider, contracts.c.customer).join(
        contracts, contracts.c.contract_id == contract_versions.c.contract_id
    )


def _to_version(row: Any) -> Version:
    return Version(
        contract_id=row.contract_id,
        provider=row.provider,
        customer=row.customer,
        version=row.version,
        terms=ContractTerms.model_validate(row.body),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def get_version(conn: Connection, contract_id: str, number: int) -> Version:
    row = conn.execute(
        _versions_query().where(
            contract_versions.c.contract_id == contract_id, contract_versions.c.version == number
        )
    ).first()
    if row is None:
        raise NotFound(f"contract '{contract_id}' has no version {number}")
    return _to_version(row)


def latest_version(conn: Connection, contract_id: str) -> Version:
    row = conn.execute(
        _versions_query()
        .where(contract_versions.c.contract_id == contract_id)
        .order_by(contract_versions.c.version.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotFound(f"no contract '{contract_id}'")
    return _to_version(row)


def list_versions(conn: Connection, contract_id: str) -> list[Version]:
    rows = conn.execute(
        _versions_query()
        .where(contract_versions.c.contract_id == contract_id)
        .order_by(contract_versions.c.version)
    ).all()
    if not rows:
        raise NotFound(f"no contract '{contract_id}'")
    return [_to_version(r) for r in rows]


def version_in_force(conn: Connection, contract_id: str, period: Period) -> Version | None:
    """The version governing ``period``: the latest with effective_from ≤ period."""
    row = conn.execute(
        _versions_query()
        .where(
            contract_versions.c.contract_id == contract_id,
            contract_versions.c.effective_from <= str(period),
        )
        .order_by(contract_versions.c.effective_from.desc())
        .limit(1)
    ).first()
    return None if row is None else _to_version(row)


def contract_ids(conn: Connection, where: Any = None) -> list[str]:
    q = select(contracts.c.contract_id).order_by(contracts.c.contract_id)
    if where is not None:
        q = q.where(where)
    return list(conn.execute(q).scalars())


def count_contracts(conn: Connection, where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(contracts).where(where)).scalar_one())
