"""Pages apply the API's roles and party scoping; forms act under the person's name."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.pages.conftest import CUSTOMER, OTHER, OWN, hidden
from tests.proposals.conftest import contract, settle_months, terms_of, write_rollups
from tests.settlement.helpers import ok


@pytest.fixture
def two_contracts(api: Any, admin: dict[str, str], db: Any) -> None:
    """Ours (Connectcorp → MineCo) and another party's, each with a settled October."""
    for cid, provider, customer in (("OURS-1", OWN, CUSTOMER), ("THEIRS-1", OTHER, "Elsewhere")):
        body = contract(
            contract_id=cid,
            provider=provider,
            customer=customer,
            devices=[f"{cid.lower()}-a"],
            timezone="Europe/Stockholm",
        )
        ok(api.post("/v1/contracts", json=body, headers=admin), 201)
        write_rollups(db, terms_of(body), "2026-10", availability=0.93)
        settle_months(api, admin, cid, ["2026-10"])


PAGES = ("/contracts/{c}", "/contracts/{c}/statements/2026-10")


@pytest.mark.parametrize("role,party", [("provider", OWN), ("customer", CUSTOMER)])
def test_another_partys_contract_is_a_404_page(
    signed_in: Any, two_contracts: None, role: str, party: str
) -> None:
    browser = signed_in(role, party)
    for path in PAGES:
        ours = browser.get(path.format(c="OURS-1"))
        theirs = browser.get(path.format(c="THEIRS-1"))
        assert ours.status_code == 200, path
        assert theirs.status_code == 404 and "no contract &#39;THEIRS-1&#39;" in theirs.text, path
        assert theirs.headers["content-type"].startswith("text/html")
    listing = browser.get("/contracts").text
    month = browser.get("/statements?period=2026-10").text
    for text_ in (listing, month):
        assert "OURS-1" in text_ and "THEIRS-1" not in text_


def test_finance_without_a_party_sees_every_contract(signed_in: Any, two_contracts: None) -> None:
    browser = signed_in("finance")
    month = browser.get("/statements?period=2026-10").text
    assert "OURS-1-2026-10-0" in month and "THEIRS-1-2026-10-0" in month


def test_bad_input_on_a_page_is_a_clear_page(signed_in: Any, two_contracts: None) -> None:
    browser = signed_in("finance")
    for path in ("/statements?period=2026-13", "/contracts/OURS-1/statements/2026-10?seq=-1"):
        r = browser.get(path)
        assert r.status_code == 422 and "Invalid input" in r.text, path
        assert "Traceback" not in r.text
    missing = browser.get("/contracts/OURS-1/statements/2026-11")
    assert missing.status_code == 404 and "no statement" in missing.text


def test_finance_issues_from_the_page_under_their_name(
    signed_in: Any, two_contracts: None, db: Any, admin: dict[str, str]
) -> None:
    browser = signed_in("finance", OWN, "Anna Berg")
    page = browser.get("/contracts/OURS-1/statements/2026-10")
    assert "Issue statement OURS-1-2026-10-0" in page.text
    forged = browser.post("/contracts/OURS-1/statements/2026-10/issue", data={"csrf": "x"})
    assert forged.status_code == 403
    assert ok(browser.get("/v1/contracts/OURS-1/statements/2026-10"))["status"] == "draft"

    r = browser.post(
        "/contracts/OURS-1/statements/2026-10/issue",
        data={"csrf": hidden(page.text, "csrf")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/contracts/OURS-1/statements/2026-10?seq=0&issued=1"
    issued = ok(browser.get("/v1/contracts/OURS-1/statements/2026-10"))
    assert issued["status"] == "issued"
    assert issued["issued_by"] == "Anna Berg (finance, Connectcorp)"
    entry = ok(browser.get("/v1/audit?action=statement.issue", headers=admin))["items"][0]
    assert entry["actor"] == "Anna Berg (finance, Connectcorp)"
    assert entry["details"]["email"] == "anna.berg@connectcorp.example"
    assert entry["object_id"] == "OURS-1/2026-10/0"

    again = browser.post(
        "/contracts/OURS-1/statements/2026-10/issue", data={"csrf": hidden(page.text, "csrf")}
    )
    assert again.status_code == 409 and "nothing changed since" in again.text


def test_a_provider_person_sees_no_issue_button_and_cannot_issue(
    signed_in: Any, two_contracts: None
) -> None:
    browser = signed_in("provider", OWN)
    page = browser.get("/contracts/OURS-1/statements/2026-10")
    assert "Issue statement" not in page.text
    r = browser.post(
        "/contracts/OURS-1/statements/2026-10/issue", data={"csrf": hidden(page.text, "csrf")}
    )
    assert r.status_code == 403
    assert ok(browser.get("/v1/contracts/OURS-1/statements/2026-10"))["status"] == "draft"


def test_sign_in_and_out_are_audited_under_the_persons_name(
    signed_in: Any, admin: dict[str, str]
) -> None:
    browser = signed_in("customer", CUSTOMER, "Maria Lind")
    page = browser.get("/contracts")
    browser.post("/logout", data={"csrf": hidden(page.text, "csrf")})
    items = ok(browser.get("/v1/audit?object_type=user", headers=admin))["items"]
    assert [(i["action"], i["actor"]) for i in reversed(items)] == [
        ("user.sign_in", "Maria Lind (customer, MineCo)"),
        ("user.sign_out", "Maria Lind (customer, MineCo)"),
    ]


def test_the_people_form_names_invalid_values_and_saves_nothing(signed_in: Any, db: Any) -> None:
    browser = signed_in("admin", name="Ada Admin")
    page = browser.get("/users")
    csrf = hidden(page.text, "csrf")
    bad = {
        "csrf": csrf,
        "email": "not-an-email",
        "name": "",
        "role": "provider",
        "password": "short",
    }
    r = browser.post("/users", data=bad)
    assert r.status_code == 422 and "Nothing was saved" in r.text
    for field in ("email", "name", "password"):
        assert f"{field}:" in r.text, field
    no_party = {**bad, "email": "per@x.example", "name": "Per", "password": "long enough pass"}
    r = browser.post("/users", data=no_party)
    assert r.status_code == 422 and "a provider person needs a party" in r.text
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 1
        assert (
            conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'user.create'"))
        ).scalar_one() == 0
    good = {**no_party, "party": OWN}
    r = browser.post("/users", data=good, follow_redirects=False)
    assert r.status_code == 303
    assert "Per" in browser.get("/users").text


def test_only_admins_open_the_people_page(signed_in: Any) -> None:
    assert signed_in("finance").get("/users").status_code == 403


def test_the_csv_link_of_the_month_downloads_what_the_person_may_see(
    signed_in: Any, two_contracts: None
) -> None:
    browser = signed_in("customer", CUSTOMER)
    page = browser.get("/statements?period=2026-10").text
    assert 'href="/v1/settlements?period=2026-10&amp;format=csv"' in page
    r = browser.get("/v1/settlements?period=2026-10&format=csv")  # the cookie signs it
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    header, *rows = r.text.strip().split("\r\n")
    assert header.startswith("number,contract_id,provider,customer,period,period_start")
    assert [row.split(",")[0] for row in rows] == ["OURS-1-2026-10-0"]
