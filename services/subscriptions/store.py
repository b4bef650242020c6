"""Subscriptions storage, and reading the event store: every service's outbox keeps the rows
it has published, so a replay reads them there in order."""
from __future__ import annotations

from datetime import datetime
from typing import Iterator

from sqlalchemy import text
from sqlalchemy.orm import Session

SCHEMA = "subscriptions"


_COLUMNS = "organisation, name, queue, patterns, scope, grants, created_by, created_at"


def upsert(session: Session, organisation: str, name: str, queue: str, patterns: list[str], scope: list[str],
           grants: list[str], by: str) -> None:
    session.execute(text(
        "INSERT INTO subscriptions.subscriptions (organisation, name, queue, patterns, scope, grants, created_by) "
        "VALUES (:o, :n, :q, :p, :s, :g, :b) ON CONFLICT (organisation, name) DO UPDATE SET "
        "patterns = EXCLUDED.patterns, scope = EXCLUDED.scope, grants = EXCLUDED.grants, updated_at = now()"),
        {"o": organisation, "n": name, "q": queue, "p": patterns, "s": scope, "g": grants, "b": by})


def get(session: Session, organisation: str, name: str):
    return session.execute(text(f"SELECT {_COLUMNS} FROM subscriptions.subscriptions "
                                "WHERE organisation = :o AND name = :n"), {"o": organisation, "n": name}).first()


def all_(session: Session, organisation: str | None = None):
    """An organisation's subscriptions; None: everyone's."""
    return session.execute(text(f"SELECT {_COLUMNS} FROM subscriptions.subscriptions "
                                "WHERE CAST(:o AS text) IS NULL OR organisation = :o ORDER BY organisation, name"),
                           {"o": organisation}).all()


def delete(session: Session, organisation: str, name: str):
    """The deleted row (its queue), or None."""
    return session.execute(text("DELETE FROM subscriptions.subscriptions WHERE organisation = :o AND name = :n "
                                "RETURNING queue"), {"o": organisation, "n": name}).first()


def deliveries(session: Session):
    """Every subscription of an active organisation, with the organisation's own scope and grants:
    what the live delivery filters each event by."""
    return session.execute(text(
        "SELECT s.organisation, s.name, s.queue, s.patterns, s.scope, s.grants, "
        "o.scope AS organisation_scope, o.grants AS organisation_grants "
        "FROM subscriptions.subscriptions s JOIN subscriptions.organisations o ON o.id = s.organisation "
        "WHERE o.active ORDER BY s.queue")).all()


def record_replay(session: Session, organisation: str, name: str, source: str | None, from_sequence: int | None,
                  since: datetime | None, by: str, published: int) -> None:
    session.execute(text(
        "INSERT INTO subscriptions.replays (organisation, subscription, source, from_sequence, since, requested_by, "
        "published) VALUES (:o, :n, :s, :f, :t, :b, :p)"),
        {"o": organisation, "n": name, "s": source, "f": from_sequence, "t": since, "b": by, "p": published})


# --- organisations ----------------------------------------------------------------------------

_ORG_COLUMNS = "id, name, scope, grants, active, registered_by, registered_at"


def organisation(session: Session, org_id: str):
    return session.execute(text(f"SELECT {_ORG_COLUMNS} FROM subscriptions.organisations WHERE id = :i"),
                           {"i": org_id}).first()


def organisations(session: Session):
    return session.execute(text(f"SELECT {_ORG_COLUMNS} FROM subscriptions.organisations ORDER BY id")).all()


def upsert_organisation(session: Session, org_id: str, name: str, scope: list[str], grants: list[str],
                        active: bool, by: str) -> None:
    """Creates or updates; a blank name keeps the one it had (or is the id)."""
    session.execute(text(
        "INSERT INTO subscriptions.organisations (id, name, scope, grants, active, registered_by) "
        "VALUES (:i, coalesce(nullif(:n, ''), :i), :s, :g, :a, :b) ON CONFLICT (id) DO UPDATE SET "
        "name = coalesce(nullif(:n, ''), organisations.name), scope = EXCLUDED.scope, grants = EXCLUDED.grants, "
        "active = EXCLUDED.active, updated_at = now()"),
        {"i": org_id, "n": name, "s": scope, "g": grants, "a": active, "b": by})


def event_sources(session: Session, schemas: tuple[str, ...]) -> list[str]:
    """The service schemas that have an outbox (the event store) in this database."""
    rows = session.execute(text("SELECT table_schema FROM information_schema.tables "
                                "WHERE table_name = 'outbox' AND table_schema = ANY(:s)"), {"s": list(schemas)})
    return sorted(r.table_schema for r in rows)


def stored_events(session: Session, schemas: list[str], *, from_sequence: int | None, since: datetime | None,
                  batch: int = 1000) -> Iterator:
    """Published events in the order they were published (per source: sequence order), read in batches."""
    union = " UNION ALL ".join(
        f"SELECT sequence, event_id, type, source, subject, time, data, subject_sequence, published_at FROM {s}.outbox "
        "WHERE published_at IS NOT NULL AND (CAST(:since AS timestamptz) IS NULL OR time >= :since) "
        "AND (CAST(:seq AS bigint) IS NULL OR sequence >= :seq)" for s in schemas)
    # One source: its own sequence order. Several: the order they were published in, which each
    # source's sequence follows (a relay marks a batch with one time, after the batch before).
    order = "sequence" if len(schemas) == 1 else "published_at, source, sequence"
    result = session.execute(text(f"SELECT * FROM ({union}) e ORDER BY {order}")
                             .execution_options(yield_per=batch), {"since": since, "seq": from_sequence})
    yield from result
