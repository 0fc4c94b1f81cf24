"""The README's examples are run, in order, against the real stack."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import REPO

BLOCK = re.compile(r"```http\n(.*?)```", re.S)


def readme_requests() -> list[tuple[str, str, object]]:
    out = []
    for block in BLOCK.findall((REPO / "README.md").read_text()):
        head, _, body = block.partition("\n")
        method, path = head.split()
        out.append((method, path, json.loads(body) if body.strip() else None))
    return out


def test_readme_has_the_two_setup_commands() -> None:
    text = (REPO / "README.md").read_text()
    assert "make run" in text and "make test" in text
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_readme_http_examples_all_succeed(api, admin) -> None:  # type: ignore[no-untyped-def]
    requests = readme_requests()
    assert len(requests) >= 8
    for method, path, body in requests:
        r = api.request(method, path, json=body, headers=admin)
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
