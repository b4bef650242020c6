"""Subscriptions storage, and reading the event store: every service's outbox keeps the rows
it has published, so a replay reads them there in order."""
from __future__ import annotations

from datetime import datetime
from typing import Iterator

from sqlalchemy import text
from sqlalchemy.orm import Session

SCHEMA = "subscriptions"


def upsert(session: Session, name: str, patterns: list[str], by: str) -> bool:
    """True when the subscription is new."""
    row = session.execute(text(
        "INSERT INTO subscriptions.subscriptions (name, patterns, created_by) VALUES (:n, :p, :b) "
        "ON CONFLICT (name) DO UPDATE SET patterns = EXCLUDED.patterns, updated_at = now() "
        "RETURNING (xmax = 0) AS created"), {"n": name, "p": patterns, "b": by}).first()
    return bool(row.created)


def get(session: Session, name: str):
    return session.execute(text("SELECT name, patterns, created_by, created_at FROM subscriptions.subscriptions "
                                "WHERE name = :n"), {"n": name}).first()


def all_(session: Session):
    return session.execute(text("SELECT name, patterns, created_by, created_at FROM subscriptions.subscriptions "
                                "ORDER BY name")).all()


def delete(session: Session, name: str) -> bool:
    return session.execute(text("DELETE FROM subscriptions.subscriptions WHERE name = :n"), {"n": name}).rowcount > 0


def record_replay(session: Session, name: str, source: str | None, from_sequence: int | None,
                  since: datetime | None, by: str, published: int) -> None:
    session.execute(text(
        "INSERT INTO subscriptions.replays (subscription, source, from_sequence, since, requested_by, published) "
        "VALUES (:n, :s, :f, :t, :b, :p)"),
        {"n": name, "s": source, "f": from_sequence, "t": since, "b": by, "p": published})


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
