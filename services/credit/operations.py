"""What the credit registry does, called by both entry points (gRPC and nameko).

Writes extend the hash chain under one lock and commit with their events; reads of a
person's records commit with their access-log row."""
from __future__ import annotations

import functools
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.credit import domain, lookups, store
from shared import auth, units
from shared.auth import Principal
from shared.config import settings
from shared.db import session_scope
from shared.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.ids import parse_uuid
from shared.outbox import record_event, record_events
from shared.timefmt import utcnow

log = logging.getLogger(__name__)

SCHEMA = store.SCHEMA
RULES_FILE = Path(__file__).resolve().parent / "config" / "rules.yaml"
READERS = (auth.DEPARTMENT, auth.DISPATCHER, auth.ADMIN, auth.SERVICE)
WRITERS = (auth.DISPATCHER, auth.ADMIN, auth.SERVICE)
MAX_PAGE = 200


@functools.lru_cache(maxsize=1)
def rules() -> domain.Rules:
    with open(settings().credit_rules or RULES_FILE, encoding="utf-8") as f:
        return domain.parse_rules(yaml.safe_load(f))


@dataclass
class SubjectView:
    id: str
    type: str
    code: str           # enterprise: the USCC; person: the masked identity number
    name: str
    registered_grid: str | None
    name_verified: bool
    created_at: datetime


@dataclass
class RecordView:
    seq: int
    id: str
    subject_id: str
    kind: str
    category: str
    severity: int
    source: str
    incident_id: str | None
    valid_from: datetime
    valid_until: datetime
    confirmed_by: str
    supersedes: str | None
    reason: str | None
    created_at: datetime
    hash: str
    authority: str | None = None          # a department's decision: who decided, under what, when
    decision_number: str | None = None
    decision_date: date | None = None
    legal_basis: str | None = None
    summary: str | None = None
    list_code: str | None = None
    published_from: date | None = None
    published_until: date | None = None


@dataclass
class StandingView:
    subject: SubjectView
    as_of: datetime
    score: int
    lists: list[str]
    records_in_force: int


def _subject_view(row) -> SubjectView:
    return SubjectView(str(row.id), row.type, row.uscc or row.id_masked, row.name, row.registered_grid,
                       row.name_verified, row.created_at)


def _record_view(row) -> RecordView:
    return RecordView(row.seq, str(row.id), str(row.subject_id), row.kind, row.category, row.severity, row.source,
                      str(row.incident_id) if row.incident_id else None, row.valid_from, row.valid_until,
                      row.confirmed_by, str(row.supersedes) if row.supersedes else None, row.reason, row.created_at,
                      row.hash, *(getattr(row, c) for c in ("authority", "decision_number", "decision_date",
                                                            "legal_basis", "summary", "list_code", "published_from",
                                                            "published_until")))


# --- subjects ------------------------------------------------------------------------------

def register(caller: Principal, *, type_: str, code: str, name: str, registered_grid: str = "") -> SubjectView:
    """code: the USCC of an enterprise, or a person's resident identity number."""
    auth.require_role(caller, auth.ADMIN, auth.SERVICE)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidArgument("name is required (at most 200 characters)")
    values = {"id": uuid.uuid4(), "type": type_, "uscc": None, "id_lookup": None, "id_masked": None, "name": name,
              "registered_grid": registered_grid or None, "name_verified": True}
    if type_ == domain.ENTERPRISE:
        values["uscc"] = domain.check_uscc(code)
    elif type_ == domain.PERSON:
        number = domain.check_id_number(code)
        values["id_lookup"] = domain.id_lookup_key(number, settings().credit_id_key)
        values["id_masked"] = domain.mask_id(number)
    else:
        raise InvalidArgument("type must be enterprise or person")
    with session_scope() as session:
        if not store.insert_subject(session, values):
            raise AlreadyExists("this subject is registered already")
        return _subject_view(store.subject(session, subject_id=values["id"]))


def get_subject(caller: Principal, *, subject_id: str = "", uscc: str = "", id_number: str = "",
                purpose: str = "") -> SubjectView:
    return lookups.read(caller, "subject", purpose, lambda session, row: _subject_view(row),
                        subject_id=subject_id, uscc=uscc, id_number=id_number)


# --- records -------------------------------------------------------------------------------

def append_record(session: Session, subject_id: uuid.UUID, *, kind: str, category: str, severity: int,
            source: str, incident_id: str | None, confirmed_by: str, supersedes: uuid.UUID | None,
            reason: str | None, valid_from: datetime | None = None) -> RecordView:
    """Extends the chain by one record and records its events, in the caller's transaction."""
    store.lock_chain(session)
    now = utcnow()
    valid_from = valid_from or now
    values = {"id": uuid.uuid4(), "subject_id": subject_id, "kind": kind, "category": category, "severity": severity,
              "source": source, "incident_id": incident_id, "valid_from": valid_from,
              "valid_until": valid_from + timedelta(days=rules().validity_days.get(kind, 1095)),
              "confirmed_by": confirmed_by, "supersedes": supersedes, "reason": reason, "created_at": now}
    prev = store.last_hash(session) or domain.GENESIS
    values["prev_hash"] = prev
    values["hash"] = domain.record_hash(prev, domain.content_of(values))
    store.insert_record(session, values)
    record_event(session, SCHEMA, "credit.record.added", f"subjects/{subject_id}", record_added(values))
    _announce_many(session, {subject_id: [str(values["id"])]}, now, cause="record")
    return _record_view(store.record(session, values["id"]))


def record_added(values: dict) -> dict:
    """The credit.record.added payload of a record about to be written (one shape, however written)."""
    def day(v):
        return None if v is None else v.isoformat()
    return {"record_id": str(values["id"]), "subject_id": str(values["subject_id"]), "kind": values["kind"],
            "category": values["category"], "severity": values["severity"], "source": values["source"],
            "incident_id": str(values["incident_id"]) if values.get("incident_id") else None,
            "supersedes": str(values["supersedes"]) if values.get("supersedes") else None,
            "valid_from": values["valid_from"].isoformat(), "valid_until": values["valid_until"].isoformat(),
            "confirmed_by": values["confirmed_by"], "hash": values["hash"],
            "authority": values.get("authority"), "decision_number": values.get("decision_number"),
            "decision_date": day(values.get("decision_date")), "list": values.get("list_code"),
            "published_until": day(values.get("published_until"))}


def _domain_record(r) -> domain.Record:
    return domain.Record(str(r.id), r.kind, r.severity, r.valid_from, r.valid_until, r.created_at,
                         str(r.supersedes) if r.supersedes else None, r.list_code)


def _records(session: Session, subject_id: uuid.UUID) -> list[domain.Record]:
    return [_domain_record(r) for r in store.records_of(session, subject_id)]


def division_of(subject) -> str | None:
    """The district a subject belongs to: its registered grid's, else (an enterprise) the
    administrative division in its credit code (GB 32100 positions 3-8)."""
    if subject.registered_grid:
        return subject.registered_grid[:6]
    return subject.uscc[2:8] if subject.uscc else None


def _announce_many(session: Session, new_records: dict, now: datetime, *, cause: str) -> int:
    """Compares each subject's standing at `now` with the one last announced; a change of lists
    becomes a credit.list.changed event. `new_records`: subject id -> ids of the records just
    written for it (empty for the sweep). Callers hold the chain lock, so announcements never
    interleave. Returns how many subjects changed lists."""
    ids = list(new_records)
    records = {sid: [_domain_record(r) for r in rows] for sid, rows in store.standing_records_of(session, ids).items()}
    last = store.announced_many(session, ids)
    subjects = store.subjects_many(session, ids)
    saved, events = [], []
    for sid in ids:
        mine, new = records[sid], set(new_records[sid])
        after = domain.standing(mine, rules(), now)
        previous = last.get(sid)
        if previous is not None and previous.lists is not None:
            before_lists, before_score = previous.lists, previous.score
        elif new:  # nothing announced yet: compare with the standing without the new records
            before = domain.standing([r for r in mine if r.id not in new], rules(), now)
            before_lists, before_score = before.lists, before.score
        else:  # a subject from before announcements were kept: learn its standing quietly
            before_lists, before_score = after.lists, after.score
        saved.append({"subject_id": sid, "lists": after.lists, "score": after.score, "computed_at": now,
                      "next_change_at": domain.next_change(mine, rules(), now)})
        if sorted(before_lists) == sorted(after.lists):
            continue
        subject = subjects[sid]
        events.append(("credit.list.changed", f"subjects/{sid}", {
            "subject_id": str(sid), "subject_type": subject.type, "subject_code": subject.uscc,
            "registered_grid": subject.registered_grid, "division": division_of(subject),
            "lists": after.lists, "previous_lists": list(before_lists), "score": after.score,
            "previous_score": before_score, "record_id": ([r.id for r in mine if r.id in new] or [None])[-1],
            "cause": cause}))
    store.save_announced_many(session, saved)
    record_events(session, SCHEMA, events)
    return len(events)


def sweep_standings(now: datetime | None = None, *, limit: int = 500,
                    subject_ids: list[str] | None = None) -> int:
    """Announces the list changes that time alone makes (a record expires or takes effect, a
    violation stops being recent). Returns how many subjects changed lists. Replica-safe: the
    chain lock serializes it with every writer. `subject_ids` narrows it (tests on a simulated clock)."""
    now = now or utcnow()
    ids = [parse_uuid(i, "subject id") for i in subject_ids] if subject_ids is not None else None
    with session_scope() as session:
        store.lock_chain(session)
        return _announce_many(session, {sid: [] for sid in store.standings_due(session, now, limit, ids)}, now,
                              cause="time")


def add_record(caller: Principal, *, subject_id: str, kind: str, category: str, severity: int,
               incident_id: str = "", reason: str = "", supersedes: str = "") -> RecordView:
    """A manual record, a commendation, or a correction/appeal that supersedes an earlier one."""
    auth.require_role(caller, *WRITERS)
    domain.check_record(kind, severity, category, reason, supersedes or None)
    sid = parse_uuid(subject_id, "subject id")
    with session_scope() as session:
        subject = store.subject(session, subject_id=sid)
        if subject is None:
            raise NotFound(f"no subject {subject_id}")
        if caller.role == auth.DISPATCHER:
            if kind == "annulment":
                raise PermissionDenied("annulling a record is for the registry's administrators")
            if not _registered_within(caller, subject.registered_grid):
                raise PermissionDenied("this subject is not registered in your district")
        old = None
        if supersedes:
            old = store.record(session, parse_uuid(supersedes, "supersedes"))
            if old is None or str(old.subject_id) != str(sid):
                raise NotFound(f"no record {supersedes} of this subject")
            if store.superseded_by(session, old.id):
                raise FailedPrecondition(f"record {supersedes} was superseded already; supersede the newer one")
        return append_record(session, sid, kind=kind, category=category, severity=severity,
                       source=f"manual:{uuid.uuid4()}", incident_id=incident_id or None, confirmed_by=caller.member_id,
                       supersedes=old.id if old else None, reason=(reason or "").strip() or None)


def _registered_within(caller: Principal, grid_code: str | None) -> bool:
    """Whether the subject's registered unit lies in the caller's scope (a code that is no unit
    code lies in nobody's)."""
    try:
        return bool(grid_code) and caller.covers(units.lineage(grid_code))
    except InvalidArgument:
        return False


def list_records(caller: Principal, subject_id: str, *, kinds: list[str] | None = None, page_size: int = 50,
                 page_token: str = "", purpose: str = "") -> tuple[list[RecordView], str]:
    if not 0 < page_size <= MAX_PAGE:
        raise InvalidArgument(f"page_size must be 1..{MAX_PAGE}")
    after = None
    if page_token:
        if not re.fullmatch(r"[0-9]{1,18}", page_token):  # not str.isdigit(): it takes "²" and "١"
            raise InvalidArgument("page_token is not one this service gave out")
        after = int(page_token)
    rows = lookups.read(caller, "records", purpose, lambda session, subject: store.records_of(
        session, subject.id, kinds=kinds, after_seq=after, limit=page_size + 1), subject_id=subject_id)
    more = len(rows) > page_size
    rows = rows[:page_size]
    return [_record_view(r) for r in rows], (str(rows[-1].seq) if more else "")


def _standing(session: Session, subject_id: uuid.UUID, as_of: datetime) -> domain.Standing:
    return domain.standing(_records(session, subject_id), rules(), as_of)


def get_standing(caller: Principal, subject_id: str, as_of: datetime | None = None, purpose: str = "") -> StandingView:
    """Score and lists from the records in force at `as_of` (default now)."""
    as_of = as_of or utcnow()

    def standing(session, subject):
        s = _standing(session, subject.id, as_of)
        return StandingView(_subject_view(subject), as_of, s.score, s.lists, len(s.in_force))
    return lookups.read(caller, f"standing as of {as_of.isoformat()}", purpose, standing, subject_id=subject_id)


def list_members(caller: Principal, list_name: str, as_of: datetime | None = None) -> list[StandingView]:
    """Enterprises on the red or black list at `as_of` (people's lists are read one by one, logged)."""
    auth.require_role(caller, *READERS)
    if list_name not in ("red", "black"):
        raise InvalidArgument("list is red or black")
    as_of = as_of or utcnow()
    out = []
    with session_scope() as session:
        for sid in store.subjects_with_records(session, as_of):
            subject = store.subject(session, subject_id=sid)
            if subject.type != domain.ENTERPRISE:
                continue
            s = _standing(session, sid, as_of)
            if list_name in s.lists:
                out.append(StandingView(_subject_view(subject), as_of, s.score, s.lists, len(s.in_force)))
    return sorted(out, key=lambda v: v.subject.code)


def access_log(caller: Principal, subject_id: str) -> list:
    auth.require_role(caller, auth.ADMIN, auth.SERVICE)
    with session_scope() as session:
        return store.access_log(session, parse_uuid(subject_id, "subject id"))


def list_unmatched(caller: Principal, limit: int = 100) -> list:
    auth.require_role(caller, auth.ADMIN, auth.SERVICE)
    if not 0 < limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be 1..{MAX_PAGE}")
    with session_scope() as session:
        return store.unmatched(session, limit)


def health() -> dict:
    with session_scope() as session:
        session.execute(text("SELECT 1"))
    return {"status": "SERVING"}
