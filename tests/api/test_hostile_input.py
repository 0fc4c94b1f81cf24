"""Hostile input gets a clear 4xx problem, never a 500 or a stack trace."""

from __future__ import annotations

import collections

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


# --------------------------------------------------------------- out-of-range values

EXTREME_ZONES = {"H-EAST": "Pacific/Kiritimati", "H-WEST": "Pacific/Pago_Pago"}  # UTC+14, UTC-11


@pytest.fixture
def extreme_contracts(api, admin) -> None:  # type: ignore[no-untyped-def]
    from tests.proposals.conftest import contract
    from tests.settlement.helpers import ok

    for cid, tz in EXTREME_ZONES.items():
        body = contract(contract_id=cid, timezone=tz, devices=[cid.lower()])
        ok(api.post("/v1/contracts", json=body, headers=admin), 201)


def assert_problem(r, *statuses: int) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code in statuses, (r.request.method, str(r.request.url), r.status_code, r.text)
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/contracts/H-EAST/kpis?from=0001-01-01&to=9999-12-31", None),
        ("GET", "/v1/contracts/H-WEST/kpis?from=9999-12-01&to=9999-12-31", None),
        ("GET", "/v1/contracts/H-WEST/kpis?from=1000-01-01&to=9999-12-30", None),
        ("GET", "/v1/contracts/H-EAST/outlook?at=0001-01-01T00:00:00%2B14:00", None),
        ("GET", "/v1/contracts/H-WEST/outlook?at=9999-12-31T23:59:59-14:00", None),
        ("GET", f"/v1/audit?before={10**30}", None),
        (
            "POST",
            "/v1/annotations",
            {
                "device_id": "h-east",
                "from": "0001-01-01T00:00:00+14:00",
                "to": "0001-01-02T00:00:00Z",
                "cause": "planned",
                "note": "x",
            },
        ),
        (
            "POST",
            "/v1/contracts/H-EAST/simulate",
            {"from": "0001-01", "to": "9999-12", "terms": {}},
        ),
    ],
)
def test_out_of_range_values_are_4xx(api, admin, extreme_contracts, method, path, body) -> None:  # type: ignore[no-untyped-def]
    """`from=0001-01-01&to=9999-12-31` once raised OverflowError (500), and a wide span
    computed millions of day bounds before refusing; both answer 422 at once now."""
    r = api.request(method, path, json=body, headers=admin)
    assert_problem(r, 422)


def _extremes(schema: dict) -> list[str]:  # type: ignore[type-arg]
    options = schema.get("anyOf", [schema])
    values: list[str] = []
    for s in options:
        kind, fmt, pattern = s.get("type"), s.get("format"), s.get("pattern", "")
        if kind == "integer":
            values += ["-1", "0", str(2**63), str(10**30)]
        elif fmt == "date":
            values += ["0001-01-01", "9999-12-31"]
        elif fmt == "date-time":
            values += ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "99999999999"]
        elif "Q" in pattern:
            values += ["0001-Q1", "9999-Q4"]
        elif r"\d{3}-(0" in pattern or r"\d{4}-(0" in pattern:
            values += ["0001-01", "1000-01", "9999-12"]
        elif kind == "string" and "enum" not in s:
            values += ["x" * 5000]
    return values


def test_every_query_and_path_value_out_of_range_is_answered_below_500(  # type: ignore[no-untyped-def]
    settings, db, api, admin, extreme_contracts
) -> None:
    """Walks every route of the OpenAPI document: each parameter alone at its extremes."""
    from services.api.app import create_app

    spec = create_app(settings, db).openapi()
    valid = {
        "contract_id": "H-EAST",
        "period": "2026-10",
        "quarter": "2026-Q4",
        "device_id": "h-east",
    }
    tried = 0
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, op in operations.items():
            params = [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]
            base = {p["name"]: valid.get(p["name"], "1") for p in params if p["in"] == "path"}
            for p in params:
                for value in _extremes(p["schema"]):
                    path_values = dict(base)
                    query: dict[str, str] = {}
                    if p["in"] == "path":
                        path_values[p["name"]] = value
                    else:
                        query[p["name"]] = value
                    url = path.format(**path_values)
                    r = api.request(method.upper(), url, params=query, json={}, headers=admin)
                    assert r.status_code < 500, (method, url, query, r.status_code, r.text[:300])
                    tried += 1
    assert tried > 80


# --------------------------------------------------------------- the database goes away


def test_every_route_answers_503_while_the_database_is_down(settings, db, make_token) -> None:  # type: ignore[no-untyped-def]
    """The caller's token lookup used to raise OperationalError (500) before any route ran."""
    from urllib.parse import urlsplit

    from fastapi.testclient import TestClient

    from services import db as viu_db
    from services.api.app import create_app
    from tests.ingest.proxy import Proxy

    token = {"Authorization": f"Bearer {make_token('admin')}"}
    parts = urlsplit(settings.database_url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    url = settings.database_url.replace(f":{parts.port or 5432}/", f":{proxy.port}/")
    engine = viu_db.make_engine(url, settings)
    app = create_app(settings, engine)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/v1/contracts", headers=token).status_code == 200
            proxy.stop()
            spec = app.openapi()
            values = {
                "contract_id": "C-1",
                "period": "2026-10",
                "quarter": "2026-Q4",
                "device_id": "d-1",
                "token_id": "1",
                "dead_letter_id": "1",
                "proposal_id": "1",
            }
            routes = [
                (m.upper(), p.format_map(collections.defaultdict(lambda: "1", values)))
                for p, ops in spec["paths"].items()
                if p.startswith("/v1/")
                for m in ops
            ]
            assert len(routes) > 30
            for method, path in routes:
                r = client.request(method, path, headers=token, json={})
                assert r.status_code == 503, (method, path, r.status_code, r.text[:300])
                assert r.headers["content-type"] == "application/problem+json"
                assert r.headers["retry-after"].isdigit()
                assert "psycopg" not in r.text and "connection" not in r.text.lower()
            assert client.get("/readyz").status_code == 503
            proxy.start()  # the database is back: so is every route
            assert client.get("/v1/contracts", headers=token).status_code == 200
    finally:
        proxy.stop()
        engine.dispose()
