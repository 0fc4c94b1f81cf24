"""The API document tells a client what every route answers (issue 15, item 5).

Every operation documents a 2xx response: a JSON body with a typed schema (an
object with named properties, or a list of such), a non-JSON media type (HTML,
CSV), or no body (204). Route modules hold no SQL: repositories do. The
conformance of actual bodies to these schemas is checked on every response the
suite sees (``tests/conformance.py``, wrapped around the ``api`` fixture).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine

from services.api.app import create_app
from services.config import load_settings
from tests.conformance import Conformance

ROUTES = Path(__file__).resolve().parents[2] / "services" / "api" / "routes"
SQL = re.compile(r"\btext\(|\bselect\(|\.execute\(|\bschemas\.db\b|\bsqlalchemy\.sql\b")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    """The app as documented; its engine never connects (the document needs no database)."""
    engine = create_engine("postgresql+psycopg://viu@127.0.0.1:1/none")
    return create_app(load_settings(database_url="postgresql://viu@127.0.0.1:1/none"), engine)


@pytest.fixture(scope="module")
def doc(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def untyped(doc: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """Why ``schema`` says nothing about a JSON body (``None``: it is typed)."""
    schema = _resolve(doc, schema)
    if schema.get("type") == "array":
        return untyped(doc, schema.get("items", {})) if schema.get("items") else "a bare array"
    if "anyOf" in schema or "oneOf" in schema:
        reasons = [untyped(doc, s) for s in schema.get("anyOf", schema.get("oneOf", []))]
        return next((r for r in reasons if r), None)
    if schema.get("type") == "object" and schema.get("properties"):
        return None
    if schema.get("type") in ("string", "integer", "number", "boolean"):
        return None
    return "an object without named properties (dict[str, Any])"


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def test_every_operation_documents_a_typed_success_response(doc: dict[str, Any]) -> None:
    problems = []
    for path, method, op in operations(doc):
        success = {c: r for c, r in op["responses"].items() if c.startswith("2")}
        if not success:
            problems.append(f"{method.upper()} {path}: no 2xx response")
        for code, response in success.items():
            content = response.get("content", {})
            if not content and code != "204":
                problems.append(f"{method.upper()} {path} {code}: no body documented")
            for media, body in content.items():
                if media != "application/json":
                    continue
                why = untyped(doc, body.get("schema", {}))
                if why:
                    problems.append(f"{method.upper()} {path} {code}: {why}")
    assert not problems, "\n".join(problems)


def test_the_document_covers_every_api_route(doc: dict[str, Any]) -> None:
    """The check above is not vacuous: the document holds the routes of spec §6."""
    paths = set(doc["paths"])
    for path in (
        "/v1/contracts",
        "/v1/contracts/{contract_id}/statements/{period}",
        "/v1/settlements",
        "/v1/ingest/stats",
        "/v1/contracts/{contract_id}/reviews/{quarter}",
        "/v1/proposals/{proposal_id}",
    ):
        assert path in paths
    assert len(operations(doc)) >= 50


def test_alternative_representations_are_documented(doc: dict[str, Any]) -> None:
    def media(path: str) -> set[str]:
        return set(doc["paths"][path]["get"]["responses"]["200"]["content"])

    assert media("/v1/settlements") == {"application/json", "text/csv"}
    assert media("/v1/contracts/{contract_id}/statements/{period}") == {
        "application/json",
        "text/html",
    }
    assert media("/v1/contracts/{contract_id}/reviews/{quarter}") == {
        "application/json",
        "text/html",
    }


def test_untyped_detection_can_fail(doc: dict[str, Any]) -> None:
    assert untyped(doc, {"type": "object", "additionalProperties": True}) is not None
    assert untyped(doc, {"type": "array", "items": {"type": "object"}}) is not None
    assert untyped(doc, {"$ref": "#/components/schemas/StatementOut"}) is None


def test_money_is_a_decimal_string_in_the_document(doc: dict[str, Any]) -> None:
    statement = doc["components"]["schemas"]["StatementOut"]["properties"]
    assert statement["net"]["type"] == "string"
    line = doc["components"]["schemas"]["LineOut"]["properties"]
    assert line["amount"]["type"] == "string"


def test_a_drifting_body_fails_conformance(app: FastAPI) -> None:
    """The check wrapped around the suite's client rejects a body its model does not allow."""
    check = Conformance(app).check
    check("GET", "/v1/ingest/stats", 200, _stats(offline=3))  # counters may grow
    with pytest.raises(AssertionError, match="does not match"):
        check("GET", "/v1/ingest/stats", 200, {"since_start": _counts(), "total": {}})
    with pytest.raises(AssertionError, match="does not match"):
        check("GET", "/v1/users", 200, [{"id": "1", "email": "a@b"}])
    with pytest.raises(AssertionError, match="declare"):
        check("GET", "/v1/users", 299, [])


def _counts(**extra: int) -> dict[str, int]:
    names = ("received", "stored", "duplicates", "corrections", "dead_lettered")
    return {**dict.fromkeys(names, 0), **extra}


def _stats(offline: int) -> dict[str, Any]:
    return {"since_start": _counts(offline=offline), "total": _counts()}


def sql_in_routes(root: Path = ROUTES) -> list[str]:
    return [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(root.glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if SQL.search(line)
    ]


def test_route_modules_hold_no_sql() -> None:
    assert not sql_in_routes(), "SQL belongs in a repository:\n" + "\n".join(sql_in_routes())


def test_the_sql_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "leaky.py").write_text(
        "rows = conn.execute(select(samples).where(x))\nq = text('SELECT 1')\n"
    )
    (tmp_path / "clean.py").write_text("rows = repo.listing(conn)\n")
    assert [line.split(":")[0] for line in sql_in_routes(tmp_path)] == ["leaky.py", "leaky.py"]


def test_a_closed_body_documents_no_other_key_yet_passes_one_through() -> None:
    # The document (and so the suite's conformance check) refuses an unknown
    # key; a running viu answers with it instead of a 500.
    from services.api.schemas.base import Out

    class Body(Out):
        a: int

    assert Body.model_json_schema()["additionalProperties"] is False
    assert Body.model_validate({"a": 1, "b": 2}).model_dump() == {"a": 1, "b": 2}
