"""What others may learn from the registry: the public's view of an enterprise (published records
and the lists it is on today, nothing about people), and joint punishment's check of whether a
subject is on a list that restricts an action, logged with the asking system and its purpose."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.credit import access, domain, sharing, store
from services.credit.intake import directory
from services.credit.operations import _domain_record, rules
from shared import access as shared_access, auth
from shared.auth import Principal
from shared.config import settings
from shared.db import session_scope
from shared.errors import InvalidArgument, NotFound
from shared.timefmt import utcnow

MAX_NAME_MATCHES = 10
CHECKERS = (auth.DEPARTMENT, auth.SERVICE)   # other government systems' tokens


@dataclass(frozen=True)
class PublicRecord:
    kind: str
    category: str
    severity: str               # the publication band's name (e.g. serious, ordinary)
    authority: str
    authority_name: str
    decision_number: str
    decision_date: date
    legal_basis: str
    summary: str | None
    published_from: date
    published_until: date


@dataclass(frozen=True)
class ListMembership:
    code: str
    name: str
    colour: str
    authority: str | None       # None: the registry's own list, from its score
    authority_name: str | None
    basis: str
    decision_number: str | None
    since: date | None
    until: date | None          # the first day it no longer applies


@dataclass(frozen=True)
class PublicProfile:
    as_of: datetime
    day: date                   # the calendar day (operator's zone) publication is judged on
    code: str
    name: str
    name_verified: bool
    records: list[PublicRecord]
    lists: list[ListMembership]


def _memberships(rows: list, st: domain.Standing, lists: dict) -> list[ListMembership]:
    by_id = {str(r.id): r for r in rows}
    zone = rules().timezone
    out = []
    for code in st.lists:
        meta = lists.get(code)
        name, colour = (meta.name, meta.colour) if meta else (code, "black" if code == "black" else "red")
        entries = [by_id[i] for i in st.entries.get(code, [])]
        if not entries:
            out.append(ListMembership(code, name, colour, None, None, "the registry's scoring rules", None, None, None))
        for e in entries:
            out.append(ListMembership(code, name, colour, e.authority, e.authority_name, e.legal_basis,
                                      e.decision_number, e.valid_from.astimezone(zone).date(),
                                      e.valid_until.astimezone(zone).date()))
    return out


def _profile(session, subject, at: datetime, now: datetime, lists: dict) -> PublicProfile:
    if subject.type != domain.ENTERPRISE:  # the public learns nothing about people, however asked
        raise NotFound("no enterprise with this code in the registry")
    rows = store.public_records_of(session, subject.id)
    day = at.astimezone(rules().timezone).date()
    records = [PublicRecord(r.kind, r.category, rules().band(r.kind, r.severity).name, r.authority, r.authority_name,
                            r.decision_number, r.decision_date, r.legal_basis, r.summary, r.published_from,
                            r.published_until)
               for r in sharing.public_records(rows, day) if rules().band(r.kind, r.severity) is not None]
    st = domain.standing([_domain_record(r) for r in rows], rules(), at, known_by=now)
    return PublicProfile(at, day, subject.uscc, subject.name, subject.name_verified, records,
                         _memberships(rows, st, lists))


def public_profile(caller: Principal, *, uscc: str = "", name: str = "", at: datetime | None = None) -> list[PublicProfile]:
    """What the public may know about an enterprise, found by its unified social credit code (one
    answer) or its exact registered name (every enterprise of that name, at most 10). Records
    are those published on the day of `at` (now, unless a test moves the clock), with everything
    recorded so far."""
    shared_access.permit(access.PUBLIC_PROFILE, caller)
    if bool(uscc) == bool(name):
        raise InvalidArgument("name the enterprise by its unified social credit code or its exact registered name")
    now = utcnow()
    at = at or now
    with session_scope() as session:
        if uscc:
            found = store.subject(session, uscc=domain.check_uscc(uscc))
            subjects = [found] if found is not None else []
        else:
            name = name.strip()
            if not name or len(name) > 200:
                raise InvalidArgument("name: 1 to 200 characters")
            subjects = store.enterprises_named(session, name, MAX_NAME_MATCHES)
        if not subjects:
            raise NotFound("no enterprise with this " + ("code" if uscc else "registered name") + " in the registry")
        lists = store.list_defs(session)
        return [_profile(session, s, at, now, lists) for s in subjects]


# --- joint punishment ----------------------------------------------------------------------

@dataclass(frozen=True)
class RestrictionAnswer:
    restricted: bool
    as_of: datetime
    subject_known: bool
    subject_id: str | None
    restrictions: list[ListMembership]   # the lists that restrict the action, with authority and basis


def check_restriction(caller: Principal, *, action: str, purpose: str, uscc: str = "", id_number: str = "",
                      at: datetime | None = None) -> RestrictionAnswer:
    """Is the subject on a list that restricts `action` today? Every answer is logged in the
    access log, in the same transaction, with the asking system and its purpose."""
    auth.require_role(caller, *CHECKERS)
    purpose = (purpose or "").strip()
    if not purpose or len(purpose) > 500:
        raise InvalidArgument("purpose is required (at most 500 characters); it is logged")
    if bool(uscc) == bool(id_number):
        raise InvalidArgument("name the subject: uscc or id_number")
    at = at or utcnow()
    with session_scope() as session:
        known = directory(session)
        sharing.restricting([], known, action)  # an unknown action is refused before anything is read
        if uscc:
            ref = domain.check_uscc(uscc)
            subject = store.subject(session, uscc=ref)
        else:
            number = domain.check_id_number(id_number)
            ref = domain.mask_id(number)
            subject = store.subject(session, id_lookup=domain.id_lookup_key(number, settings().credit_id_key))
        restrictions: list[ListMembership] = []
        if subject is not None:
            rows = store.public_records_of(session, subject.id)
            st = domain.standing([_domain_record(r) for r in rows], rules(), at)
            codes = set(sharing.restricting(st.lists, known, action))
            restrictions = [m for m in _memberships(rows, st, store.list_defs(session)) if m.code in codes]
        outcome = ("restricted by " + ", ".join(sorted({m.code for m in restrictions})) if restrictions
                   else "not restricted")
        store.log_access(session, subject.id if subject else None, caller.member_id, caller.role,
                         f"restriction check {action}: {outcome}", purpose, subject_ref=None if subject else ref)
        return RestrictionAnswer(bool(restrictions), at, subject is not None,
                                 str(subject.id) if subject else None, restrictions)

