"""The README's examples are run, in order, against the real stack."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import REPO

BLOCK = re.compile(r"```http\n(.*?)```", re.S)
HEADER = re.compile(r"^([A-Za-z-]+): (.*)$")
PARTY_TOKENS = {
    "$PROVIDER_TOKEN": ("provider", "Connectcorp"),
    "$CUSTOMER_TOKEN": ("customer", "MineCo"),
}
"""Tokens README examples may name: the example contract's own parties."""


def readme_requests() -> list[tuple[str, str, dict[str, str], object]]:
    """Each example: method, path, its header lines (if any) and its JSON body."""
    out = []
    for block in BLOCK.findall((REPO / "README.md").read_text()):
        head, *lines = block.split("\n")
        method, path = head.split()
        headers = {}
        while lines and (match := HEADER.match(lines[0])):
            headers[match[1]] = match[2]
            lines.pop(0)
        body = "\n".join(lines)
        out.append((method, path, headers, json.loads(body) if body.strip() else None))
    return out


def test_readme_has_the_two_setup_commands() -> None:
    text = (REPO / "README.md").read_text()
    assert "make run" in text and "make test" in text
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_readme_http_examples_all_succeed(api, admin, make_token) -> None:  # type: ignore[no-untyped-def]
    requests = readme_requests()
    assert len(requests) >= 8
    tokens = {name: make_token(role, party) for name, (role, party) in PARTY_TOKENS.items()}
    for method, path, headers, body in requests:
        sent = {k: v for k, v in headers.items()}
        for name, token in tokens.items():
            sent = {k: v.replace(name, token) for k, v in sent.items()}
        r = api.request(method, path, json=body, headers={**admin, **sent})
        assert r.status_code < 300, (method, path, r.status_code, r.text[:500])
    statement = api.get("/v1/contracts/ACME-CRUSH-01/statements/2026-10", headers=admin).json()
    assert statement["status"] == "issued"
    assert statement["lines"][0] == {
        "kind": "fixed_fee",
        "amount": "12000.00",
        "explanation": statement["lines"][0]["explanation"],
    }


def test_readme_cli_commands_exist() -> None:
    text = (REPO / "README.md").read_text()
    for cmd in re.findall(r"^\| `viu ([a-z]+)", text, re.M):
        proc = subprocess.run(
            [sys.executable, "-m", "services.cli", cmd, "--help"], capture_output=True, timeout=60
        )
        assert proc.returncode == 0, cmd
