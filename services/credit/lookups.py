"""Finding a subject for a read, with its access log: a person's credit is read only within the
caller's grids and with a purpose; every read of a person and every failed lookup (no such
subject, or not the caller's to read) is logged in credit.access_log; and a caller whose failed
lookups in the last window reach the limit is refused for a while, so identity numbers cannot be
guessed by trying them."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.credit import access, domain, store
from shared import access as shared_access
from shared.auth import Principal
from shared.config import settings
from shared.db import session_scope
from shared.errors import InvalidArgument, NotFound, PermissionDenied, ResourceExhausted
from shared.ids import parse_uuid

FAILED = "failed lookup"
# Failed lookups a caller may make in a window; past it, every lookup is refused until the oldest
# leaves the window. Wide enough for people's typing, far too narrow to walk identity numbers.
FAILED_LOOKUPS_ALLOWED = 10
FAILED_LOOKUP_WINDOW = timedelta(minutes=15)


def _ref(subject_id: str, uscc: str, id_number: str) -> str:
    """What the caller asked for, as the log keeps it: an identity number masked."""
    if subject_id:
        return f"subject {subject_id}"[:100]
    if uscc:
        return f"uscc {uscc}"[:100]
    try:
        return f"id {domain.mask_id(domain.check_id_number(id_number))}"
    except InvalidArgument:
        return "id (malformed)"


def _find(session: Session, *, subject_id: str, uscc: str, id_number: str):
    if subject_id:
        row = store.subject(session, subject_id=parse_uuid(subject_id, "subject id"))
    elif uscc:
        row = store.subject(session, uscc=domain.check_uscc(uscc))
    elif id_number:
        row = store.subject(session, id_lookup=domain.id_lookup_key(domain.check_id_number(id_number),
                                                                    settings().credit_id_key))
    else:
        raise InvalidArgument("name the subject: subject_id, uscc or id_number")
    if row is None:
        raise NotFound("no such subject in the registry")
    return row


def may_read(caller: Principal, subject, purpose: str) -> None:
    if subject.type != domain.PERSON:
        shared_access.permit(access.READ_SUBJECT, caller)
        return
    shared_access.require(access.READ_SUBJECT, caller, personal=True, what="this person's credit",
                          units_=[subject.registered_grid] if subject.registered_grid else None)
    if not (purpose or "").strip():
        raise InvalidArgument("reading a person's credit needs a purpose; it is logged")


def check_rate(caller: Principal) -> None:
    with session_scope() as session:
        failed = session.scalar(text(
            "SELECT count(*) FROM credit.access_log WHERE reader_id = :r AND reader_role = :role AND what = :w "
            "AND at > clock_timestamp() - make_interval(secs => :window)"),
            {"r": caller.member_id, "role": caller.role, "w": FAILED,
             "window": FAILED_LOOKUP_WINDOW.total_seconds()})
    if failed >= FAILED_LOOKUPS_ALLOWED:
        raise ResourceExhausted(f"{failed} failed lookups in the last {FAILED_LOOKUP_WINDOW.seconds // 60} minutes; "
                                "wait before looking up more subjects")


def read(caller: Principal, what: str, purpose: str, then, *, subject_id: str = "", uscc: str = "",
         id_number: str = ""):
    """`then(session, subject)` once the subject is found and the caller may read it, in the
    transaction that logs the read of a person. A lookup that fails is logged in its own
    transaction (the read's rolls back) and re-raised."""
    shared_access.permit(access.READ_SUBJECT, caller)
    check_rate(caller)
    try:
        with session_scope() as session:
            subject = _find(session, subject_id=subject_id, uscc=uscc, id_number=id_number)
            may_read(caller, subject, purpose)
            if subject.type == domain.PERSON:
                store.log_access(session, subject.id, caller.member_id, caller.role, what, purpose.strip())
            return then(session, subject)
    except (NotFound, PermissionDenied) as exc:
        with session_scope() as session:
            store.log_access(session, None, caller.member_id, caller.role, FAILED, (purpose or "").strip()[:500],
                             subject_ref=f"{what}: {_ref(subject_id, uscc, id_number)}: {exc.code}")
        raise
