"""Passwords: Argon2id hashes (argon2-cffi's RFC 9106 defaults), never the password."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.errors import Invalid

MIN_LENGTH = 10
MAX_LENGTH = 1024
"""Long enough for a passphrase; short enough that hashing it is no denial of service."""


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise Invalid(f"a password needs at least {MIN_LENGTH} characters", field="password")
    if len(password) > MAX_LENGTH:
        raise Invalid(f"a password has at most {MAX_LENGTH} characters", field="password")
    if password != password.strip():
        raise Invalid("a password may not start or end with white space", field="password")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher().hash(password)


def verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password[: MAX_LENGTH + 1])
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _hasher().hash("viu: nobody has this password")


def burn_time(password: str) -> None:
    """Verify against a throwaway hash, so an unknown email costs as long as a known one
    (the answer's timing must not tell which addresses have accounts)."""
    verify(_dummy_hash(), password)
