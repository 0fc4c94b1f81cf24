"""The review page (spec §5, §8): the joint view for both parties, decisions from the page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import text

from tests.pages.conftest import CUSTOMER, OTHER, OWN, hidden
from tests.proposals.conftest import contract, settle_months, terms_of, write_rollups
from tests.settlement.helpers import ok

SUMMER = ["2026-07", "2026-08", "2026-09"]
REVIEW = "/contracts/RA-1/reviews/2026-Q3"


@pytest.fixture
def meeting(api: Any, admin: dict[str, str], db: Any) -> int:
    """RA-1 missed its availability target all summer on every device: a lower target is
    proposed. Another party's contract exists too. Returns the proposal's id."""
    for cid, provider, customer in (("RA-1", OWN, CUSTOMER), ("THEIRS-1", OTHER, "Elsewhere")):
        body = contract(
            contract_id=cid, provider=provider, customer=customer, devices=[f"{cid.lower()}-a"]
        )
        ok(api.post("/v1/contracts", json=body, headers=admin), 201)
        for period in SUMMER:
            write_rollups(db, terms_of(body), period, availability=0.93)
        settle_months(api, admin, cid, SUMMER)
    [proposal] = ok(api.get("/v1/contracts/RA-1/proposals?status=open", headers=admin))
    assert proposal["kind"] == "chronic_penalty" and proposal["remedy"] == "change_terms"
    return int(proposal["id"])


def kpi_texts(html: str) -> list[str]:
    return re.findall(r'<span class="kpi-value"[^>]*>([^<]*)</span>', html)


def test_the_joint_view_is_the_same_for_both_parties_and_reads_as_people_read(
    signed_in: Any, meeting: int
) -> None:
    provider_page = signed_in("provider", OWN).get(REVIEW)
    customer_page = signed_in("customer", CUSTOMER).get(REVIEW)
    assert provider_page.status_code == customer_page.status_code == 200
    kpis = kpi_texts(provider_page.text)
    assert kpis == ["93.0 %", "93.0 %", "93.0 %"] and kpis == kpi_texts(customer_page.text)
    page = customer_page.text
    assert "Joint view" in page and "Cost to serve" not in page and "margin</td>" not in page
    assert "EUR 10,000.00" in page  # the fixed fee, with currency and separators
    assert re.search(r"Availability target 95\.0 % → 93\.0 % from \d{4}-\d\d", page)
    assert "customer would have paid the provider EUR" in page
    assert f"Accept proposal {meeting}" in page
    assert "False" not in page and "True" not in page


def test_a_customer_cannot_open_the_providers_view_nor_another_partys_review(
    signed_in: Any, meeting: int
) -> None:
    customer = signed_in("customer", CUSTOMER)
    own_view = customer.get(REVIEW + "?view=provider")
    assert own_view.status_code == 403 and "provider&#39;s own view" in own_view.text
    assert "Cost to serve" not in own_view.text
    assert customer.get(REVIEW + "?view=customer").status_code == 200
    theirs = customer.get("/contracts/THEIRS-1/reviews/2026-Q3")
    assert theirs.status_code == 404 and "no contract" in theirs.text
    provider = signed_in("provider", OWN)
    mine = provider.get(REVIEW + "?view=provider")
    assert mine.status_code == 200 and "Cost to serve" in mine.text
    assert provider.get(REVIEW + "?view=customer").status_code == 403


def test_both_parties_accept_on_the_page_and_the_new_version_exists(
    signed_in: Any, meeting: int, db: Any
) -> None:
    for role, party in (("provider", OWN), ("customer", CUSTOMER)):
        browser = signed_in(role, party)
        page = browser.get(REVIEW).text
        r = browser.post(
            f"/proposals/{meeting}/accept",
            data={"csrf": hidden(page, "csrf"), "back": REVIEW, "party": role},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"].startswith(REVIEW + "?decided=")
        after = browser.get(r.headers["location"]).text
        assert f"Proposal {meeting}: the provider accepted it" in after
    assert "contract version 2 carries it" in after
    with db.connect() as conn:
        versions = conn.execute(
            text("SELECT count(*) FROM contract_versions WHERE contract_id = 'RA-1'")
        ).scalar()
    assert versions == 2


def test_a_form_without_its_csrf_token_or_a_rejection_without_reason_saves_nothing(
    signed_in: Any, meeting: int, db: Any
) -> None:
    browser = signed_in("customer", CUSTOMER)
    page = browser.get(REVIEW).text
    forged = browser.post(f"/proposals/{meeting}/accept", data={"back": REVIEW})
    assert forged.status_code == 403 and "CSRF" in forged.text and "Traceback" not in forged.text
    bare = browser.post(
        f"/proposals/{meeting}/reject",
        data={"csrf": hidden(page, "csrf"), "back": REVIEW, "reason": "  "},
    )
    assert bare.status_code == 422 and "A rejection needs a reason" in bare.text
    assert "Nothing was saved" in bare.text
    with db.connect() as conn:
        decided = conn.execute(text("SELECT count(*) FROM decisions")).scalar()
        status = conn.execute(text(f"SELECT status FROM proposals WHERE id = {meeting}")).scalar()
    assert (decided, status) == (0, "open")
    r = browser.post(
        f"/proposals/{meeting}/reject",
        data={"csrf": hidden(page, "csrf"), "back": REVIEW, "reason": "the pumps are new"},
    )
    assert r.status_code == 200 and "It is rejected" in r.text
    assert "the pumps are new" in browser.get("/contracts/RA-1/proposals").text


def test_crafted_ids_in_a_query_or_form_are_ignored_not_a_500(
    signed_in: Any, meeting: int, db: Any
) -> None:
    browser = signed_in("customer", CUSTOMER)
    for decided in ("\u00b2", "9" * 5000, "0", f"{meeting},\u00b2"):
        r = browser.get(REVIEW, params={"decided": decided})
        assert r.status_code == 200 and "Traceback" not in r.text, decided
    page = browser.get(REVIEW).text
    r = browser.post(
        "/contracts/RA-1/proposals/accept",
        data={
            "csrf": hidden(page, "csrf"),
            "back": REVIEW,
            "p_\u00b2": "on",
            "p_" + "9" * 5000: "on",
        },
    )
    assert r.status_code == 422 and "tick the proposals" in r.text
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM decisions")).scalar() == 0


def test_proposals_governance_and_hub_pages_are_scoped(signed_in: Any, meeting: int) -> None:
    browser = signed_in("customer", CUSTOMER)
    hub = browser.get("/reviews").text
    assert "/contracts/RA-1/reviews/2026-Q3" in hub and "THEIRS-1" not in hub
    listing = browser.get("/contracts/RA-1/proposals")
    assert listing.status_code == 200 and f"Accept proposal {meeting}" in listing.text
    assert browser.get("/contracts/RA-1/governance").status_code == 200
    for path in ("/contracts/THEIRS-1/proposals", "/contracts/THEIRS-1/governance"):
        assert browser.get(path).status_code == 404, path


def test_an_admin_decides_for_a_named_party_and_finance_only_reads(
    signed_in: Any, meeting: int
) -> None:
    finance = signed_in("finance", OWN)
    page = finance.get(REVIEW).text
    assert f"Accept proposal {meeting}" not in page and "Availability target" in page
    refused = finance.post(f"/proposals/{meeting}/accept", data={"csrf": hidden(page, "csrf")})
    assert refused.status_code == 403 and "decide proposals" in refused.text

    admin = signed_in("admin")
    page = admin.get(REVIEW).text
    assert "for the provider" in page and "for the customer" in page
    r = admin.post(
        f"/proposals/{meeting}/accept",
        data={"csrf": hidden(page, "csrf"), "back": REVIEW, "party": "customer"},
    )
    assert r.status_code == 200 and "the customer accepted it" in r.text
    assert "for the customer" in r.text and "Awaiting the provider" in r.text


def test_the_other_party_approves_a_pending_annotation_on_the_governance_page(
    signed_in: Any, meeting: int, api: Any, make_token: Any
) -> None:
    note = {
        "device_id": "ra-1-a",
        "from": "2026-08-03T00:00:00Z",
        "to": "2026-08-03T06:00:00Z",
        "cause": "external",
        "note": "grid outage",
    }
    customer = {"Authorization": f"Bearer {make_token('customer', CUSTOMER)}"}
    made = ok(api.post("/v1/annotations", json=note, headers=customer), 201)
    assert made["status"] == "pending"
    own = signed_in("customer", CUSTOMER).get("/contracts/RA-1/governance").text
    assert "grid outage" in own and "data-approve" not in own  # its author never approves it
    browser = signed_in("provider", OWN)
    page = browser.get("/contracts/RA-1/governance").text
    assert "grid outage" in page and f'data-approve="{made["id"]}"' in page
    bare = browser.post(f"/annotations/{made['id']}/reject", data={"csrf": hidden(page, "csrf")})
    assert bare.status_code == 422 and "Nothing was saved" in bare.text
    r = browser.post(f"/annotations/{made['id']}/approve", data={"csrf": hidden(page, "csrf")})
    assert r.status_code == 200 and "The annotation is approved" in r.text
    assert "data-approve" not in r.text


def test_a_party_disputes_a_draft_statement_from_its_page(signed_in: Any, meeting: int) -> None:
    browser = signed_in("customer", CUSTOMER)
    statement = "/contracts/RA-1/statements/2026-09"
    page = browser.get(statement).text
    assert "Raise a dispute" in page and 'value="penalty"' in page
    action = statement + "/dispute"
    bare = browser.post(action, data={"csrf": hidden(page, "csrf"), "line_kind": "penalty"})
    assert bare.status_code == 422 and "Nothing was saved" in bare.text
    r = browser.post(
        action,
        data={"csrf": hidden(page, "csrf"), "line_kind": "penalty", "reason": "grid outage"},
    )
    assert r.status_code == 200 and "Your dispute is recorded" in r.text
    disputes = browser.get("/contracts/RA-1/governance").text
    assert "grid outage" in disputes and "penalty line" in disputes
    assert "Raise a dispute" not in signed_in("finance", OWN).get(statement).text


def test_the_other_party_resolves_a_dispute_on_the_governance_page(
    signed_in: Any, meeting: int, api: Any, admin: dict[str, str], db: Any
) -> None:
    customer = signed_in("customer", CUSTOMER)
    statement = "/contracts/RA-1/statements/2026-09"
    page = customer.get(statement).text
    customer.post(
        statement + "/dispute",
        data={"csrf": hidden(page, "csrf"), "line_kind": "penalty", "reason": "grid outage"},
    )
    (dispute,) = ok(api.get("/v1/contracts/RA-1/disputes", headers=admin))
    governance = "/contracts/RA-1/governance"
    assert f'data-uphold="{dispute["id"]}"' not in customer.get(governance).text

    provider = signed_in("provider", OWN)
    page = provider.get(governance).text
    assert f'data-uphold="{dispute["id"]}"' in page and f'data-dismiss="{dispute["id"]}"' in page
    action = f"/disputes/{dispute['id']}/resolve"
    bare = provider.post(action, data={"csrf": hidden(page, "csrf"), "outcome": "dismissed"})
    assert bare.status_code == 422 and "Nothing was saved" in bare.text
    assert ok(api.get("/v1/contracts/RA-1/disputes", headers=admin))[0]["status"] == "open"
    r = provider.post(
        action,
        data={"csrf": hidden(page, "csrf"), "outcome": "dismissed", "note": "the grid was up"},
    )
    assert r.status_code == 200 and "The dispute is dismissed" in r.text
    assert "the grid was up" in r.text and f'data-uphold="{dispute["id"]}"' not in r.text
    (resolved,) = ok(api.get("/v1/contracts/RA-1/disputes", headers=admin))
    assert (resolved["status"], resolved["note"]) == ("dismissed", "the grid was up")
    assert resolved["decisions"][-1]["party"] == "provider"
    entry = ok(api.get("/v1/audit?action=dispute.dismissed", headers=admin))["items"][0]
    assert entry["details"].get("email") and entry["object_id"] == str(dispute["id"])
    again = provider.post(
        action, data={"csrf": hidden(page, "csrf"), "outcome": "upheld", "note": "after all"}
    )
    assert again.status_code == 409 and "Traceback" not in again.text


def test_a_decision_posted_after_the_session_ended_returns_to_the_review_after_sign_in(
    browser: Any, meeting: int
) -> None:
    r = browser.post(
        f"/proposals/{meeting}/accept",
        data={"csrf": "stale"},
        headers={"referer": f"http://testserver{REVIEW}"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=" + REVIEW
    foreign = browser.post(
        f"/proposals/{meeting}/accept",
        headers={"referer": "https://evil.example/x"},
        follow_redirects=False,
    )
    assert foreign.headers["location"] == "/login?next=/contracts"


def test_proposals_agreed_together_are_accepted_in_one_form_into_one_version(
    api: Any, admin: dict[str, str], db: Any, signed_in: Any
) -> None:
    body = contract(provider=OWN, customer=CUSTOMER, devices=["ra-a", "ra-b"])
    ok(api.post("/v1/contracts", json=body, headers=admin), 201)
    for period in SUMMER:
        write_rollups(db, terms_of(body), period, availability=0.93)
    settle_months(api, admin, "RA-1", SUMMER)
    ids = sorted(p["id"] for p in ok(api.get("/v1/contracts/RA-1/proposals", headers=admin)))
    assert len(ids) == 2  # the availability target and the minimum commitment
    for role, party in (("provider", OWN), ("customer", CUSTOMER)):
        browser = signed_in(role, party)
        page = browser.get(REVIEW).text
        assert "Accept the ticked proposals together" in page
        ticked = {f"p_{i}": "on" for i in ids}
        r = browser.post(
            "/contracts/RA-1/proposals/accept",
            data={"csrf": hidden(page, "csrf"), "back": REVIEW, **ticked},
        )
        assert r.status_code == 200 and f"Proposal {ids[1]}: the provider accepted it" in r.text
    assert r.text.count("contract version 2 carries it") == 2
    versions = ok(api.get("/v1/contracts/RA-1/versions", headers=admin))
    assert [v["version"] for v in versions] == [1, 2]
