"""API tokens: stored as SHA-256 hashes, carrying a role and (for parties) a party."""

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


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's role and party (None: not scoped to a party)."""

    token_id: int
    role: str
    party: str | None

    @property
    def subject(self) -> str:
        return f"token:{self.token_id}({self.role}{'@' + self.party if self.party else ''})"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check(role: str, party: str | None) -> None:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role")
    if role in PARTY_ROLES and not party:
        raise Invalid(f"a {role} token needs a party", field="party")


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
    _check(role, party)
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
