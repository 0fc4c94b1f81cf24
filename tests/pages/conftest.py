"""Fixtures for the page tests: people with passwords, a browser-like client that signs in."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from services.api.people.users import UserIn, create_user
from services.api.people.web import SESSION_COOKIE

PASSWORD = "correct horse battery"
OWN, CUSTOMER, OTHER = "Connectcorp", "MineCo", "Othercorp"


def hidden(html: str, name: str) -> str:
    """The value of a hidden form field, as a browser would send it back."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name!r} in the page"
    return match.group(1)


@pytest.fixture
def person(db: Engine) -> Callable[..., str]:
    """Create a person; returns their email (the password is ``PASSWORD``)."""

    def make(role: str, party: str | None = None, name: str | None = None) -> str:
        email = f"{(name or role).lower().replace(' ', '.')}@{(party or 'viu').lower()}.example"
        with db.begin() as conn:
            create_user(
                conn,
                UserIn(
                    email=email,
                    name=name or role.capitalize(),
                    role=role,  # type: ignore[arg-type]
                    party=party,
                    password=PASSWORD,
                ),
                "test",
            )
        return email

    return make


def sign_in(client: Any, email: str, password: str = PASSWORD, next_: str | None = None) -> Any:
    """Open /login, post the form with its CSRF token; returns the response (not followed).
    Any earlier session of this client is forgotten first, as after closing a browser."""
    client.cookies.delete(SESSION_COOKIE)
    form = client.get("/login" + (f"?next={next_}" if next_ else ""))
    assert form.status_code == 200, form.text
    return client.post(
        "/login",
        data={
            "email": email,
            "password": password,
            "csrf": hidden(form.text, "csrf"),
            "next": hidden(form.text, "next"),
        },
        follow_redirects=False,
    )


@pytest.fixture
def browser(api: Any) -> Any:
    """The test client, used like a browser: it keeps cookies between requests."""
    api.cookies.clear()
    return api


@pytest.fixture
def signed_in(browser: Any, person: Callable[..., str]) -> Callable[..., Any]:
    """Sign a new person in; returns the client carrying their session."""

    def as_(role: str, party: str | None = None, name: str | None = None) -> Any:
        browser.cookies.clear()
        r = sign_in(browser, person(role, party, name))
        assert r.status_code == 303, r.text
        return browser

    return as_
