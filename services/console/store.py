"""The console's own storage (schema `console`): members' saved work-queue filters. The
console reads no other service's tables; everything else comes through their gRPC APIs."""
from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.orm import Session

SCHEMA = "console"
MAX_SAVED = 50


def saved_filters(session: Session, member_id: str) -> list[dict]:
    rows = session.execute(text("SELECT name, filter FROM console.saved_filters WHERE member_id = :m ORDER BY name"),
                           {"m": member_id})
    return [{"name": r.name, "filter": r.filter} for r in rows]


def save_filter(session: Session, member_id: str, name: str, doc: dict) -> None:
    session.execute(text(
        "INSERT INTO console.saved_filters (member_id, name, filter) VALUES (:m, :n, CAST(:f AS jsonb)) "
        "ON CONFLICT (member_id, name) DO UPDATE SET filter = EXCLUDED.filter, saved_at = now()"),
        {"m": member_id, "n": name, "f": json.dumps(doc)})


def count_filters(session: Session, member_id: str) -> int:
    return session.scalar(text("SELECT count(*) FROM console.saved_filters WHERE member_id = :m"), {"m": member_id})


def delete_filter(session: Session, member_id: str, name: str) -> bool:
    return session.execute(text("DELETE FROM console.saved_filters WHERE member_id = :m AND name = :n"),
                           {"m": member_id, "n": name}).rowcount > 0
