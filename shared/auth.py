"""Who is calling, and may they.

Callers present a signed bearer token (a JWT signed with Ed25519, its key named by the `kid`
header) carrying their member id, role and grid scope: the unit codes whose subtrees they may
act in. A member's access token from sign-in lives minutes (services/grid/signin.py renews it
with the refresh token, from the member's current assignments); an operator's (`gridbus token
mint`) lives a shift. Either is refused once its member's sessions are revoked
(shared/revocation.py).
"""
from __future__ import annotations

import base64
import functools
import os
import time
from dataclasses import dataclass
from typing import Iterable, Mapping

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared import revocation
from shared.config import INSECURE_DEV_TOKEN_KEY, _ed25519_key, _ed25519_keys, env_name, settings
from shared.errors import PermissionDenied, Unauthenticated

ISSUER = "gridbus"
AUDIENCE = "gridbus"
ALGORITHM = "EdDSA"

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


@dataclass(frozen=True, eq=False)  # hashed by identity: keys() makes one per configuration
class Keys:
    """The key that signs (its id and private key) and every public key that verifies, by id."""
    key_id: str
    private: Ed25519PrivateKey
    public: Mapping[str, Ed25519PublicKey]


def public_key_text(private_text: str) -> str:
    """`key-id:base64` of the public half of a `key-id:base64` Ed25519 seed."""
    key_id, seed = _ed25519_key(private_text)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"{key_id}:{base64.b64encode(public).decode()}"


def generate_key(key_id: str) -> str:
    """A new `key-id:base64` Ed25519 seed (`gridbus token keygen`)."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    text = f"{key_id}:{base64.b64encode(seed).decode()}"
    _ed25519_key(text)  # the key id is one settings() accepts
    return text


@functools.lru_cache(maxsize=8)
def keys(token_key: str, verify_keys: str = "") -> Keys:
    """The key set of GRIDBUS_TOKEN_KEY and GRIDBUS_TOKEN_VERIFY_KEYS's values."""
    key_id, seed = _ed25519_key(token_key)
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = {kid: Ed25519PublicKey.from_public_bytes(raw) for kid, raw in _ed25519_keys(verify_keys).items()}
    public[key_id] = private.public_key()
    return Keys(key_id, private, public)


_TOKEN_KEY_VARIABLE = env_name("token_key")
_VERIFY_KEYS_VARIABLE = env_name("token_verify_keys")


def _current_keys() -> Keys:
    """This process's keys, from the two variables alone, parsed once per value: settings() reads
    the whole environment (~15 us, four times the rest of a token's check), and tokens are checked
    on every call. Unset: the development key, as settings() has it."""
    return keys(os.environ.get(_TOKEN_KEY_VARIABLE, INSECURE_DEV_TOKEN_KEY), os.environ.get(_VERIFY_KEYS_VARIABLE, ""))


def _keys_of(key: str | Keys | None) -> Keys:
    if key is None:
        return _current_keys()
    return key if isinstance(key, Keys) else keys(key)


def mint_token(member_id: str, role: str, scope: Iterable[str], *, ttl_seconds: int | None = None,
               key: str | Keys | None = None, now: float | None = None, session_id: str | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    k = _keys_of(key)
    now = now if now is not None else time.time()
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": member_id, "role": role, "scope": sorted(set(scope)),
        # In milliseconds, never before now: a revocation refuses exactly the tokens issued before it.
        "iat": revocation.stamp(now),
        "exp": int(now) + (ttl_seconds if ttl_seconds is not None else settings().token_ttl_seconds),
    }
    if session_id:
        claims["sid"] = session_id
    return jwt.encode(claims, k.private, algorithm=ALGORITHM, headers={"kid": k.key_id})


@dataclass(frozen=True)
class Verified:
    principal: Principal
    issued_at: float
    expires_at: float
    session_id: str | None


def verify_token(token: str, *, key: str | Keys | None = None, now: float | None = None) -> Principal:
    return verify(token, key=key, now=now).principal


def verify(token: str, *, key: str | Keys | None = None, now: float | None = None) -> Verified:
    """The token's signature (cached), then its expiry and its member's revocation (every call)."""
    verified = _verified(token, _keys_of(key))
    if verified.expires_at <= (now if now is not None else time.time()):
        raise Unauthenticated("token expired: ask for a new one")
    if revocation.revoked(verified.principal.member_id, verified.issued_at):
        raise Unauthenticated("this member's sessions were revoked: sign in again")
    return verified


# A phone sends the same token with every call of its shift: its signature is checked once, its
# expiry and revocation every time. Refused tokens raise, so they are never cached.
VERIFIED_TOKENS_CACHED = 10_000


@functools.lru_cache(maxsize=VERIFIED_TOKENS_CACHED)
def _verified(token: str, k: Keys) -> Verified:
    try:
        key_id = jwt.get_unverified_header(token).get("kid")
        public = k.public.get(key_id) if isinstance(key_id, str) else None
        if public is None:
            raise Unauthenticated(f"invalid token: signed with a key this service does not accept ({key_id!r})")
        claims = jwt.decode(token, public, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("token expired: ask for a new one")
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {exc}")
    role, scope, sid = claims.get("role"), claims.get("scope"), claims.get("sid")
    if role not in ROLES or not isinstance(scope, list) or not all(isinstance(c, str) for c in scope):
        raise Unauthenticated("invalid token: role or scope malformed")
    return Verified(Principal(member_id=str(claims["sub"]), role=role, scope=tuple(scope)), float(claims["iat"]),
                    float(claims["exp"]), sid if isinstance(sid, str) else None)


def bearer(value: str | None) -> str:
    """The token of `Bearer <token>`, the value of the `authorization` metadata / context key."""
    if not value:
        raise Unauthenticated("missing authorization: send 'authorization: Bearer <token>'")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization must be 'Bearer <token>'")
    return token.strip()


def principal_from_header(value: str | None) -> Principal:
    """Parses `Bearer <token>`, the value of the `authorization` metadata / context key."""
    return verify_token(bearer(value))


def require_role(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise PermissionDenied(f"role {principal.role} may not do this (needs {' or '.join(roles)})")


def require_scope(principal: Principal, lineage: Iterable[str], what: str) -> None:
    lineage = list(lineage)
    if not principal.covers(lineage):
        raise PermissionDenied(f"{what} is outside your grids")
