"""A person in a real browser (Debian's chromium driven by Playwright): signs in, finds a
statement, issues it. With VIU_WRITE_SCREENSHOTS=1 the pages are saved to docs/pages/."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.api.app import create_app
from tests.conftest import REPO
from tests.pages.conftest import CUSTOMER, OTHER, OWN, PASSWORD
from tests.proposals.conftest import contract, settle_months, terms_of, write_rollups
from tests.settlement.helpers import ok

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = REPO / "docs" / "pages"
SUMMER = ["2026-07", "2026-08", "2026-09"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(settings: Any, db: Any) -> Iterator[str]:
    """viu's app served by uvicorn on a free local port, as a browser needs it."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, db), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def story(api: Any, admin: dict[str, str], db: Any, person: Any) -> dict[str, str]:
    """A Stockholm contract with two settled months (the first issued) and three people."""
    body = contract(
        contract_id="ACME-CRUSH-01", provider=OWN, customer=CUSTOMER, timezone="Europe/Stockholm"
    )
    ok(api.post("/v1/contracts", json=body, headers=admin), 201)
    terms = terms_of(body)
    write_rollups(db, terms, "2026-09", availability=0.96, missing=60)
    write_rollups(db, terms, "2026-10", availability=0.93)
    settle_months(api, admin, "ACME-CRUSH-01", ["2026-09", "2026-10"])
    ok(api.post("/v1/contracts/ACME-CRUSH-01/statements/2026-09/issue", headers=admin))
    late = {
        "ts": "2026-09-30T20:00:00Z",
        "interval_s": 3600,
        "uptime_min": 60,
        "quality_min": 60,
        "throughput": 90,
    }  # September's missing hour, after the issue
    ok(api.post("/v1/telemetry/ra-a", json=late, headers=admin))
    settle_months(api, admin, "ACME-CRUSH-01", ["2026-09"])
    return {
        "finance": person("finance", OWN, "Anna Berg"),
        "provider": person("provider", OWN, "Per Holm"),
        "customer": person("customer", CUSTOMER, "Maria Lind"),
    }


@contextmanager
def chromium_page(errors: list[str]) -> Iterator[Any]:
    """A page in Debian's chromium; console errors and page errors are collected."""
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(60_000)  # a shared machine can be slow; waits poll
        expect.set_options(timeout=60_000)
        yield page
        browser.close()


def _shot(page: Any, name: str) -> None:
    if os.environ.get("VIU_WRITE_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_finance_person_signs_in_opens_a_statement_and_issues_it(
    server: str, story: dict[str, str], tmp_path: Path
) -> None:
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(f"{server}/contracts/ACME-CRUSH-01/statements/2026-10")
        assert "/login" in page.url  # no session: the page sends the person to sign in
        _shot(page, "login")
        page.fill("input[name=email]", story["finance"])
        page.fill("input[name=password]", "not the password")
        page.click("button[type=submit]")
        expect(page.locator("p.error")).to_contain_text("Wrong email or password")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server}/contracts/ACME-CRUSH-01/statements/2026-10")
        text = page.inner_text("main")
        assert "Statement ACME-CRUSH-01-2026-10-0" in text
        assert "2026-10-01 to 2026-10-31 (inclusive, Europe/Stockholm)" in text
        assert "Connectcorp" in text and "MineCo" in text
        assert "EUR 10,000.00" in text  # the fixed fee, with currency and separators
        assert "93.0 %" in text  # availability as a percentage
        assert "Anna Berg (finance, Connectcorp)" in page.inner_text("header")
        _shot(page, "statement-draft")

        page.once("dialog", lambda d: d.accept())
        page.click("text=Issue statement ACME-CRUSH-01-2026-10-0")
        page.wait_for_url("**issued=1")
        text = page.inner_text("main")
        assert "Issued." in text
        assert "by Anna Berg (finance, Connectcorp)" in text
        assert page.locator("form[action$='/issue']").count() == 0
        _shot(page, "statement-issued")

        page.goto(f"{server}/contracts/ACME-CRUSH-01/statements/2026-09")
        assert "Adjusted later" in page.inner_text("main")
        page.click("text=ACME-CRUSH-01-2026-09-1")
        page.wait_for_url("**/statements/2026-09?seq=1")
        text = page.inner_text("main")
        assert "Why this adjustment exists" in text
        assert "It adjusts statement ACME-CRUSH-01-2026-09-0" in text
        assert "1 late sample after the issued data" in text
        _shot(page, "statement-adjustment")

        page.click("nav >> text=Contracts")
        page.wait_for_url(f"{server}/contracts")
        _shot(page, "contracts")
        page.click("text=ACME-CRUSH-01")
        page.wait_for_url(f"{server}/contracts/ACME-CRUSH-01")
        assert "Availability target 95.0 %" in page.inner_text("main")
        _shot(page, "contract")
        page.goto(f"{server}/statements?period=2026-10")
        assert "ACME-CRUSH-01-2026-10-0" in page.inner_text("main")
        _shot(page, "statements")

        page.click("text=Sign out")
        page.wait_for_url("**/login?signed_out=1")
        page.goto(f"{server}/contracts")
        assert "/login" in page.url
    # the wrong password answered 401 on purpose; nothing else may fail
    assert errors == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]


@pytest.fixture
def review_story(api: Any, admin: dict[str, str], db: Any, person: Any) -> dict[str, str]:
    """A summer where no device met the availability target (a lower target is proposed),
    another party's contract, and a provider and a customer person."""
    for cid, provider, customer in (("ACME-CRUSH-01", OWN, CUSTOMER), ("THEIRS-1", OTHER, "Else")):
        body = contract(
            contract_id=cid,
            provider=provider,
            customer=customer,
            devices=[f"{cid.lower()}-a", f"{cid.lower()}-b"],
            timezone="Europe/Stockholm",
        )
        ok(api.post("/v1/contracts", json=body, headers=admin), 201)
        for period, availability in zip(SUMMER, (0.93, 0.925, 0.935), strict=True):
            per_device = {f"{cid.lower()}-b": {"availability": availability - 0.01}}
            write_rollups(db, terms_of(body), period, per_device, availability=availability)
        settle_months(api, admin, cid, SUMMER)
    work = {
        "title": "reline crusher b",
        "owner": "provider",
        "kpi": "availability",
        "devices": ["acme-crush-01-b"],
        "due": "2026-10-31",
    }
    ok(api.post("/v1/contracts/ACME-CRUSH-01/actions", json=work, headers=admin), 201)
    disputed = {"contract_id": "ACME-CRUSH-01", "period": "2026-09", "reason": "the grid failed"}
    ok(api.post("/v1/disputes", json={**disputed, "party": "customer"}, headers=admin), 201)
    return {
        "provider": person("provider", OWN, "Per Holm"),
        "customer": person("customer", CUSTOMER, "Maria Lind"),
    }


def _sign_in(page: Any, server: str, email: str, path: str) -> None:
    page.goto(f"{server}{path}")
    assert "/login" in page.url
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}{path}")


def test_both_parties_decide_a_proposal_on_the_joint_review_page(
    server: str, review_story: dict[str, str]
) -> None:
    review = "/contracts/ACME-CRUSH-01/reviews/2026-Q3"
    errors: list[str] = []
    with chromium_page(errors) as page:
        _sign_in(page, server, review_story["provider"], review)
        seen_by_provider = page.locator(".kpi-value").all_inner_texts()
        assert len(seen_by_provider) == 3 and all(t.endswith(" %") for t in seen_by_provider)
        text = page.inner_text("main")
        assert "Joint view" in text and "Cost to serve" not in text
        assert re.search(r"Availability target 95\.0 % → 92\.5 % from \d{4}-\d\d", text)
        assert "the customer would have paid the provider EUR" in text
        card = page.locator("article.proposal", has_text="Availability target")
        proposal = card.get_attribute("data-proposal")
        _shot(page, "review")
        page.emulate_media(media="print")  # printed: no bar, no view switch, no forms
        for hidden_in_print in ("header.bar", "nav.views", ".decide"):
            expect(page.locator(hidden_in_print).first).to_be_hidden()
        expect(page.locator(".kpi-value").first).to_be_visible()
        page.emulate_media(media="screen")
        page.goto(f"{server}{review}?view=provider")
        assert "Cost to serve" in page.inner_text("main")
        _shot(page, "review-provider")
        page.goto(f"{server}{review}")
        page.click(f"button[data-accept='{proposal}']")
        page.wait_for_url("**decided=*")
        expect(page.locator("p.notice")).to_contain_text("the provider accepted it")
        expect(page.locator("p.notice")).to_contain_text("Awaiting the customer")
        page.goto(f"{server}/contracts/ACME-CRUSH-01/governance")  # the customer's dispute
        page.fill("form.decide input[name=note]", "the grid was up: the site log shows it")
        _shot(page, "governance")
        page.click("button[data-dismiss]")
        page.wait_for_url("**decided=dismissed")
        expect(page.locator("p.notice")).to_contain_text("The dispute is dismissed")
        expect(page.locator("main")).to_contain_text("the grid was up: the site log shows it")
        expect(page.locator("button[data-dismiss]")).to_have_count(0)
        page.click("text=Sign out")
        page.wait_for_url("**/login?signed_out=1")

        _sign_in(page, server, review_story["customer"], review)
        assert page.locator(".kpi-value").all_inner_texts() == seen_by_provider
        assert "Cost to serve" not in page.inner_text("main")
        page.click(f"button[data-accept='{proposal}']")
        page.wait_for_url("**decided=*")
        expect(page.locator("p.notice")).to_contain_text("contract version 2 carries it")
        page.goto(f"{server}/contracts/ACME-CRUSH-01")
        expect(page.locator("main")).to_contain_text(
            f"accepted by both parties (proposals {proposal})"
        )
        page.goto(f"{server}/contracts/ACME-CRUSH-01/proposals")
        _shot(page, "proposals")
        page.goto(f"{server}/reviews")
        _shot(page, "reviews")

        page.goto(f"{server}{review}?view=provider")
        assert "provider's own view" in page.inner_text("main")
        page.goto(f"{server}/contracts/THEIRS-1/reviews/2026-Q3")
        assert "no contract 'THEIRS-1'" in page.inner_text("main")
    # the provider's view (403) and another party's review (404) are refused on purpose
    assert errors == [
        "Failed to load resource: the server responded with a status of 403 (Forbidden)",
        "Failed to load resource: the server responded with a status of 404 (Not Found)",
    ]
