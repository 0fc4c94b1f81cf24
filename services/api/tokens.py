"""API tokens: stored as SHA-256 hashes, carrying a role and (for parties) a party.

Tokens are for machines; people sign in with a password and get a session
(``services.api.people``). Both end up as the same ``Principal``, so every
route applies one set of role and party rules.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import Connection, insert, select, update

from schemas.db import api_tokens
from services.errors import Invalid, NotFound

Role = Literal["admin", "provider", "customer", "finance", "auditor"]
ROLES: tuple[str, ...] = get_args(Role)
PARTY_ROLES = frozenset({"provider", "customer"})
TOKEN_PREFIX = "viu_"


SUBJECT_MAX = 200
"""Subjects are stored in ``varchar(200)`` columns (issued_by, audit actor, ...)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role and party (None: not scoped to a party), and either the
    token or the person (with their session) behind the request."""

    token_id: int | None
    role: str
    party: str | None
    user_id: int | None = None
    name: str | None = None
    email: str | None = None
    session_id: int | None = None

    @property
    def is_person(self) -> bool:
        return self.user_id is not None

    @property
    def subject(self) -> str:
        """How records name the caller: "Anna Berg (finance, Connectcorp)" for a person,
        "token:3(provider@Connectcorp)" for a machine."""
        if self.name is not None:
            scope = f"{self.role}, {self.party}" if self.party else self.role
            return f"{self.name} ({scope})"[:SUBJECT_MAX]
        party = "@" + self.party if self.party else ""
        return f"token:{self.token_id}({self.role}{party})"[:SUBJECT_MAX]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_role(role: str, party: str | None, what: str = "token") -> None:
    """The same rule for tokens and people: providers and customers act for a party."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role")
    if role in PARTY_ROLES and not party:
        raise Invalid(f"a {role} {what} needs a party", field="party")


def create_token(
    conn: Connection,
    role: str,
    party: str | None = None,
    *,
    label: str | None = None,
    expires_at: datetime | None = None,
    token: str | None = None,
) -> tuple[int, str]:
    """Create a token; returns (id, plain token). The plain token is never stored."""
    check_role(role, party)
    plain = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(
        insert(api_tokens)
        .values(
            token_hash=hash_token(plain),
            role=role,
            party=party or None,
            label=label,
            created_at=datetime.now(UTC),
            expires_at=expires_at,
        )
        .returning(api_tokens.c.id)
    ).scalar_one()
    return token_id, plain


def ensure_bootstrap(conn: Connection, plain: str) -> int:
    """Make the bootstrap admin token exist (idempotent across restarts and replicas)."""
    row = conn.execute(
        select(api_tokens.c.id).where(api_tokens.c.token_hash == hash_token(plain))
    ).first()
    if row is not None:
        return int(row.id)
    token_id, _ = create_token(conn, "admin", label="bootstrap", token=plain)
    return token_id


def authenticate(conn: Connection, plain: str) -> Principal | None:
    row = conn.execute(
        select(api_tokens).where(api_tokens.c.token_hash == hash_token(plain))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
        return None
    return Principal(token_id=row.id, role=row.role, party=row.party)


def revoke_token(conn: Connection, token_id: int) -> None:
    done = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    ).rowcount
    if not done:
        raise NotFound(f"no active token {token_id}")


def list_tokens(conn: Connection) -> list[dict[str, object]]:
    rows = conn.execute(select(api_tokens).order_by(api_tokens.c.id)).mappings()
    return [{k: v for k, v in r.items() if k != "token_hash"} for r in rows]
