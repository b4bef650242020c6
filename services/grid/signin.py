"""Members sign in: a phone number or user name and a password give a short-lived access token
and a refresh token; the refresh token renews the access token (and is replaced: one use each),
sign-out and revocation end it. Grid holds the credentials because it holds the members.

Every operation writes what it decided (a failure counted, a family revoked) before it refuses,
so a refusal is never rolled back."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.grid import signin_rules as rules, store
from shared import auth, revocation, units
from shared.auth import Principal
from shared.config import settings
from shared.db import session_scope
from shared.errors import AlreadyExists, DomainError, PermissionDenied, Unauthenticated
from shared.ids import parse_uuid
from shared.outbox import record_event

SCHEMA = store.SCHEMA
# Members who sign in themselves; departments and services get operators' tokens.
SIGNIN_ROLES = (auth.OFFICER, auth.DISPATCHER, auth.ADMIN)


@dataclass(frozen=True)
class Tokens:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime  # the session's end: refreshing never moves it
    member_id: str
    role: str
    scope: tuple[str, ...]


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- operators ----------------------------------------------------------------------------------

def set_password(caller: Principal, member_id: str, password: str, username: str | None = None) -> None:
    """Sets a member's password (and user name); ends their sessions. Operators (the CLI) and admins."""
    auth.require_role(caller, auth.SERVICE, auth.ADMIN)
    mid = parse_uuid(member_id, "member id")
    password_hash = rules.hash_password(password)
    name = rules.check_username(username) if username else None
    with session_scope() as session:
        member = store.get_member(session, mid, for_update=True)
        if caller.role == auth.ADMIN:
            auth.require_scope(caller, [c for a in member.assignments for c in units.lineage(a.unit_code)],
                               f"member {mid}")
        if name is not None:
            taken = session.scalar(select(store.Credential.member_id).where(
                store.Credential.username == name, store.Credential.member_id != mid))
            if taken is not None:
                raise AlreadyExists(f"the user name {name} is taken")
        values = {"member_id": mid, "password_hash": password_hash, "updated_at": _now()}
        if name is not None:
            values["username"] = name
        stmt = insert(store.Credential).values(**values)
        session.execute(stmt.on_conflict_do_update(index_elements=[store.Credential.member_id],
                                                   set_={k: v for k, v in values.items() if k != "member_id"}))
        session.execute(update(store.SignInFailures).where(store.SignInFailures.login_key == f"member:{mid}")
                        .values(failures=0, locked_until=None))
        revoke_sessions(session, mid, "password set")


# --- members ------------------------------------------------------------------------------------

def _candidates(session: Session, login: rules.Login) -> list[tuple[store.Member, store.Credential]]:
    stmt = select(store.Member, store.Credential).join(store.Credential, store.Credential.member_id == store.Member.id)
    if login.kind == "phone":
        stmt = stmt.where(store.Member.phone == login.value)
    else:
        stmt = stmt.where(store.Credential.username == login.value)
    return list(session.execute(stmt.limit(5)).tuples())


def _failures(session: Session, key: str) -> store.SignInFailures | None:
    return session.scalars(select(store.SignInFailures).where(store.SignInFailures.login_key == key)
                           .with_for_update()).first()


def sign_in(login: str, password: str) -> Tokens:
    """Tokens for the member this login and password name. Unknown login and wrong password are
    the same refusal, counted alike; signin_max_failures in a row lock the login for
    signin_lock_seconds (RESOURCE_EXHAUSTED, saying until when), right password or not."""
    s = settings()
    parsed = rules.parse_login(login)
    refusal: DomainError | None = None
    with session_scope() as session:
        found = _candidates(session, parsed)
        matching = [(m, c) for m, c in found if rules.password_matches(c.password_hash, password)]
        if not found:
            rules.password_matches(None, password)  # as long as a wrong password takes
        key = rules.login_key(parsed, str(found[0][0].id) if len(found) == 1 else None)
        # Lock the row (or, for a first failure, its key) so concurrent guesses count one by one.
        session.execute(insert(store.SignInFailures).values(login_key=key, failures=0)
                        .on_conflict_do_nothing(index_elements=[store.SignInFailures.login_key]))
        failures = _failures(session, key)
        now = _now()
        if failures.locked_until is not None and failures.locked_until > now:
            refusal = rules.locked_error(failures.locked_until)
        elif len(matching) != 1:
            failures.failures, locked_until = rules.after_failure(
                failures.failures, now, s.signin_max_failures, s.signin_lock_seconds)
            failures.locked_until, failures.last_failed_at = locked_until, now
            refusal = rules.locked_error(locked_until) if locked_until else Unauthenticated(rules.WRONG)
        else:
            failures.failures, failures.locked_until = 0, None
            member = matching[0][0]
            _check_may_sign_in(member)
            return _issue(session, member, uuid.uuid4(), now + timedelta(seconds=s.signin_session_seconds))
    raise refusal


def _check_may_sign_in(member: store.Member) -> None:
    if not member.active:
        raise PermissionDenied("this member is inactive")
    if member.role not in SIGNIN_ROLES:
        raise PermissionDenied(f"a {member.role} does not sign in here")
    if not member.assignments:
        raise PermissionDenied("this member is assigned to no unit yet")


def _issue(session: Session, member: store.Member, family: uuid.UUID, session_end: datetime) -> Tokens:
    """A new refresh token of the family, and an access token from the member's assignments now."""
    s = settings()
    token, token_hash = rules.new_refresh_token()
    session.add(store.RefreshToken(family_id=family, member_id=member.id, token_hash=token_hash,
                                   expires_at=session_end))
    now = time.time()
    ttl = max(1, min(s.signin_access_ttl_seconds, int(session_end.timestamp() - now)))
    scope = tuple(sorted(a.unit_code for a in member.assignments))
    access = auth.mint_token(str(member.id), member.role, scope, ttl_seconds=ttl, now=now, session_id=str(family))
    return Tokens(access, datetime.fromtimestamp(int(now) + ttl, timezone.utc), token, session_end,
                  str(member.id), member.role, scope)


def refresh(refresh_token: str) -> Tokens:
    """A new access token and refresh token for a refresh token used for the first time. One used
    before (someone else holds a copy) ends its whole session."""
    if not refresh_token:
        raise Unauthenticated("send the refresh token")
    refusal: DomainError
    with session_scope() as session:
        row = session.scalars(select(store.RefreshToken).where(
            store.RefreshToken.token_hash == rules.refresh_hash(refresh_token)).with_for_update()).first()
        now = _now()
        if row is None:
            raise Unauthenticated("this refresh token is not one gridbus gave out: sign in")
        if row.revoked_at is not None:
            raise Unauthenticated("this session has ended: sign in again")
        if row.used_at is not None:
            _revoke_family(session, row.family_id, now)
            refusal = Unauthenticated("this refresh token was used before, so the session has been ended: sign in again")
        elif row.expires_at <= now:
            raise Unauthenticated("this session has expired: sign in again")
        else:
            row.used_at = now
            member = store.get_member(session, row.member_id)
            try:
                _check_may_sign_in(member)
            except PermissionDenied as exc:
                _revoke_family(session, row.family_id, now)
                refusal = Unauthenticated(f"{exc.message}: signed out")
            else:
                return _issue(session, member, row.family_id, row.expires_at)
    raise refusal


def sign_out(refresh_token: str) -> None:
    """Ends the refresh token's session (its access token lapses within minutes). Unknown or
    already ended: nothing to do."""
    if not refresh_token:
        return
    with session_scope() as session:
        family = session.scalar(select(store.RefreshToken.family_id).where(
            store.RefreshToken.token_hash == rules.refresh_hash(refresh_token)))
        if family is not None:
            _revoke_family(session, family, _now())


def _revoke_family(session: Session, family: uuid.UUID, now: datetime) -> None:
    session.execute(update(store.RefreshToken).where(store.RefreshToken.family_id == family,
                                                     store.RefreshToken.revoked_at.is_(None)).values(revoked_at=now))


# --- revocation ---------------------------------------------------------------------------------

def revoke_sessions(session: Session, member_id: uuid.UUID, reason: str) -> float:
    """In the caller's transaction: ends every session of the member and makes every token issued
    to them until now refused everywhere (grid.member.sessions_revoked, and grid.session_revocations
    for the processes' poll). Returns the time before which tokens are refused."""
    now = revocation.stamp(time.time())
    when = datetime.fromtimestamp(now, timezone.utc)
    session.execute(update(store.RefreshToken).where(store.RefreshToken.member_id == member_id,
                                                     store.RefreshToken.revoked_at.is_(None)).values(revoked_at=when))
    stmt = insert(store.SessionRevocation).values(member_id=member_id, revoked_before=when, updated_at=when)
    session.execute(stmt.on_conflict_do_update(index_elements=[store.SessionRevocation.member_id],
                                               set_={"revoked_before": when, "updated_at": when}))
    record_event(session, SCHEMA, "grid.member.sessions_revoked", f"members/{member_id}",
                 {"member_id": str(member_id), "revoked_before": when.isoformat(), "reason": reason})
    return now


def revoked_since(session: Session, since: datetime | None) -> tuple[dict[str, float], datetime | None]:
    """Revocations written after `since` (all, when None): member id -> revoked before (epoch
    seconds), and the newest time seen, for the next poll."""
    stmt = select(store.SessionRevocation.member_id, store.SessionRevocation.revoked_before,
                  store.SessionRevocation.updated_at)
    if since is not None:
        stmt = stmt.where(store.SessionRevocation.updated_at > since)
    rows = session.execute(stmt).all()
    newest = max((r.updated_at for r in rows), default=since)
    return {str(r.member_id): r.revoked_before.timestamp() for r in rows}, newest

