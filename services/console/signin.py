"""How a member signs in to the console and to the officer's app: the one module to change when
the services offer a sign-in with passwords (a SignIn RPC): FIELDS tells the pages which fields
to ask for, and sign_in turns what was typed into the member's bearer token and who they are
(sign_in_officer: the same for the officer's app).

Until then an operator pastes the member's token (`gridbus token mint --member ID`): it is
verified here with the services' own key, and the services check it again on every call."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import jwt

from shared import auth
from shared.auth import Principal
from shared.errors import InvalidArgument, PermissionDenied

# Who works at the console: dispatchers (a district or street; a shift leader the city) and admins.
CONSOLE_ROLES = (auth.DISPATCHER, auth.ADMIN)
OFFICER_ROLES = (auth.OFFICER,)
# The form the page shows: each field's name (its label is the page's `signin.field.<name>`).
FIELDS = ({"name": "token", "secret": True, "multiline": True},)


@dataclass(frozen=True)
class SignedIn:
    token: str
    principal: Principal
    expires_at: float  # epoch seconds: the session ends with the token
    issued_at: float = 0.0


def sign_in_officer(form: Mapping[str, str]) -> SignedIn:
    """The officer's app: grid officers only."""
    return sign_in(form, OFFICER_ROLES, "the officer's app is for grid officers")


def sign_in(form: Mapping[str, str], roles: tuple[str, ...] = CONSOLE_ROLES,
            refusal: str = "the console is for dispatchers and admins") -> SignedIn:
    token = str(form.get("token") or "").strip()
    if token.lower().startswith("bearer "):
        token = token[len("bearer "):].strip()
    if not token:
        raise InvalidArgument("paste the member's token (gridbus token mint --member ID)")
    verified = auth.verify(token)
    principal = verified.principal
    if principal.role not in roles:
        raise PermissionDenied(f"{refusal}, not a {principal.role}")
    if not principal.scope:
        raise PermissionDenied("this member is assigned to no unit yet")
    # Already verified above; read its expiry.
    expires_at = float(jwt.decode(token, options={"verify_signature": False})["exp"])
    return SignedIn(token, principal, expires_at, verified.issued_at)
