"""Signing in and out (spec §8): sessions in PostgreSQL behind an HttpOnly, SameSite
cookie, CSRF tokens on every form, failed sign-ins slowed down."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from services.api.people import throttle
from services.api.people.web import SESSION_COOKIE
from tests.pages.conftest import OWN, PASSWORD, hidden, sign_in


def _session_count(db: Any) -> int:
    with db.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM user_sessions")).scalar_one())


def test_signing_in_sets_an_httponly_samesite_cookie_and_lands_where_the_person_wanted(
    browser: Any, person: Any, db: Any
) -> None:
    email = person("finance", OWN, "Anna Berg")
    r = sign_in(browser, email, next_="/statements?period=2026-10")
    assert r.status_code == 303 and r.headers["location"] == "/statements?period=2026-10"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    with db.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM user_sessions")).scalar_one()
    assert browser.cookies[SESSION_COOKIE] not in stored  # only a hash is kept
    page = browser.get("/contracts")
    assert page.status_code == 200 and "Anna Berg (finance, Connectcorp)" in page.text


def test_behind_https_the_cookie_is_secure(browser: Any, person: Any) -> None:
    email = person("finance", OWN)
    form = browser.get("/login")  # (a Secure form cookie would not travel back over http)
    r = browser.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf": hidden(form.text, "csrf")},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "Secure" in cookie


def test_a_wrong_password_says_so_and_starts_no_session(browser: Any, person: Any, db: Any) -> None:
    email = person("finance", OWN)
    r = sign_in(browser, email, "not the password")
    assert r.status_code == 401 and "Wrong email or password" in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    unknown = sign_in(browser, "nobody@nowhere.example")
    assert unknown.status_code == 401 and "Wrong email or password" in unknown.text
    assert _session_count(db) == 0


def test_empty_fields_are_named_on_the_form(browser: Any) -> None:
    form = browser.get("/login")
    r = browser.post(
        "/login", data={"email": "", "password": "", "csrf": hidden(form.text, "csrf")}
    )
    assert r.status_code == 422 and "Enter your email and password" in r.text


def test_without_a_session_a_page_redirects_to_login_and_back(browser: Any, person: Any) -> None:
    r = browser.get("/contracts/X-1/statements/2026-10?seq=1", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/contracts/X-1/statements/2026-10%3Fseq%3D1"
    form = browser.get(r.headers["location"])
    assert hidden(form.text, "next") == "/contracts/X-1/statements/2026-10?seq=1"


def test_the_login_page_never_redirects_to_another_site(browser: Any, person: Any) -> None:
    email = person("finance", OWN)
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        r = sign_in(browser, email, next_=target)
        assert r.headers["location"] == "/contracts", target


def test_signing_out_ends_the_session_for_pages_and_the_api(signed_in: Any) -> None:
    browser = signed_in("finance", OWN)
    old = browser.cookies[SESSION_COOKIE]
    page = browser.get("/contracts")
    r = browser.post("/logout", data={"csrf": hidden(page.text, "csrf")}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?signed_out=1"
    browser.cookies.set(SESSION_COOKIE, old)  # a copy of the old cookie opens nothing
    assert browser.get("/contracts", follow_redirects=False).status_code == 303
    assert browser.get("/v1/contracts").status_code == 401


def test_an_expired_session_sends_the_person_back_to_login(signed_in: Any, db: Any) -> None:
    browser = signed_in("finance", OWN)
    assert browser.get("/contracts").status_code == 200
    with db.begin() as conn:
        conn.execute(text("UPDATE user_sessions SET expires_at = now() - interval '1 second'"))
    r = browser.get("/contracts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    api = browser.get("/v1/contracts")
    assert api.status_code == 401 and "sign in again" in api.json()["detail"]


def test_an_admin_revokes_sessions_and_disables_people(
    signed_in: Any, db: Any, admin: dict[str, str]
) -> None:
    browser = signed_in("provider", OWN, "Per Holm")
    with db.connect() as conn:
        user_id = conn.execute(text("SELECT id FROM users")).scalar_one()
    sessions = browser.get(f"/v1/users/{user_id}/sessions", headers=admin).json()
    assert [s["active"] for s in sessions] == [True]
    cookie = browser.cookies[SESSION_COOKIE]
    browser.cookies.clear()
    r = browser.delete(f"/v1/users/{user_id}/sessions", headers=admin)
    assert r.status_code == 200 and r.json() == {"sessions_ended": 1}
    browser.cookies.set(SESSION_COOKIE, cookie)
    assert browser.get("/contracts", follow_redirects=False).status_code == 303

    browser.cookies.clear()
    assert sign_in(browser, "per.holm@connectcorp.example").status_code == 303
    browser.cookies.clear()
    disabled = browser.post(f"/v1/users/{user_id}/disable", headers=admin).json()
    assert disabled["disabled_at"] and disabled["sessions_ended"] == 1
    assert sign_in(browser, "per.holm@connectcorp.example").status_code == 401


def test_forms_without_the_csrf_token_are_refused(signed_in: Any, db: Any) -> None:
    browser = signed_in("finance", OWN)
    before = _session_count(db)
    for data in ({}, {"csrf": "forged"}):
        r = browser.post("/logout", data=data, follow_redirects=False)
        assert r.status_code == 403 and "CSRF" in r.text
    assert browser.get("/contracts").status_code == 200  # still signed in
    browser.cookies.clear()
    login = browser.post("/login", data={"email": "x@y.example", "password": "whatever12"})
    assert login.status_code == 403 and "expired" in login.text
    assert _session_count(db) == before


def test_the_json_api_needs_the_csrf_header_when_a_cookie_signs_the_request(
    signed_in: Any,
) -> None:
    browser = signed_in("admin")
    page = browser.get("/contracts")
    body = {"role": "auditor"}
    refused = browser.post("/v1/tokens", json=body)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    allowed = browser.post(
        "/v1/tokens", json=body, headers={"X-CSRF-Token": hidden(page.text, "csrf")}
    )
    assert allowed.status_code == 201
    assert browser.get("/v1/tokens").status_code == 200  # reading needs no token


def test_failed_sign_ins_slow_down_the_account(browser: Any, person: Any, db: Any) -> None:
    email = person("finance", OWN)
    for _ in range(throttle.ACCOUNT_FREE):
        assert sign_in(browser, email, "wrong password").status_code == 401
    blocked = sign_in(browser, email)  # even the right password waits
    assert blocked.status_code == 429 and "this account" in blocked.text
    wait = int(blocked.headers["retry-after"])
    assert 0 < wait <= throttle.FIRST_DELAY.total_seconds()
    assert _session_count(db) == 0
    with db.begin() as conn:  # the wait passes
        conn.execute(text("UPDATE sign_in_attempts SET at = at - interval '16 seconds'"))
    assert sign_in(browser, email).status_code == 303
    assert sign_in(browser, email, "wrong again").status_code == 401  # success reset the count


def test_failed_sign_ins_slow_down_the_address_across_accounts(browser: Any, person: Any) -> None:
    email = person("finance", OWN)
    for i in range(throttle.ADDRESS_FREE):
        assert (
            sign_in(browser, f"guess{i}@connectcorp.example", "wrong password").status_code == 401
        )
    blocked = sign_in(browser, email)
    assert blocked.status_code == 429 and "this address" in blocked.text


def test_the_delay_doubles_and_is_capped() -> None:
    free = throttle.ACCOUNT_FREE
    assert throttle.delay(free - 1, free).total_seconds() == 0
    assert [throttle.delay(free + i, free).total_seconds() for i in range(3)] == [15, 30, 60]
    assert throttle.delay(free + 40, free) == throttle.MAX_DELAY
