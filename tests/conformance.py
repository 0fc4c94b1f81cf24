"""Every JSON 2xx response the suite sees must match what ``/openapi.json`` declares for it.

The ``api`` fixture wraps its client with ``conforming``: a response body that
drifts from its route's response model fails the test that produced it.
Validators are compiled once per (route, method, status) and app.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema_rs
from fastapi import FastAPI
from fastapi.testclient import TestClient

Key = tuple[str, str, str]


class Conformance:
    """The declared 2xx JSON schemas of an app, by path template, method and status."""

    def __init__(self, app: FastAPI) -> None:
        self.doc = app.openapi()
        self.paths = sorted(
            ((p, _template(p)) for p in self.doc["paths"]), key=lambda x: x[0].count("{")
        )
        self.validators: dict[Key, Any] = {}

    def route(self, path: str) -> str | None:
        return next((p for p, rx in self.paths if rx.match(path)), None)

    def validator(self, template: str, method: str, status: int) -> Any:
        key = (template, method, str(status))
        if key not in self.validators:
            op = self.doc["paths"][template].get(method, {})
            declared = op.get("responses", {}).get(str(status))
            schema = (declared or {}).get("content", {}).get("application/json", {}).get("schema")
            assert schema is not None, (
                f"{method.upper()} {template} answered {status} with JSON it does not declare"
            )
            root = {**schema, "components": self.doc.get("components", {})}
            self.validators[key] = jsonschema_rs.validator_for(root)
        return self.validators[key]

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        template = self.route(path)
        if template is None:  # pages, static files, metrics: not part of the API document
            return
        errors = list(self.validator(template, method.lower(), status).iter_errors(body))
        assert not errors, (
            f"{method.upper()} {path} ({template}) {status}: the body does not match its "
            f"declared response model: "
            + "; ".join(f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in errors[:5])
            + f"\nbody: {json.dumps(body)[:1000]}"
        )


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


_shared: list[Conformance] = []


def shared(app: FastAPI) -> Conformance:
    """One ``Conformance`` for the session: every app the suite builds has the same routes,
    and building the document takes seconds."""
    if not _shared:
        _shared.append(Conformance(app))
    return _shared[0]


def conforming(client: TestClient, app: FastAPI) -> TestClient:
    """``client`` whose every 2xx JSON response is checked against the API document."""
    request: Callable[..., Any] = client.request

    def checked(method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        response = request(method, url, *args, **kwargs)
        media = response.headers.get("content-type", "").split(";")[0].strip()
        if 200 <= response.status_code < 300 and media == "application/json" and response.content:
            shared(app).check(
                method, response.request.url.path, response.status_code, response.json()
            )
        return response

    client.request = checked  # type: ignore[method-assign]
    return client
