"""Deciding what the other party raised (spec §1.3, §7.2), the same for the API and the
pages: a pending annotation approved or rejected, a dispute resolved.

The other party upholds or dismisses it with a note. An upheld dispute becomes
something that changes the numbers: the disputed annotation stops counting, or
the resolution's annotation starts counting (both parties agreed to it), and
the period is re-settled at once — an adjustment draft if it was issued
meanwhile. Audited under whoever resolved it.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection

from schemas.governance import ResolveIn
from schemas.periods import Period
from services import decisions
from services.api.audit import Recorder
from services.api.parties import acting, contract_of
from services.api.scoping import visible_device
from services.api.tokens import Principal
from services.errors import Invalid
from services.ingest import annotations as notes
from services.settlement import disputes, runs


def resolve(
    conn: Connection, caller: Principal, dispute_id: int, body: ResolveIn, audit: Recorder
) -> Any:
    """The resolved dispute's row (404 for a dispute of another party's contract)."""
    row = disputes.get(conn, dispute_id)
    contract_of(conn, caller, row, f"dispute {dispute_id}")
    who = acting(
        conn, caller, row.contract_id, body.party, admin_default=decisions.other(row.raised_party)
    )
    resolved = disputes.resolve(
        conn, dispute_id, who.party, body.outcome, body.note, who.by, who.as_admin
    )
    if body.outcome == "upheld":
        resolved = disputes.record_result(
            conn, dispute_id, _uphold(conn, caller, resolved, body, who.by)
        )
    audit(
        conn,
        f"dispute.{body.outcome}",
        "dispute",
        str(dispute_id),
        contract_id=row.contract_id,
        period=row.period.strip(),
        party=who.party,
        as_admin=who.as_admin,
        note=body.note,
        result=resolved.result,
    )
    return resolved


def _uphold(
    conn: Connection, caller: Principal, row: Any, body: ResolveIn, by: str
) -> dict[str, Any]:
    """What the upheld dispute becomes, and the period re-settled with it."""
    result: dict[str, Any] = {}
    if row.annotation_id is not None:
        disputed = notes.get(conn, row.annotation_id, for_update=True)
        if disputed.status != "rejected":
            notes.set_status(conn, disputed, "rejected")
            result["withdrawn_annotation_id"] = disputed.id
    if body.annotation is not None:
        if visible_device(conn, caller, body.annotation.device_id) != row.contract_id:
            raise Invalid(
                f"device {body.annotation.device_id} is not a device of {row.contract_id}",
                field="annotation.device_id",
            )
        note = notes.create(conn, body.annotation, by, party=row.resolved_party, approved=True)
        decisions.record(
            conn,
            notes.KIND,
            note["id"],
            row.contract_id,
            row.raised_party,
            "approved",
            f"{row.raised_by} (dispute {row.id})",
            as_admin=row.raised_as_admin,
        )
        result["annotation_id"] = note["id"]
    period = Period.parse(row.period.strip())
    settled = runs.settle_contract(conn, row.contract_id, period)
    result["settlement"] = {"period": str(period), "outcome": settled.outcome, "net": settled.net}
    return result


def decide_annotation(
    conn: Connection,
    caller: Principal,
    row: Any,
    decision: Literal["approved", "rejected"],
    reason: str | None,
    party: Any,
    audit: Recorder,
) -> dict[str, Any]:
    """The other party's decision on a pending annotation (an admin names the party, else
    the party that did not write it), audited under whoever took it."""
    counterparty = None if row.party is None else decisions.other(row.party)
    who = acting(conn, caller, row.contract_id, party, admin_default=counterparty)
    note: dict[str, Any] = notes.decide(
        conn, row.id, who.party, decision, who.by, reason=reason, as_admin=who.as_admin
    )
    audit(
        conn,
        f"annotation.{'approve' if decision == 'approved' else 'reject'}",
        "annotation",
        str(row.id),
        party=who.party,
        as_admin=who.as_admin,
        reason=reason,
    )
    return note
