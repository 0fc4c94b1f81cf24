"""The people of ``viu demo``: someone from each side signs in and sees the pages.

A provider person and a finance person of Connectcorp and a customer person
of MineCo (the parties of the first demo contract). Their passwords are
random, kept in ``$VIU_DATA_DIR/demo-people`` (mode 0600) so that a second
run hands out the same ones, and printed by the demo: these are demonstration
accounts on a demonstration database, never a way to create real people
(that is ``viu user create``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from schemas.periods import Period
from services.api.people import passwords, users
from services.config import Settings

FILE = "demo-people"


@dataclass(frozen=True)
class DemoPerson:
    email: str
    name: str
    role: str
    party: str


PEOPLE = (
    DemoPerson("per.holm@connectcorp.example", "Per Holm", "provider", "Connectcorp"),
    DemoPerson("maria.lind@mineco.example", "Maria Lind", "customer", "MineCo"),
    DemoPerson("anna.berg@connectcorp.example", "Anna Berg", "finance", "Connectcorp"),
)


def ensure_people(engine: Engine, settings: Settings) -> tuple[dict[str, str], Path]:
    """Each demo person exists and has the password in the file; returns email → password."""
    path = Path(settings.data_dir) / FILE
    saved: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    with engine.begin() as conn:
        for p in PEOPLE:
            password = saved.get(p.email) or secrets.token_urlsafe(12)
            saved[p.email] = password
            user = users.by_email(conn, p.email)
            if user is None:
                body = users.UserIn(
                    email=p.email, name=p.name, role=p.role, party=p.party, password=password
                )  # type: ignore[arg-type]
                users.create_user(conn, body, "viu demo")
            elif not passwords.verify(user.password_hash, password):
                users.set_password(conn, user.id, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(saved, indent=1) + "\n")
    return saved, path


def page_urls(base: str, contract_id: str, periods: Sequence[Period]) -> list[str]:
    """What a signed-in person opens first."""
    last = periods[-1]
    return [
        f"{base}/contracts",
        f"{base}/contracts/{contract_id}",
        f"{base}/statements?period={last}",
        f"{base}/contracts/{contract_id}/statements/{periods[-2] if len(periods) > 1 else last}",
        f"{base}/contracts/{contract_id}/statements/{last}",
        f"{base}/contracts/{contract_id}/reviews/{last.quarter}",
        f"{base}/contracts/{contract_id}/proposals",
        f"{base}/reviews",
    ]


def summary(
    base: str, contract_id: str, periods: Sequence[Period], secrets_: dict[str, str], path: Path
) -> list[str]:
    lines = [f"people (sign in at {base}/login; passwords also kept in {path}):"]
    for p in PEOPLE:
        lines.append(f"  {p.name} ({p.role}, {p.party}): {p.email} / {secrets_[p.email]}")
    lines.append("pages to open after signing in:")
    lines += [f"  {url}" for url in page_urls(base, contract_id, periods)]
    return lines
