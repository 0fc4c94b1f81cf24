"""Hostile input gets a clear 4xx problem, never a 500 or a stack trace."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/v1/contracts/%20bad%00/statements/2026-01", None, 422),
        ("GET", "/v1/contracts/LC-1/statements/2026-13", None, 422),
        ("GET", "/v1/contracts/" + "a" * 300, None, 422),
        ("GET", "/v1/settlements?period=abc", None, 422),
        ("GET", "/v1/contracts?limit=100000", None, 422),
        ("POST", "/v1/settlements/run", b'{"period": "2026-99"}', 422),
        ("POST", "/v1/contracts", b'{"contract_id": NaN}', 422),
        ("POST", "/v1/contracts", b"[1, 2", 422),
        ("POST", "/v1/contracts", b"\xff\xfe not utf-8", 422),
        ("POST", "/v1/contracts", b'"just a string"', 422),
        ("GET", "/v1/contracts/NOPE", None, 404),
    ],
)
def test_bad_requests_are_4xx_problems(api, admin, method, path, body, status) -> None:  # type: ignore[no-untyped-def]
    headers = {**admin, "Content-Type": "application/json"}
    r = api.request(method, path, content=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    text = r.text.lower()
    assert "traceback" not in text and "select " not in text and "psycopg" not in text
