"""Records from other departments: the directory of authorities and their lists, and decisions
sent one by one (gRPC) or in batches (a CSV or JSON lines file through the CLI, a gRPC stream).

Every row is checked first (services/credit/sharing.py); a bad row is reported with its line and
reason and the rest go in. Rows are written in chunks, each one transaction under the chain
lock: staged with COPY, checked against the registry in SQL (decisions recorded already,
subjects to register), hashed in order in one pass, and appended with COPY, with their events.
A chunk that fails writes nothing; sending the file again only adds what is missing, since a
decision (authority, number) is recorded once."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Iterable

from sqlalchemy.orm import Session

from services.credit import access, domain, sharing, store
from services.credit.operations import SCHEMA, RecordView, _announce_many, _record_view, record_added, rules
from shared import access as shared_access, auth
from shared.auth import Principal
from shared.config import settings
from shared.db import session_scope
from shared.errors import AlreadyExists, DomainError, InvalidArgument
from shared.outbox import record_events
from shared.timefmt import utcnow

DIRECTORY_FILE = Path(__file__).resolve().parent / "config" / "authorities.yaml"
SENDERS = (auth.DEPARTMENT, auth.ADMIN, auth.SERVICE)
CHUNK_ROWS = 5000
INSERTED, DUPLICATE, REFUSED = "inserted", "duplicate", "refused"


@dataclass(frozen=True)
class Outcome:
    line: int                 # the row's line in the file (or its position in a stream, from 1)
    outcome: str              # inserted, duplicate or refused
    record_id: str | None     # inserted: the new record; duplicate: the one recorded before
    message: str = ""
    error: type[DomainError] = InvalidArgument   # refused: what a single call raises


@dataclass
class ImportReport:
    outcomes: list[Outcome] = field(default_factory=list)   # by line

    def count(self, outcome: str) -> int:
        return sum(o.outcome == outcome for o in self.outcomes)


def today(now: datetime | None = None) -> date:
    """Today in the operator's zone (rules.yaml `timezone`)."""
    return (now or utcnow()).astimezone(rules().timezone).date()


# --- the directory -------------------------------------------------------------------------

def load_authorities(caller: Principal, doc) -> dict:
    """Checks the operator's authorities file as a whole and loads it; entries it no longer names
    are deactivated. Returns (loaded, deactivated) per table."""
    auth.require_role(caller, auth.ADMIN, auth.SERVICE)
    parsed = sharing.parse_directory(doc)
    with session_scope() as session:
        return store.save_directory(
            session,
            [{"code": k, "description": v} for k, v in parsed.actions.items()],
            [{"code": x.code, "name": x.name, "colour": x.colour, "computed": x.computed,
              "restricts": sorted(x.restricts)} for x in parsed.lists.values()],
            [{"code": a.code, "name": a.name, "kinds": sorted(a.kinds), "lists": sorted(a.lists)}
             for a in parsed.authorities.values()])


def directory(session: Session) -> sharing.Directory:
    authorities, lists, actions = store.directory_rows(session)
    return sharing.Directory(
        {a.code: sharing.Authority(a.code, a.name, frozenset(a.kinds), frozenset(a.lists), a.active) for a in authorities},
        {x.code: sharing.ListDef(x.code, x.name, x.colour, frozenset(x.restricts), x.computed, x.active) for x in lists},
        {a.code: a.description for a in actions if a.active})


# --- records -------------------------------------------------------------------------------

def _may_act_for(caller: Principal) -> Callable[[str], bool] | None:
    """A department sends for its own authority (its member id is the authority's code); the
    registry's operators and gridbus services for any."""
    if caller.role == auth.DEPARTMENT:
        return lambda code: code == caller.member_id
    return None


def import_records(caller: Principal, items: Iterable[tuple[int, dict | InvalidArgument]], *,
                   progress: Callable[[int], None] | None = None, chunk_rows: int = CHUNK_ROWS,
                   now: datetime | None = None) -> ImportReport:
    """Checks and writes a batch; `items` are (line, fields) as sharing.read_csv/read_jsonl give
    them. `progress(n)` hears of every n rows done."""
    auth.require_role(caller, *SENDERS)
    with session_scope() as session:
        known = directory(session)
    rows, refused, repeated = sharing.check_rows(items, known, rules(), today(now), settings().credit_id_key,
                                                 _may_act_for(caller))
    report = ImportReport([Outcome(r.line, REFUSED, None, r.reason) for r in refused] +
                          [Outcome(r.line, DUPLICATE, None, r.reason) for r in repeated])
    if progress:
        progress(len(report.outcomes))
    for start in range(0, len(rows), chunk_rows):
        part = rows[start:start + chunk_rows]
        report.outcomes += _write(caller, part)
        if progress:
            progress(len(part))
    report.outcomes.sort(key=lambda o: o.line)
    return report


def add_external_record(caller: Principal, fields: dict) -> tuple[RecordView, bool]:
    """One decision pushed by a department: (the record, True) when new, (the record sent
    before, False) when the decision is recorded already. Refusals raise."""
    if shared_access.scope_of(access.SEND, caller) == shared_access.OWN_RECORD:  # a department: its own authority's
        shared_access.require(access.SEND, caller, owner=str(fields.get("authority") or "").strip(),
                              what=f"a decision of authority {fields.get('authority')!r}")
    report = import_records(caller, [(1, fields)])
    outcome = report.outcomes[0]
    if outcome.outcome == REFUSED:
        raise outcome.error(outcome.message)
    with session_scope() as session:
        return _record_view(store.record(session, uuid.UUID(outcome.record_id))), outcome.outcome == INSERTED


def _write(caller: Principal, rows: list[sharing.Row]) -> list[Outcome]:
    """One chunk, one transaction, under the chain lock."""
    outcomes: list[Outcome] = []
    with session_scope() as session:
        store.lock_chain(session)
        store.stage_rows(session, rows)
        done, by_line = set(), {r.line: r for r in rows}
        for hit in store.staged_decisions_recorded(session):
            done.add(hit.line)
            row = by_line[hit.line]
            if hit.same:
                outcomes.append(Outcome(hit.line, DUPLICATE, str(hit.record_id), "recorded already"))
            else:
                outcomes.append(Outcome(hit.line, REFUSED, str(hit.record_id), (
                    f"decision {row.decision_number} of {row.authority} is recorded already for another subject, "
                    f"kind or date (record {hit.record_id}); a correction is a new decision"), AlreadyExists))
        store.unstage(session, sorted(done))
        store.register_staged_subjects(session)
        subject_of = store.staged_subjects(session)
        now = utcnow()
        prev = store.last_hash(session) or domain.GENESIS
        written, new_records = [], {}
        for row in rows:
            if row.line in done:
                continue
            subject_id = subject_of.get(row.line)
            if subject_id is None:
                outcomes.append(Outcome(row.line, REFUSED, None,
                                        "the subject is not in the registry: give subject_name to register it"))
                continue
            values = _values(row, subject_id, caller.member_id, now)
            values["prev_hash"] = prev
            values["hash"] = prev = domain.record_hash(prev, domain.content_of(values))
            written.append(values)
            new_records.setdefault(subject_id, []).append(str(values["id"]))
            outcomes.append(Outcome(row.line, INSERTED, str(values["id"])))
        store.copy_records(session, written)
        record_events(session, SCHEMA, [("credit.record.added", f"subjects/{v['subject_id']}", record_added(v))
                                        for v in written])
        _announce_many(session, new_records, now, cause="record")
    return outcomes


def _values(row: sharing.Row, subject_id: uuid.UUID, sender: str, now: datetime) -> dict:
    return {"id": uuid.uuid4(), "subject_id": subject_id, "kind": row.kind, "category": row.category,
            "severity": row.severity, "source": f"decision:{row.authority}:{row.decision_number}", "incident_id": None,
            "valid_from": row.valid_from, "valid_until": row.valid_until, "confirmed_by": sender, "supersedes": None,
            "reason": None, "created_at": now, "authority": row.authority, "legal_basis": row.legal_basis,
            "decision_number": row.decision_number, "decision_date": row.decision_date, "summary": row.summary,
            "list_code": row.list_code, "published_from": row.published_from, "published_until": row.published_until}
