"""Bearer tokens: random, shown once, stored as a SHA-256 hash; roles ``admin`` and ``user``.

A token is 32 random bytes (``secrets.token_urlsafe``), so a plain SHA-256 is enough to store it: there
is nothing to guess that a slow password hash would protect. The web UI keeps the token in an HttpOnly,
SameSite=Strict cookie after sign-in; the API takes ``Authorization: Bearer TOKEN`` (or that cookie).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from genforge.app.serve.models import Token, now
from genforge.app.serve.settings import Limits
from genforge.core.errors import ConfigError

ROLES = ("admin", "user")
COOKIE = "genforge_token"
PREFIX = "gf_"
NAME = re.compile(r"^[\w .@-]{1,100}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class User:
    """Who is calling: the token's row id, name, role and effective limits."""

    id: int
    name: str
    role: str
    limits: Limits

    @property
    def admin(self) -> bool:
        return self.role == "admin"


def create_token(s: Session, name: str, role: str = "user", limits: dict[str, Any] | None = None) -> tuple[str, Token]:
    """A new token (returned once, in clear) and its row (holding only the hash)."""
    if role not in ROLES:
        raise ConfigError(f"--role must be one of {', '.join(ROLES)}, got '{role}'")
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError("--name must be 1 to 100 letters, digits, spaces or . _ @ - (it names who holds the token)")
    checked = Limits(**{**Limits().model_dump(), **(limits or {})})
    token = PREFIX + secrets.token_urlsafe(32)
    row = Token(name=name, role=role, hash=hash_token(token), prefix=token[:10], limits=checked.model_dump(),
                created_at=now())
    s.add(row)
    s.flush()
    return token, row


def user_for(s: Session, token: str | None, defaults: Limits) -> User | None:
    """The user a token belongs to, or None (unknown, revoked or missing)."""
    if not token:
        return None
    row = s.scalar(select(Token).where(Token.hash == hash_token(token), Token.revoked_at.is_(None)))
    if row is None:
        return None
    limits = Limits(**{**defaults.model_dump(), **(row.limits or {})})
    return User(row.id, row.name, row.role, limits)


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def has_admin(s: Session) -> bool:
    return s.scalar(select(Token.id).where(Token.role == "admin", Token.revoked_at.is_(None)).limit(1)) is not None
