"""People are created by ``viu user create`` or the admin API; passwords only as hashes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tests.pages.conftest import sign_in
from tests.settlement.helpers import ok


def _viu(settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIU_DATABASE_URL": str(settings.database_url)}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "user", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_viu_user_create_makes_a_person_who_signs_in(
    api: Any, admin: dict[str, str], settings: Any, tmp_path: Path, db: Any
) -> None:
    secret = tmp_path / "password"
    secret.write_text("a long passphrase\n")
    done = _viu(
        settings,
        "create",
        "--email",
        "Anna.Berg@Connectcorp.example",
        "--role",
        "finance",
        "--party",
        "Connectcorp",
        "--password-file",
        str(secret),
    )
    assert done.returncode == 0, done.stderr
    assert "Anna Berg <anna.berg@connectcorp.example> (finance, Connectcorp)" in done.stdout
    assert "a long passphrase" not in done.stdout + done.stderr
    with db.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$") and "passphrase" not in stored
    assert sign_in(api, "anna.berg@connectcorp.example", "a long passphrase").status_code == 303
    entry = ok(api.get("/v1/audit?action=user.create", headers=admin))["items"][0]
    assert entry["actor"].startswith("cli:") and entry["details"]["role"] == "finance"
    listed = _viu(settings, "list")
    assert '"email": "anna.berg@connectcorp.example"' in listed.stdout
    assert "argon2" not in listed.stdout


def test_bad_input_is_one_line_and_creates_nobody(settings: Any, tmp_path: Path, db: Any) -> None:
    short = tmp_path / "short"
    short.write_text("short\n")
    good = tmp_path / "good"
    good.write_text("a long passphrase\n")
    cases = [
        (["--email", "not-an-email", "--role", "finance"], good, "--email: not an email address"),
        (["--email", "a@b.example", "--role", "finance"], short, "--password:"),
        (["--email", "a@b.example", "--role", "provider"], good, "a provider person needs a party"),
        (["--email", "a@b.example", "--role", "finance"], tmp_path / "missing", "cannot read"),
    ]
    for args, password_file, message in cases:
        done = _viu(settings, "create", *args, "--password-file", str(password_file))
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 0


def test_the_admin_api_creates_lists_and_refuses_duplicates(
    api: Any, admin: dict[str, str]
) -> None:
    body = {
        "email": "per@connectcorp.example",
        "name": "Per Holm",
        "role": "provider",
        "party": "Connectcorp",
        "password": "a long passphrase",
    }
    created = ok(api.post("/v1/users", json=body, headers=admin), 201)
    assert "password" not in str(created) and created["party"] == "Connectcorp"
    again = api.post("/v1/users", json={**body, "email": "PER@connectcorp.example"}, headers=admin)
    assert again.status_code == 409 and again.json()["field"] == "email"
    bad = api.post("/v1/users", json={**body, "email": "x", "password": "short"}, headers=admin)
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"email", "password"}
    assert [u["email"] for u in ok(api.get("/v1/users", headers=admin))] == [body["email"]]
