"""Deciding proposals (spec §4, §7.1): both parties accept, either one rejects.

Each party's decision is recorded on its own (``services.decisions``). A
proposal is ``accepted`` once the provider and the customer both accepted it;
then its remedy is carried out: new terms go into the contract version taking
effect from the next period, work becomes a corrective action.

Proposals agreed in one meeting share one version, however they are accepted:
in one call (``accept`` with several ids) or one after another. The first
change of a month creates the next period's version; later ones of the same
month amend that version while it governs nothing yet (migration 0007's
guard), so the contract never gets two versions for one period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, exists, select

from schemas.db import proposals, statements
from schemas.governance import ActionIn
from schemas.periods import period_of
from schemas.vocabulary import PARTIES, Party
from services import decisions
from services.errors import Conflict
from services.settlement import actions, contracts
from services.settlement.contracts import Version
from services.settlement.proposals import repository as repo
from services.settlement.proposals.changes import apply_change
from services.settlement.proposals.registry import deciding_parties

KIND = "proposal"
EARLIEST_ZONE = "Etc/GMT-14"
"""UTC+14: where a month begins first. A version whose month has begun there may be in
force somewhere and is no longer amended (the database's guard says the same)."""


@dataclass(frozen=True)
class Decider:
    """One party's decision-maker: a person or token, possibly an admin acting for it."""

    party: Party
    by: str
    as_admin: bool = False


def _open_rows(conn: Connection, contract_id: str, ids: list[int]) -> list[Any]:
    rows = [repo.get(conn, i, for_update=True) for i in sorted(dict.fromkeys(ids))]
    for row in rows:
        if row.contract_id != contract_id:
            raise Conflict(f"proposal {row.id} belongs to contract '{row.contract_id}'")
        if row.status != "open":
            raise Conflict(f"proposal {row.id} is {row.status}; only open proposals can be decided")
    return rows


def accept(
    conn: Connection, contract_id: str, ids: list[int], who: Decider, now: datetime | None = None
) -> list[Any]:
    """``who``'s party accepts ``ids``; those the other party accepted too are carried out,
    all term changes into one version."""
    now = now or datetime.now(UTC)
    rows = _open_rows(conn, contract_id, ids)
    agreed = []
    for row in rows:
        decisions.record(
            conn,
            KIND,
            row.id,
            contract_id,
            who.party,
            "accepted",
            who.by,
            as_admin=who.as_admin,
            at=now,
        )
        taken = decisions.get(conn, KIND, row.id)
        needed = deciding_parties(row.kind)
        if all(p in taken and taken[p].decision == "accepted" for p in needed):
            agreed.append((row, taken))
    _carry_out(conn, contract_id, agreed, now)
    return [repo.get(conn, row.id) for row in rows]


def reject(
    conn: Connection, proposal_id: int, who: Decider, reason: str, now: datetime | None = None
) -> Any:
    """``who``'s party rejects: the proposal is rejected, whatever the other party decided."""
    now = now or datetime.now(UTC)
    row = repo.get(conn, proposal_id, for_update=True)
    [row] = _open_rows(conn, row.contract_id, [proposal_id])
    decisions.record(
        conn,
        KIND,
        row.id,
        row.contract_id,
        who.party,
        "rejected",
        who.by,
        reason=reason,
        as_admin=who.as_admin,
        at=now,
    )
    repo.decide(conn, row.id, "rejected", f"{who.party}: {who.by}", reason=reason, at=now)
    return repo.get(conn, proposal_id)


def _both(taken: dict[Party, Any]) -> str:
    return "; ".join(f"{p}: {taken[p].decided_by}" for p in PARTIES if p in taken)


def _carry_out(
    conn: Connection, contract_id: str, agreed: list[tuple[Any, dict[Party, Any]]], now: datetime
) -> None:
    changing = [r for r, _ in agreed if r.remedy == "change_terms" and r.proposed is not None]
    version = _into_version(conn, contract_id, changing, now) if changing else None
    changed = {r.id for r in changing}
    for row, taken in agreed:
        accepted = version.version if version is not None and row.id in changed else None
        action_id = _action(conn, row, now) if row.remedy == "corrective_action" else None
        repo.decide(
            conn,
            row.id,
            "accepted",
            _both(taken),
            accepted_version=accepted,
            action_id=action_id,
            at=now,
        )


def _action(conn: Connection, row: Any, now: datetime) -> int:
    """The work the proposal asks for, due at the end of the next period."""
    tz = contracts.latest_version(conn, row.contract_id).terms.timezone
    following = period_of(now, tz).next()
    due = following.next().first_day - timedelta(days=1)
    spec = ActionIn.model_validate({**row.proposed, "due": due, "proposal_id": row.id})
    created = actions.create(conn, row.contract_id, spec, f"proposal {row.id}", now)
    return int(created.id)


def _from_proposals(conn: Connection, version: Version) -> list[int]:
    return list(
        conn.execute(
            select(proposals.c.id)
            .where(
                proposals.c.contract_id == version.contract_id,
                proposals.c.accepted_version == version.version,
            )
            .order_by(proposals.c.id)
        ).scalars()
    )


def _governs(conn: Connection, version: Version, now: datetime) -> bool:
    """Whether ``version`` may already govern a period: it is in force somewhere on earth,
    or a statement names it."""
    if version.terms.effective_period <= period_of(now, EARLIEST_ZONE):
        return True
    named = exists().where(
        statements.c.contract_id == version.contract_id,
        statements.c.contract_version == version.version,
    )
    return bool(conn.execute(select(named)).scalar())


def _into_version(conn: Connection, contract_id: str, rows: list[Any], now: datetime) -> Version:
    contracts.lock(conn, contract_id)
    latest = contracts.latest_version(conn, contract_id)
    effective = period_of(now, latest.terms.timezone).next()
    pending = latest.terms.effective_period >= effective
    earlier: list[int] = []
    if pending:
        earlier = _from_proposals(conn, latest)
        if latest.terms.effective_period > effective or not earlier:
            raise Conflict(
                f"version {latest.version} (effective from {latest.terms.effective_from}) was "
                "created by hand and takes effect later than these proposals would: post the "
                f"change as a new version after it, or agree it again from {effective}"
            )
        if _governs(conn, latest, now):
            raise Conflict(
                f"version {latest.version} takes effect from {latest.terms.effective_from} and "
                "may already govern a period: accept these proposals again next month"
            )
    terms = latest.terms
    for row in rows:
        terms = apply_change(
            terms,
            kpi=row.kpi,
            subject=row.subject,
            current=row.current,
            proposed=row.proposed,
            effective_from=str(effective),
        )
    ids = ", ".join(str(i) for i in [*earlier, *(r.id for r in rows)])
    by = f"accepted by both parties (proposals {ids})"
    if pending:
        return contracts.amend_pending(conn, contract_id, latest.version, terms, by)
    return contracts.add_version(conn, contract_id, terms, by)
