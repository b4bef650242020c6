"""How a member signs in to the console and to the officer's app: their phone number or user name
and password, through grid's SignIn. FIELDS tells the pages which fields to ask for; sign_in turns
what was typed into the member's access token, refresh token and who they are (sign_in_officer:
the same for the officer's app); refresh renews them before the access token lapses.

An operator's minted token (`gridbus token mint --member ID`, sent as `token` instead) is still
taken, for scripts and benchmarks: that session ends with the token, as it cannot be refreshed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from shared import auth
from shared.auth import Principal
from shared.errors import InvalidArgument, PermissionDenied

# Who works at the console: dispatchers (a district or street; a shift leader the city) and admins.
CONSOLE_ROLES = (auth.DISPATCHER, auth.ADMIN)
OFFICER_ROLES = (auth.OFFICER,)
# The form the pages show: each field's name (its label is the page's `signin.field.<name>`) and
# what the browser may fill in.
FIELDS = ({"name": "login", "autocomplete": "username"},
          {"name": "password", "secret": True, "autocomplete": "current-password"})
MAX_FIELD = 256


@dataclass(frozen=True)
class SignedIn:
    token: str                  # the access token every call to the services carries
    principal: Principal
    expires_at: float           # epoch seconds: the session's end (the refresh token's, or the token's)
    issued_at: float = 0.0      # the access token's: refused once its member's sessions are revoked
    refresh_token: str | None = None
    access_expires_at: float | None = None  # when the access token lapses (None: at expires_at)


def _refuse_role(principal: Principal, roles: tuple[str, ...], refusal: str) -> None:
    if principal.role not in roles:
        raise PermissionDenied(f"{refusal}, not a {principal.role}")
    if not principal.scope:
        raise PermissionDenied("this member is assigned to no unit yet")


def from_answer(answer) -> SignedIn:
    """SignedIn from grid's SignInResponse (SignIn or Refresh)."""
    verified = auth.verify(answer.access_token)
    return SignedIn(answer.access_token, verified.principal, float(answer.refresh_expires_at.seconds),
                    verified.issued_at, answer.refresh_token, float(answer.access_expires_at.seconds))


async def sign_in_officer(svc, form: Mapping[str, str]) -> SignedIn:
    """The officer's app: grid officers only."""
    return await sign_in(svc, form, OFFICER_ROLES, "the officer's app is for grid officers")


async def sign_in(svc, form: Mapping[str, str], roles: tuple[str, ...] = CONSOLE_ROLES,
                  refusal: str = "the console is for dispatchers and admins") -> SignedIn:
    if form.get("token"):
        return with_token(form, roles, refusal)
    login, password = str(form.get("login") or "").strip(), str(form.get("password") or "")
    if not login or not password:
        raise InvalidArgument("enter your user name or phone number, and your password")
    if len(login) > MAX_FIELD or len(password) > MAX_FIELD:
        raise InvalidArgument(f"a user name, phone number or password has at most {MAX_FIELD} characters")
    signed = from_answer(await svc.sign_in(login, password))
    try:
        _refuse_role(signed.principal, roles, refusal)
    except PermissionDenied:
        await svc.sign_out(signed.refresh_token)
        raise
    return signed


def with_token(form: Mapping[str, str], roles: tuple[str, ...], refusal: str) -> SignedIn:
    """An operator's minted token, pasted."""
    token = str(form.get("token") or "").strip()
    if token.lower().startswith("bearer "):
        token = token[len("bearer "):].strip()
    if not token:
        raise InvalidArgument("paste the member's token (gridbus token mint --member ID)")
    verified = auth.verify(token)
    _refuse_role(verified.principal, roles, refusal)
    return SignedIn(token, verified.principal, verified.expires_at, verified.issued_at)
