"""Schemathesis against the OpenAPI schema: no 5xx on generated input, and every
answer is one the schema documents (bounded examples per operation, so CI stays fast).

The operations are driven from one test (schemathesis' pytest fixture loader does
not work with this pytest), each with its own Hypothesis run; every failure is
collected and reported together.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from services.api.app import create_app
from tests.settlement.helpers import ok
from tests.settlement.test_lifecycle import CONTRACT

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 8


def _exercise(operation: Any, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def test_generated_requests_get_documented_answers_and_never_a_5xx(
    settings, db, api, admin
) -> None:  # type: ignore[no-untyped-def]
    ok(api.post("/v1/contracts", json=CONTRACT, headers=admin), 201)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings, db))
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        try:
            _exercise(operation, admin)
        except BaseException as exc:  # schemathesis raises exception groups; collect all
            failures[operation.label] = str(exc)[:1500]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
