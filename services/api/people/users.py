"""Accounts of people: email, display name, role, party; created by an admin or the CLI."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import Connection, insert, select, update

from schemas.db import users
from services.api.people import passwords, sessions
from services.api.tokens import PARTY_ROLES, Role, check_role
from services.errors import Conflict, NotFound

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def normalize_email(email: str) -> str:
    return email.strip().lower()


class UserIn(BaseModel):
    """A new person (``POST /v1/users``, ``viu user create``, the users page)."""

    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=254, examples=["anna.berg@connectcorp.example"])
    name: Name = Field(examples=["Anna Berg"])
    role: Role
    party: str | None = Field(
        default=None, max_length=200, validate_default=True, examples=["Connectcorp"]
    )
    password: str = Field(min_length=passwords.MIN_LENGTH, max_length=passwords.MAX_LENGTH)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = normalize_email(value)
        if not EMAIL_RE.match(value):
            raise ValueError("not an email address (name@example.com)")
        return value

    @field_validator("party")
    @classmethod
    def _party(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Checked with the input, before anything touches the database."""
        party = (value or "").strip() or None
        role = info.data.get("role")
        if role in PARTY_ROLES and party is None:
            raise ValueError(f"a {role} person needs a party")
        return party


@dataclass(frozen=True)
class User:
    id: int
    email: str
    name: str
    role: str
    party: str | None
    password_hash: str
    created_at: datetime
    created_by: str | None
    disabled_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> User:
        return cls(**{k: row._mapping[k] for k in cls.__dataclass_fields__})

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "party": self.party,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
        }


def create_user(conn: Connection, body: UserIn, by: str | None) -> User:
    """Create a person; the email is the sign-in name and unique (case-insensitive)."""
    check_role(body.role, body.party, "person")
    passwords.check_strength(body.password)
    if by_email(conn, body.email) is not None:
        raise Conflict(f"a person with email {body.email} exists", field="email")
    row = conn.execute(
        insert(users)
        .values(
            email=body.email,
            name=body.name,
            role=body.role,
            party=body.party,
            password_hash=passwords.hash_password(body.password),
            created_at=datetime.now(UTC),
            created_by=by,
        )
        .returning(users)
    ).one()
    return User.of(row)


def by_email(conn: Connection, email: str) -> User | None:
    row = conn.execute(select(users).where(users.c.email == normalize_email(email))).first()
    return None if row is None else User.of(row)


def get(conn: Connection, user_id: int) -> User:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"no person {user_id}")
    return User.of(row)


def listing(conn: Connection) -> list[User]:
    return [User.of(r) for r in conn.execute(select(users).order_by(users.c.email))]


def disable(conn: Connection, user_id: int) -> tuple[User, int]:
    """Disable a person and end their sessions at once; returns the sessions ended."""
    get(conn, user_id)
    conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.disabled_at.is_(None))
        .values(disabled_at=datetime.now(UTC))
    )
    return get(conn, user_id), sessions.revoke_all(conn, user_id)


def set_password(conn: Connection, user_id: int, password: str) -> None:
    conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(password_hash=passwords.hash_password(password))
    )
