"""Proposals for people (spec §4, §7.1): read in plain language, decided with a form.

A person decides for their own party exactly as their token would: the same
visibility (a provider-side kind is 404 for a customer), the same ``acting``
rule (an admin names the party) and the same ``decide`` service, audited under
their name. After a decision the browser goes back where it came from, with
``decided=<id>`` so that page can say what the decision did.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection

from schemas.vocabulary import PARTIES, Party
from services import decisions
from services.api.audit import Recorder
from services.api.pages.auth import safe_next
from services.api.pages.core import Form, Me, PageConn, PageRoute, Viewer, back_to, error_page, page
from services.api.params import ContractIdPath, RowIdPath
from services.api.parties import acting, contract_of
from services.api.people.web import client_address
from services.api.scoping import is_provider_side, visible_contract
from services.api.wording import term_change
from services.errors import Forbidden, Invalid, NotFound
from services.settlement import contracts
from services.settlement.proposals import decide
from services.settlement.proposals import repository as repo
from services.settlement.proposals.registry import PROVIDER_ONLY_KINDS, deciding_parties

router = APIRouter(route_class=PageRoute, include_in_schema=False)
DECIDERS = ("admin", "provider", "customer")
MAX_REASON = 2000


def my_party(me: Viewer, provider: str, customer: str) -> Party | None:
    """The party a provider or customer person decides for on this contract (else None)."""
    if me.who.role == "provider" and me.who.party == provider:
        return "provider"
    if me.who.role == "customer" and me.who.party == customer:
        return "customer"
    return None


def cards(
    conn: Connection, me: Viewer, contract_id: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Proposals (as the API shows them, with ``decisions``) ready for the page: the change in
    sentences, each party's decision, and which parties this person may still decide for."""
    provider, customer = visible_contract(conn, me.who, contract_id)
    terms = contracts.latest_version(conn, contract_id).terms
    mine = my_party(me, provider, customer)
    out = []
    for p in rows:
        decided = {d["party"] for d in p.get("decisions", [])}
        needed = deciding_parties(p["kind"])
        awaiting = [party for party in needed if party not in decided]
        if p["status"] != "open":
            can = []
        elif me.is_admin:
            can = awaiting
        else:
            can = [mine] if mine in awaiting else []
        out.append(
            {
                **p,
                "changes": term_change(p, terms.unit, terms.currency),
                "awaiting": awaiting if p["status"] == "open" else [],
                "can_decide": can,
                "my_party": mine,
            }
        )
    return out


def visible_rows(conn: Connection, me: Viewer, contract_id: str, statuses: tuple[str, ...]) -> Any:
    """The contract's proposals this person may see, newest first, with decisions."""
    provider, _ = visible_contract(conn, me.who, contract_id)
    side = is_provider_side(me.who, provider)
    rows = [
        r
        for r in repo.list_for(conn, contract_id, statuses)
        if side or r.kind not in PROVIDER_ONLY_KINDS
    ]
    taken = decisions.listing(conn, "proposal", [r.id for r in rows])
    return [{**repo.as_json(r), "decisions": taken[r.id]} for r in rows]


def _visible(conn: Connection, me: Viewer, proposal_id: int) -> Any:
    """The proposal if this person may see it; 404 otherwise (ids of others do not leak)."""
    row = repo.get(conn, proposal_id)
    provider, _ = contract_of(conn, me.who, row, f"proposal {proposal_id}")
    if row.kind in PROVIDER_ONLY_KINDS and not is_provider_side(me.who, provider):
        raise NotFound(f"no proposal {proposal_id}")
    return row


def row_id(text: str) -> int | None:
    """A database id written in a query or form, or None (``"²".isdigit()`` is true,
    and a number of thousands of digits overflows both ``int()`` and a bigint)."""
    if text.isascii() and text.isdigit() and len(text) <= 18 and int(text) > 0:
        return int(text)
    return None


def notice(conn: Connection, me: Viewer, decided: str | None) -> str | None:
    """What the decisions just taken on the proposals ``decided`` ("3" or "3,4") did."""
    ids = [i for i in map(row_id, (decided or "").split(",")) if i is not None][:50]
    said = [n for n in (_one_notice(conn, me, i) for i in ids) if n]
    return " ".join(said) or None


def _one_notice(conn: Connection, me: Viewer, proposal_id: int) -> str | None:
    try:
        row = _visible(conn, me, proposal_id)
    except NotFound:
        return None
    taken = decisions.get(conn, "proposal", row.id)
    said = "; ".join(
        f"the {p} {taken[p].decision} it ({taken[p].decided_by})" for p in PARTIES if p in taken
    )
    head = f"Proposal {row.id}: {said}."
    if row.status == "rejected":
        return f"{head} It is rejected and will not be proposed again."
    if row.status == "accepted" and row.accepted_version is not None:
        return f"{head} Both parties accepted: contract version {row.accepted_version} carries it."
    if row.status == "accepted" and row.action_id is not None:
        return f"{head} Both parties accepted: corrective action {row.action_id} was created."
    if row.status == "accepted":
        return f"{head} Both parties accepted it."
    waiting = [p for p in deciding_parties(row.kind) if p not in taken]
    return f"{head} Awaiting the {' and the '.join(waiting)}." if waiting else head


def _back(fields: dict[str, str], *proposal_ids: int) -> str:
    """Where the form came from, on this site only, with ``decided=<ids>`` for the notice."""
    parts = urlsplit(safe_next(fields.get("back")))
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "decided"]
    query.append(("decided", ",".join(str(i) for i in proposal_ids)))
    anchor = f"proposal-{proposal_ids[0]}" if len(proposal_ids) == 1 else ""
    return urlunsplit(("", "", parts.path, urlencode(query, safe=","), anchor))


def _decider(
    conn: Connection, me: Viewer, contract_id: str, fields: dict[str, str]
) -> decide.Decider:
    if me.who.role not in DECIDERS:
        raise Forbidden(
            f"only the contract's provider or customer (or an admin) decide proposals; "
            f"you are {me.who.role}"
        )
    asked = fields.get("party") or None
    if asked is not None and asked not in PARTIES:
        asked = None
    who = acting(conn, me.who, contract_id, asked)  # type: ignore[arg-type]
    return decide.Decider(who.party, who.by, who.as_admin)


def _audit(
    request: Request, me: Viewer, conn: Connection, action: str, row: Any, **more: Any
) -> None:
    Recorder(me.who, client_address(request)).proposal(conn, action, row, **more)


@router.post("/proposals/{proposal_id}/accept")
def accept(
    proposal_id: RowIdPath, request: Request, me: Me, fields: Form, conn: PageConn
) -> RedirectResponse:
    """The accept button: the API's accept for this person's party."""
    row = _visible(conn, me, proposal_id)
    who = _decider(conn, me, row.contract_id, fields)
    [accepted] = decide.accept(conn, row.contract_id, [proposal_id], who)
    _audit(request, me, conn, "proposal.accept", accepted, party=who.party, as_admin=who.as_admin)
    return back_to(_back(fields, proposal_id))


@router.post("/proposals/{proposal_id}/reject", response_model=None)
def reject(
    proposal_id: RowIdPath, request: Request, me: Me, fields: Form, conn: PageConn
) -> RedirectResponse | HTMLResponse:
    """The reject button: needs a reason; without one nothing is saved and the page says so."""
    row = _visible(conn, me, proposal_id)
    who = _decider(conn, me, row.contract_id, fields)
    reason = fields.get("reason", "").strip()
    if not reason or len(reason) > MAX_REASON:
        why = "has no reason" if not reason else f"reason is longer than {MAX_REASON} characters"
        return error_page(
            request,
            422,
            "A rejection needs a reason",
            f"Nothing was saved: the rejection of proposal {proposal_id} {why}. Go back, "
            f"write in the reason field why the {who.party} rejects it (1 to {MAX_REASON} "
            "characters) and send it again.",
            back=safe_next(fields.get("back")),
        )
    rejected = decide.reject(conn, proposal_id, who, reason)
    _audit(
        request,
        me,
        conn,
        "proposal.reject",
        rejected,
        reason=reason,
        party=who.party,
        as_admin=who.as_admin,
    )
    return back_to(_back(fields, proposal_id))


@router.post("/contracts/{contract_id}/proposals/accept")
def accept_together(
    contract_id: ContractIdPath, request: Request, me: Me, fields: Form, conn: PageConn
) -> RedirectResponse:
    """Proposals agreed together in the meeting (checkboxes ``p_<id>``), accepted in one call:
    those both parties accepted take effect in one contract version."""
    visible_contract(conn, me.who, contract_id)
    ids = sorted({i for k in fields if k.startswith("p_") and (i := row_id(k[2:])) is not None})
    if not ids:
        raise Invalid("tick the proposals to accept together, then send the form again")
    for proposal_id in ids:
        _visible(conn, me, proposal_id)
    who = _decider(conn, me, contract_id, fields)
    for row in decide.accept(conn, contract_id, ids, who):
        _audit(request, me, conn, "proposal.accept", row, party=who.party, as_admin=who.as_admin)
    return back_to(_back(fields, *ids))


@router.get("/contracts/{contract_id}/proposals")
def listing(contract_id: ContractIdPath, request: Request, me: Me, conn: PageConn) -> HTMLResponse:
    """Every proposal of the contract: the open ones with their decision controls first."""
    rows = cards(conn, me, contract_id, visible_rows(conn, me, contract_id, repo.STATUSES))
    c = contracts.latest_version(conn, contract_id)
    return page(
        request,
        "proposals.html",
        nav="reviews",
        nav_here="proposals",
        c=c,
        open_=[p for p in rows if p["status"] == "open"],
        closed=[p for p in rows if p["status"] != "open"],
        back=request.url.path,
        notice=notice(conn, me, request.query_params.get("decided")),
    )
