"""Who is calling, and may they.

Callers present a signed bearer token (JWT, HS256) carrying their member id, role and
grid scope: the unit codes whose subtrees they may act in. Tokens are short-lived
(a shift), so a reassignment takes effect at the next token.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from typing import Iterable

import jwt

from shared.config import env_name, settings
from shared.errors import PermissionDenied, Unauthenticated

ISSUER = "gridbus"
AUDIENCE = "gridbus"

OFFICER = "officer"
DISPATCHER = "dispatcher"
ADMIN = "admin"
SERVICE = "service"  # another gridbus service, acting for the system
# A handling department (city management, environment, ...): member id is the department
# code, scope the grid subtrees it serves.
DEPARTMENT = "department"
# An organisation outside gridbus that subscribes to events: member id is the organisation's id,
# scope the subtrees it may subscribe to (services/subscriptions).
SUBSCRIBER = "subscriber"
ROLES = (OFFICER, DISPATCHER, ADMIN, SERVICE, DEPARTMENT, SUBSCRIBER)
# Anyone, unauthenticated, through a public HTTP endpoint: sees only what is published. Never in
# a token (not among ROLES); the public endpoints act as PUBLIC_READER.
PUBLIC = "public"


@dataclass(frozen=True)
class Principal:
    member_id: str
    role: str
    scope: tuple[str, ...]  # unit codes; the caller acts within their subtrees

    def covers(self, lineage: Iterable[str]) -> bool:
        """True when a unit with this lineage (ancestors and itself) lies in the caller's scope."""
        if self.role == SERVICE:
            return True
        return not set(self.scope).isdisjoint(lineage)


PUBLIC_READER = Principal("public", PUBLIC, ())


def mint_token(member_id: str, role: str, scope: Iterable[str], *, ttl_seconds: int | None = None,
               key: str | None = None, now: float | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    s = settings()
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": member_id, "role": role,
        "scope": sorted(set(scope)), "iat": issued,
        "exp": issued + (ttl_seconds if ttl_seconds is not None else s.token_ttl_seconds),
    }
    return jwt.encode(claims, key or s.token_key, algorithm="HS256")


def verify_token(token: str, *, key: str | None = None, now: float | None = None) -> Principal:
    principal, expires = _verified(token, key or _signing_key(os.environ.get(env_name("token_key"))))
    if expires <= (now if now is not None else time.time()):
        raise Unauthenticated("token expired: ask for a new one")
    return principal


@functools.lru_cache(maxsize=4)
def _signing_key(raw: str | None) -> str:
    """The token key as settings() reads it, once per value of its variable: reading every
    setting costs ~25 us, a tenth of a whole Locate call's work in the server."""
    return settings().token_key


# A phone sends the same token with every call of its shift: its signature is checked once, its
# expiry every time. Refused tokens raise, so they are never cached.
VERIFIED_TOKENS_CACHED = 10_000


@functools.lru_cache(maxsize=VERIFIED_TOKENS_CACHED)
def _verified(token: str, key: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("token expired: ask for a new one")
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {exc}")
    role, scope = claims.get("role"), claims.get("scope")
    if role not in ROLES or not isinstance(scope, list) or not all(isinstance(c, str) for c in scope):
        raise Unauthenticated("invalid token: role or scope malformed")
    return Principal(member_id=str(claims["sub"]), role=role, scope=tuple(scope)), float(claims["exp"])


def principal_from_header(value: str | None) -> Principal:
    """Parses `Bearer <token>`, the value of the `authorization` metadata / context key."""
    if not value:
        raise Unauthenticated("missing authorization: send 'authorization: Bearer <token>'")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization must be 'Bearer <token>'")
    return verify_token(token.strip())


def require_role(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise PermissionDenied(f"role {principal.role} may not do this (needs {' or '.join(roles)})")


def require_scope(principal: Principal, lineage: Iterable[str], what: str) -> None:
    lineage = list(lineage)
    if not principal.covers(lineage):
        raise PermissionDenied(f"{what} is outside your grids")
