"""credit storage: subjects, the hash-chained records, the access log and unmatched events."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

SCHEMA = "credit"
SUBJECT = "id, type, uscc, id_masked, name, registered_grid, name_verified, created_at"
RECORD = ("seq, id, subject_id, kind, category, severity, source, incident_id, valid_from, valid_until, "
          "confirmed_by, supersedes, reason, created_at, prev_hash, hash")


def insert_subject(session: Session, values: dict) -> bool:
    """False when the code or the identity number is registered already."""
    return session.execute(text(
        "INSERT INTO credit.subjects (id, type, uscc, id_lookup, id_masked, name, registered_grid, name_verified) "
        "VALUES (:id, :type, :uscc, :id_lookup, :id_masked, :name, :registered_grid, :name_verified) "
        "ON CONFLICT DO NOTHING RETURNING id"), values).first() is not None


def subject(session: Session, *, subject_id: uuid.UUID | None = None, uscc: str | None = None,
            id_lookup: str | None = None):
    if subject_id is not None:
        where, value = "id = :v", subject_id
    elif uscc is not None:
        where, value = "uscc = :v", uscc
    else:
        where, value = "id_lookup = :v", id_lookup
    return session.execute(text(f"SELECT {SUBJECT} FROM credit.subjects WHERE {where}"), {"v": value}).first()


def lock_chain(session: Session) -> None:
    """One writer at a time extends the chain, so it never forks."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('gridbus.credit.chain'))"))


def last_hash(session: Session) -> str | None:
    return session.execute(text("SELECT hash FROM credit.records ORDER BY seq DESC LIMIT 1")).scalar()


def source_exists(session: Session, source: str) -> bool:
    return session.execute(text("SELECT 1 FROM credit.records WHERE source = :s"), {"s": source}).first() is not None


def insert_record(session: Session, values: dict) -> int:
    return session.execute(text(
        "INSERT INTO credit.records (id, subject_id, kind, category, severity, source, incident_id, valid_from, "
        "valid_until, confirmed_by, supersedes, reason, created_at, prev_hash, hash) VALUES (:id, :subject_id, "
        ":kind, :category, :severity, :source, :incident_id, :valid_from, :valid_until, :confirmed_by, "
        ":supersedes, :reason, :created_at, :prev_hash, :hash) RETURNING seq"), values).scalar_one()


def record(session: Session, record_id: uuid.UUID):
    return session.execute(text(f"SELECT {RECORD} FROM credit.records WHERE id = :i"), {"i": record_id}).first()


def records_of(session: Session, subject_id: uuid.UUID, *, kinds: list[str] | None = None,
               after_seq: int | None = None, limit: int | None = None) -> list:
    conds, params = ["subject_id = :s"], {"s": subject_id}
    if kinds:
        conds.append("kind = ANY(:k)")
        params["k"] = kinds
    if after_seq is not None:
        conds.append("seq > :after")
        params["after"] = after_seq
    tail = ""
    if limit is not None:
        tail = " LIMIT :n"
        params["n"] = limit
    return session.execute(text(f"SELECT {RECORD} FROM credit.records WHERE {' AND '.join(conds)} "
                                f"ORDER BY seq{tail}"), params).all()


def chain(session: Session, batch: int = 5000):
    yield from session.execute(text(f"SELECT {RECORD} FROM credit.records ORDER BY seq")
                               .execution_options(yield_per=batch))


def subjects_with_records(session: Session, known_by: datetime) -> list[uuid.UUID]:
    return list(session.execute(text("SELECT DISTINCT subject_id FROM credit.records WHERE created_at <= :t"),
                                {"t": known_by}).scalars())


def announced(session: Session, subject_id: uuid.UUID):
    """The standing last announced for the subject (lists may be None: not yet known), or None."""
    return session.execute(text("SELECT lists, score FROM credit.standings WHERE subject_id = :s"),
                           {"s": subject_id}).first()


def save_announced(session: Session, subject_id: uuid.UUID, lists: list[str], score: int, computed_at: datetime,
                   next_change_at: datetime | None) -> None:
    session.execute(text(
        "INSERT INTO credit.standings (subject_id, lists, score, computed_at, next_change_at) "
        "VALUES (:s, :l, :score, :at, :next) ON CONFLICT (subject_id) DO UPDATE SET lists = excluded.lists, "
        "score = excluded.score, computed_at = excluded.computed_at, next_change_at = excluded.next_change_at"),
        {"s": subject_id, "l": lists, "score": score, "at": computed_at, "next": next_change_at})


def standings_due(session: Session, now: datetime, limit: int, subject_ids: list[uuid.UUID] | None = None) -> list:
    """Subjects whose standing may have changed by `now` with no new record."""
    only = " AND subject_id = ANY(:ids)" if subject_ids is not None else ""
    return list(session.execute(text(
        f"SELECT subject_id FROM credit.standings WHERE next_change_at < :now{only} "
        "ORDER BY next_change_at LIMIT :n"), {"now": now, "n": limit, "ids": subject_ids}).scalars())


def log_access(session: Session, subject_id: uuid.UUID, reader_id: str, reader_role: str, what: str,
               purpose: str) -> None:
    session.execute(text("INSERT INTO credit.access_log (subject_id, reader_id, reader_role, what, purpose) "
                         "VALUES (:s, :r, :role, :w, :p)"),
                    {"s": subject_id, "r": reader_id, "role": reader_role, "w": what, "p": purpose})


def access_log(session: Session, subject_id: uuid.UUID) -> list:
    return session.execute(text("SELECT reader_id, reader_role, what, purpose, at FROM credit.access_log "
                                "WHERE subject_id = :s ORDER BY id"), {"s": subject_id}).all()


def add_unmatched(session: Session, event_id: str, incident_id: str | None, subject_type: str | None,
                  subject_ref: str | None, reason: str) -> None:
    session.execute(text(
        "INSERT INTO credit.unmatched (event_id, incident_id, subject_type, subject_ref, reason) "
        "VALUES (:e, :i, :t, :r, :why) ON CONFLICT (event_id) DO NOTHING"),
        {"e": event_id, "i": incident_id, "t": subject_type, "r": subject_ref, "why": reason})


def unmatched(session: Session, limit: int) -> list:
    return session.execute(text("SELECT event_id, incident_id, subject_type, subject_ref, reason, at "
                                "FROM credit.unmatched ORDER BY id DESC LIMIT :n"), {"n": limit}).all()
