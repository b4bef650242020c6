"""credit storage: subjects, the hash-chained records, the access log and unmatched events, the
directory of authorities and lists, and credit repair."""
from __future__ import annotations

import uuid
from datetime import datetime

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.credit import domain

SCHEMA = "credit"
SUBJECT = "id, type, uscc, id_masked, name, registered_grid, name_verified, created_at"
RECORD_COLUMNS = (*domain.CONTENT_FIELDS, "prev_hash", "hash", *domain.DECISION_FIELDS)
RECORD = "seq, " + ", ".join(RECORD_COLUMNS)


def _driver(session: Session) -> psycopg.Connection:
    """The psycopg connection under the session's transaction, for COPY."""
    return session.connection().connection.driver_connection


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
    values = {k: values.get(k) for k in RECORD_COLUMNS}
    return session.execute(text(
        f"INSERT INTO credit.records ({', '.join(RECORD_COLUMNS)}) "
        f"VALUES ({', '.join(':' + k for k in RECORD_COLUMNS)}) RETURNING seq"), values).scalar_one()


def copy_records(session: Session, rows: list[dict]) -> None:
    """Appends records in bulk, in order (their seq follows the list)."""
    with _driver(session).cursor() as cur:
        with cur.copy(f"COPY credit.records ({', '.join(RECORD_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row.get(k) for k in RECORD_COLUMNS])


def record(session: Session, record_id: uuid.UUID):
    return session.execute(text(f"SELECT {RECORD} FROM credit.records WHERE id = :i"), {"i": record_id}).first()


def standing_records_of(session: Session, subject_ids: list[uuid.UUID]) -> dict[uuid.UUID, list]:
    """What a standing is computed from, for many subjects: subject id -> its records (the
    columns domain.Record has), oldest first."""
    out: dict[uuid.UUID, list] = {sid: [] for sid in subject_ids}
    for row in session.execute(text(
            "SELECT subject_id, id, kind, severity, valid_from, valid_until, created_at, supersedes, list_code "
            "FROM credit.records WHERE subject_id = ANY(:s) ORDER BY seq"), {"s": list(subject_ids)}):
        out[row.subject_id].append(row)
    return out


def public_records_of(session: Session, subject_id: uuid.UUID) -> list:
    """A subject's records with their authority's name, for what the public may see."""
    return session.execute(text(
        f"SELECT {', '.join('r.' + c for c in RECORD.split(', '))}, a.name AS authority_name "
        "FROM credit.records r LEFT JOIN credit.authorities a ON a.code = r.authority "
        "WHERE r.subject_id = :s ORDER BY r.seq"), {"s": subject_id}).all()


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


def chain_head(session: Session):
    """(record count, the last record's seq, id and hash); seq, id and hash None for an empty chain."""
    return session.execute(text(
        "SELECT (SELECT count(*) FROM credit.records) AS count, r.seq, r.id, r.hash "
        "FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT seq, id, hash FROM credit.records ORDER BY seq DESC LIMIT 1) r "
        "ON true")).one()


def chain_position(session: Session, record_id: uuid.UUID):
    """(seq, hash, its position in the chain counting from 1) of a record, or None."""
    return session.execute(text(
        "SELECT r.seq, r.hash, (SELECT count(*) FROM credit.records WHERE seq <= r.seq) AS position "
        "FROM credit.records r WHERE r.id = :i"), {"i": record_id}).first()


def chain_after(session: Session, seq: int, batch: int = 5000):
    """The records after `seq`, in order, as chain() gives them."""
    yield from session.execute(text(f"SELECT {RECORD} FROM credit.records WHERE seq > :s ORDER BY seq")
                               .bindparams(s=seq).execution_options(yield_per=batch))


CHECKPOINT = "head_record_id, head_hash, record_count, at, key_id, signature"


def last_checkpoint(session: Session):
    return session.execute(text(f"SELECT {CHECKPOINT} FROM credit.checkpoints ORDER BY id DESC LIMIT 1")).first()


def insert_checkpoint(session: Session, values: dict) -> None:
    session.execute(text(f"INSERT INTO credit.checkpoints ({CHECKPOINT}) VALUES "
                         "(:head_record_id, :head_hash, :record_count, :at, :key_id, :signature)"), values)


def subjects_with_records(session: Session, known_by: datetime) -> list[uuid.UUID]:
    return list(session.execute(text("SELECT DISTINCT subject_id FROM credit.records WHERE created_at <= :t"),
                                {"t": known_by}).scalars())


def announced_many(session: Session, subject_ids: list[uuid.UUID]) -> dict:
    """subject id -> the standing last announced for it (lists may be None: not yet known)."""
    return {row.subject_id: row for row in session.execute(text(
        "SELECT subject_id, lists, score FROM credit.standings WHERE subject_id = ANY(:s)"), {"s": list(subject_ids)})}


def save_announced_many(session: Session, rows: list[dict]) -> None:
    """rows: subject_id, lists, score, computed_at, next_change_at."""
    if rows:
        session.execute(text(
            "INSERT INTO credit.standings (subject_id, lists, score, computed_at, next_change_at) "
            "VALUES (:subject_id, :lists, :score, :computed_at, :next_change_at) ON CONFLICT (subject_id) DO UPDATE "
            "SET lists = excluded.lists, score = excluded.score, computed_at = excluded.computed_at, "
            "next_change_at = excluded.next_change_at"), rows)


def standings_due(session: Session, now: datetime, limit: int, subject_ids: list[uuid.UUID] | None = None) -> list:
    """Subjects whose standing may have changed by `now` with no new record."""
    only = " AND subject_id = ANY(:ids)" if subject_ids is not None else ""
    return list(session.execute(text(
        f"SELECT subject_id FROM credit.standings WHERE next_change_at < :now{only} "
        "ORDER BY next_change_at LIMIT :n"), {"now": now, "n": limit, "ids": subject_ids}).scalars())


def log_access(session: Session, subject_id: uuid.UUID | None, reader_id: str, reader_role: str, what: str,
               purpose: str, subject_ref: str | None = None) -> None:
    session.execute(text("INSERT INTO credit.access_log (subject_id, subject_ref, reader_id, reader_role, what, "
                         "purpose) VALUES (:s, :ref, :r, :role, :w, :p)"),
                    {"s": subject_id, "ref": subject_ref, "r": reader_id, "role": reader_role, "w": what,
                     "p": purpose})


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


def enterprises_named(session: Session, name: str, limit: int) -> list:
    return session.execute(text(f"SELECT {SUBJECT} FROM credit.subjects WHERE type = 'enterprise' AND name = :n "
                                "ORDER BY uscc LIMIT :limit"), {"n": name, "limit": limit}).all()


def subjects_many(session: Session, subject_ids: list[uuid.UUID]) -> dict:
    return {row.id: row for row in session.execute(text(f"SELECT {SUBJECT} FROM credit.subjects WHERE id = ANY(:s)"),
                                                   {"s": list(subject_ids)})}


# --- the directory of authorities, lists and actions ----------------------------------------

def directory_rows(session: Session) -> tuple[list, list, list]:
    return (session.execute(text("SELECT code, name, kinds, lists, active FROM credit.authorities")).all(),
            session.execute(text("SELECT code, name, colour, computed, restricts, active FROM credit.lists")).all(),
            session.execute(text("SELECT code, description, active FROM credit.actions")).all())


def save_directory(session: Session, actions: list[dict], lists: list[dict], authorities: list[dict]) -> dict:
    """Upserts the file's entries and deactivates the ones it no longer names; counts per table."""
    counts = {}
    for table, rows, columns in (("actions", actions, ("code", "description")),
                                 ("lists", lists, ("code", "name", "colour", "computed", "restricts")),
                                 ("authorities", authorities, ("code", "name", "kinds", "lists"))):
        if rows:
            session.execute(text(
                f"INSERT INTO credit.{table} ({', '.join(columns)}, active) "
                f"VALUES ({', '.join(':' + c for c in columns)}, true) ON CONFLICT (code) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in columns[1:]) + ", active = true"), rows)
        deactivated = session.execute(text(f"UPDATE credit.{table} SET active = false "
                                           "WHERE active AND NOT (code = ANY(:codes)) RETURNING code"),
                                      {"codes": [r["code"] for r in rows]}).scalars().all()
        counts[table] = (len(rows), len(deactivated))
    return counts


# --- records from departments, in bulk ----------------------------------------------------

STAGED = ("line", "authority", "decision_number", "decision_date", "kind", "subject_type", "uscc", "id_lookup",
          "id_masked", "subject_name")


def stage_rows(session: Session, rows: list) -> None:
    """The rows of one import chunk in a temporary table, for set-based checks and lookups."""
    session.execute(text("CREATE TEMP TABLE import_rows (line int PRIMARY KEY, authority text, decision_number text, "
                         "decision_date date, kind text, subject_type text, uscc text, id_lookup text, "
                         "id_masked text, subject_name text) ON COMMIT DROP"))
    with _driver(session).cursor() as cur:
        with cur.copy(f"COPY import_rows ({', '.join(STAGED)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([getattr(row, c) for c in STAGED])


def staged_decisions_recorded(session: Session) -> list:
    """Staged rows whose decision is recorded already: the record, and whether it is the same
    decision (same subject, kind and date) or another one under the number."""
    return session.execute(text(
        "SELECT s.line, r.id AS record_id, (r.kind = s.kind AND r.decision_date = s.decision_date "
        "AND sub.uscc IS NOT DISTINCT FROM s.uscc AND sub.id_lookup IS NOT DISTINCT FROM s.id_lookup) AS same "
        "FROM import_rows s JOIN credit.records r ON r.authority = s.authority "
        "AND r.decision_number = s.decision_number AND r.decision_number IS NOT NULL "
        "JOIN credit.subjects sub ON sub.id = r.subject_id")).all()


def unstage(session: Session, lines: list[int]) -> None:
    if lines:
        session.execute(text("DELETE FROM import_rows WHERE line = ANY(:l)"), {"l": lines})


def register_staged_subjects(session: Session) -> int:
    """Registers the subjects staged rows name and the registry lacks, under the name the
    issuing authority gave (the first row's); rows without a name register nothing."""
    enterprises = session.execute(text(
        "INSERT INTO credit.subjects (id, type, uscc, name, name_verified) "
        "SELECT gen_random_uuid(), 'enterprise', uscc, subject_name, true FROM ("
        "  SELECT DISTINCT ON (uscc) uscc, subject_name FROM import_rows "
        "  WHERE uscc IS NOT NULL AND subject_name IS NOT NULL ORDER BY uscc, line) named "
        "WHERE NOT EXISTS (SELECT 1 FROM credit.subjects s WHERE s.uscc = named.uscc) "
        "ON CONFLICT DO NOTHING")).rowcount
    people = session.execute(text(
        "INSERT INTO credit.subjects (id, type, id_lookup, id_masked, name, name_verified) "
        "SELECT gen_random_uuid(), 'person', id_lookup, id_masked, subject_name, true FROM ("
        "  SELECT DISTINCT ON (id_lookup) id_lookup, id_masked, subject_name FROM import_rows "
        "  WHERE id_lookup IS NOT NULL AND subject_name IS NOT NULL ORDER BY id_lookup, line) named "
        "WHERE NOT EXISTS (SELECT 1 FROM credit.subjects s WHERE s.id_lookup = named.id_lookup) "
        "ON CONFLICT DO NOTHING")).rowcount
    return enterprises + people


def staged_subjects(session: Session) -> dict[int, uuid.UUID]:
    """line -> the registered subject the staged row names."""
    return dict(session.execute(text(
        "SELECT s.line, sub.id FROM import_rows s JOIN credit.subjects sub ON sub.uscc = s.uscc "
        "WHERE s.uscc IS NOT NULL UNION ALL "
        "SELECT s.line, sub.id FROM import_rows s JOIN credit.subjects sub ON sub.id_lookup = s.id_lookup "
        "WHERE s.id_lookup IS NOT NULL")).all())


def superseded_by(session: Session, record_id: uuid.UUID):
    return session.execute(text("SELECT id FROM credit.records WHERE supersedes = :r"), {"r": record_id}).scalar()


# --- credit repair -------------------------------------------------------------------------

REPAIR = ("a.id, a.record_id, a.subject_id, a.applicant, a.evidence, a.corrected_on, a.applied_on, a.received_by, "
          "a.at, d.approved, d.reason AS decision_reason, d.decided_by, d.repair_record_id, d.at AS decided_at")


def insert_repair_application(session: Session, values: dict) -> None:
    session.execute(text(
        "INSERT INTO credit.repair_applications (id, record_id, subject_id, applicant, evidence, corrected_on, "
        "applied_on, received_by) VALUES (:id, :record_id, :subject_id, :applicant, :evidence, :corrected_on, "
        ":applied_on, :received_by)"), values)


def insert_repair_decision(session: Session, values: dict) -> bool:
    """False when the application was decided already."""
    return session.execute(text(
        "INSERT INTO credit.repair_decisions (application_id, approved, reason, decided_by, repair_record_id) "
        "VALUES (:application_id, :approved, :reason, :decided_by, :repair_record_id) "
        "ON CONFLICT (application_id) DO NOTHING RETURNING 1"), values).first() is not None


def lock_repairs_of(session: Session, record_id: uuid.UUID) -> None:
    """One application or decision about a record at a time."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('gridbus.credit.repair:' || :r))"),
                    {"r": str(record_id)})


def repair_applications(session: Session, *, application_id: uuid.UUID | None = None,
                        record_id: uuid.UUID | None = None, subject_id: uuid.UUID | None = None) -> list:
    where, value = (("a.id = :v", application_id) if application_id is not None else
                    ("a.record_id = :v", record_id) if record_id is not None else ("a.subject_id = :v", subject_id))
    return session.execute(text(f"SELECT {REPAIR} FROM credit.repair_applications a "
                                "LEFT JOIN credit.repair_decisions d ON d.application_id = a.id "
                                f"WHERE {where} ORDER BY a.at"), {"v": value}).all()


def list_defs(session: Session) -> dict:
    return {row.code: row for row in session.execute(text(
        "SELECT code, name, colour, computed, restricts, active FROM credit.lists"))}
