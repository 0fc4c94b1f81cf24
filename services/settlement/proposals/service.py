"""Realignment proposals (spec §4): detect after settlement, keep one proposal per drift, decide.

Dedupe: a drift is identified by (contract, kind, subject). Seeing it again
refreshes the open proposal's evidence and impact; a different proposed term
supersedes it with a new proposal; a detector that judged a full window and
no longer fires supersedes it too. A change the parties rejected is not
proposed again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from schemas.periods import Period, period_of
from services.settlement import actions, connectivity, contracts
from services.settlement.contracts import Version
from services.settlement.proposals import repository as repo
from services.settlement.proposals import settings as detector_settings
from services.settlement.proposals.base import Facts, Proposal
from services.settlement.proposals.history import latest_run
from services.settlement.proposals.impact import corrective_impact, impact
from services.settlement.proposals.registry import detect_all, judged, propose
from services.settlement.value import splits_for

log = logging.getLogger(__name__)


@dataclass
class Detection:
    """What one detection run did, by proposal id."""

    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, list[int]]:
        return {"created": self.created, "updated": self.updated, "superseded": self.superseded}


def _lock(conn: Connection, contract_id: str) -> None:
    """One detection per contract at a time: the open-proposal index must not race."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('viu.proposals'), hashtext(:c))"),
        {"c": contract_id},
    )


def facts(conn: Connection, latest: Version, now: datetime) -> Facts:
    """What the detectors judge: the latest run of closed settled periods, and their terms."""
    cfg = detector_settings.load(conn, latest.contract_id)
    current = period_of(now, latest.terms.timezone)
    past = latest_run(conn, latest.contract_id, current, cfg.history_needed)
    numbers = {item.contract_version for item in past} - {latest.version}
    versions = {n: contracts.get_version(conn, latest.contract_id, n).terms for n in numbers}
    versions[latest.version] = latest.terms
    splits = splits_for(conn, latest.contract_id, past) if latest.terms.value_model else []
    tz = {n: terms.timezone for n, terms in versions.items()}
    missing = connectivity.for_periods(conn, past, tz)
    return Facts(past, latest.terms, cfg, splits, versions, missing)


def detect(conn: Connection, contract_id: str, now: datetime | None = None) -> Detection:
    """Run every detector over the contract's recent history and reconcile the proposals."""
    now = now or datetime.now(UTC)
    _lock(conn, contract_id)
    latest = contracts.latest_version(conn, contract_id)
    seen = facts(conn, latest, now)
    findings = detect_all(seen)
    found = [p for f in findings if (p := propose(f, latest.terms)) is not None]
    effective = period_of(now, latest.terms.timezone).next()
    return _reconcile(conn, latest, found, seen, effective)


def _impact(conn: Connection, latest: Version, p: Proposal, effective: Period) -> dict[str, Any]:
    periods = list(p.finding.periods)
    if p.remedy == "corrective_action" or p.proposed_terms is None:
        return corrective_impact(p, latest.terms.currency, effective)
    return impact(conn, latest.contract_id, latest.terms, p.proposed_terms, periods, p, effective)


def _reconcile(
    conn: Connection, latest: Version, found: list[Proposal], seen: Facts, effective: Period
) -> Detection:
    result = Detection()
    cid = latest.contract_id
    open_rows = {(r.kind, r.subject): r for r in repo.open_for(conn, cid)}
    for p in found:
        key = (p.finding.kind, p.finding.subject)
        row = open_rows.pop(key, None)
        if row is not None and row.proposed == p.proposed:
            repo.refresh(conn, row.id, p, latest.version, _impact(conn, latest, p, effective))
            result.updated.append(row.id)
            continue
        if row is None and (repo.was_rejected(conn, cid, p) or _in_hand(conn, cid, p)):
            continue
        if row is not None:
            repo.supersede(conn, row.id, "the proposed term changed")
            result.superseded.append(row.id)
        new_id = repo.add(conn, cid, p, latest.version, _impact(conn, latest, p, effective))
        result.created.append(new_id)
        if row is not None:
            repo.link_successor(conn, row.id, new_id)
    for (kind, subject), row in open_rows.items():
        if judged(kind, subject, seen):
            repo.supersede(conn, row.id, "no longer detected: the drift did not persist")
            result.superseded.append(row.id)
    return result


def _in_hand(conn: Connection, contract_id: str, p: Proposal) -> bool:
    """Whether the work a corrective proposal asks for is an open action already."""
    a = p.action
    return (
        a is not None
        and actions.open_same(conn, contract_id, a.owner, a.kpi, a.devices) is not None
    )


def after_settlement(conn: Connection, contract_id: str, period: Period) -> None:
    """Hook for settlement runs: re-detect once a closed period was (re)settled.

    Runs in a savepoint and never raises: a detector bug must not cost a statement.
    """
    now = datetime.now(UTC)
    try:
        tz = contracts.latest_version(conn, contract_id).terms.timezone
        if period >= period_of(now, tz):
            return
        with conn.begin_nested():
            detect(conn, contract_id, now)
    except Exception:
        log.exception("proposal detection for %s after %s failed", contract_id, period)
