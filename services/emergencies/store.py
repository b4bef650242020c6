"""Emergencies storage: officers as grid's events describe them, alerts and their recipients."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

SCHEMA = "emergencies"
ALERT_COLUMNS = ("id, incident_id, category, title, lineage, ST_X(location::geometry) AS lon, "
                 "ST_Y(location::geometry) AS lat, stage, status, deadline, opened_at, accepted_by, accepted_at, "
                 "(SELECT name FROM emergencies.officers o WHERE o.member_id = accepted_by) AS accepted_by_name")


# --- officers, from grid's events ---------------------------------------------------------------

def upsert_officer(session: Session, member_id: str, version: int, **values) -> None:
    """Sets an officer's columns as grid's member event at `version` has them; an event older
    than the one applied already changes nothing (handlers may take events out of order)."""
    columns = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    updates = ", ".join(f"{k} = EXCLUDED.{k}" for k in values)
    session.execute(text(
        f"INSERT INTO emergencies.officers (member_id, version, {columns}) VALUES (:member_id, :version, {params}) "
        f"ON CONFLICT (member_id) DO UPDATE SET version = EXCLUDED.version, {updates}, updated_at = now() "
        "WHERE emergencies.officers.version < EXCLUDED.version"),
        {"member_id": member_id, "version": version, **values})


def set_position(session: Session, member_id: str, lon: float, lat: float, at: datetime) -> None:
    """Only a newer position replaces the one held (events may arrive out of order)."""
    session.execute(text(
        "INSERT INTO emergencies.officers (member_id, position, position_at) "
        "VALUES (:m, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :at) "
        "ON CONFLICT (member_id) DO UPDATE SET position = EXCLUDED.position, position_at = EXCLUDED.position_at "
        "WHERE emergencies.officers.position_at IS NULL OR emergencies.officers.position_at < EXCLUDED.position_at"),
        {"m": member_id, "lon": lon, "lat": lat, "at": at})


def officer(session: Session, member_id: str):
    return session.execute(text("SELECT * FROM emergencies.officers WHERE member_id = :m"), {"m": member_id}).first()


def free_officers_of(session: Session, incident_id: uuid.UUID) -> list[str]:
    rows = session.execute(text("UPDATE emergencies.officers SET busy_incident = NULL, updated_at = now() "
                                "WHERE busy_incident = :i RETURNING member_id"), {"i": incident_id}).all()
    return [r.member_id for r in rows]


def candidates(session: Session, lon: float, lat: float, *, fresh_since: datetime, within_m: float | None,
               district: str | None, exclude: list[str], limit: int):
    """Available officers (active, on duty, not busy) with a position newer than fresh_since,
    nearest first by the GiST index (KNN), with their open alerts as workload."""
    where = ["active", "on_duty", "busy_incident IS NULL", "position_at >= :fresh", "member_id <> ALL(:exclude)"]
    if within_m is not None:
        where.append("ST_DWithin(position, :pt, :radius)")
    if district is not None:
        where.append(":district = ANY(lineage)")
    return session.execute(text(
        "SELECT member_id, name, ST_Distance(position, :pt) AS distance_m, "
        "  (SELECT count(*) FROM emergencies.recipients r JOIN emergencies.alerts a ON a.id = r.alert_id "
        "   WHERE r.member_id = o.member_id AND a.status = 'open' AND r.answer IS NULL) AS open_cases "
        f"FROM emergencies.officers o WHERE {' AND '.join(where)} "
        "ORDER BY position <-> :pt LIMIT :limit"),
        {"pt": f"SRID=4326;POINT({lon} {lat})", "fresh": fresh_since, "exclude": exclude, "radius": within_m,
         "district": district, "limit": limit}).all()


# --- alerts -----------------------------------------------------------------------------------

def insert_alert(session: Session, alert_id: uuid.UUID, incident_id: uuid.UUID, category: str, title: str,
                 lineage: list[str], lon: float, lat: float, stage: str, deadline: datetime | None) -> bool:
    row = session.execute(text(
        "INSERT INTO emergencies.alerts (id, incident_id, category, title, lineage, location, stage, deadline) "
        "VALUES (:id, :inc, :cat, :title, :lineage, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, "
        ":stage, :deadline) ON CONFLICT (incident_id) DO NOTHING RETURNING id"),
        {"id": alert_id, "inc": incident_id, "cat": category, "title": title, "lineage": lineage, "lon": lon,
         "lat": lat, "stage": stage, "deadline": deadline}).first()
    return row is not None


def alert(session: Session, alert_id: uuid.UUID, *, lock: bool = False):
    return session.execute(text(f"SELECT {ALERT_COLUMNS} FROM emergencies.alerts WHERE id = :id"
                                + (" FOR UPDATE" if lock else "")), {"id": alert_id}).first()


def alert_of_incident(session: Session, incident_id: uuid.UUID):
    return session.execute(text(f"SELECT {ALERT_COLUMNS} FROM emergencies.alerts WHERE incident_id = :i"),
                           {"i": incident_id}).first()


def add_recipients(session: Session, alert_id: uuid.UUID, stage: str, people) -> None:
    for p in people:
        session.execute(text(
            "INSERT INTO emergencies.recipients (alert_id, member_id, stage, distance_m) VALUES (:a, :m, :s, :d) "
            "ON CONFLICT DO NOTHING"), {"a": alert_id, "m": p.member_id, "s": stage, "d": p.distance_m})


def recipients(session: Session, alert_id: uuid.UUID):
    return session.execute(text("SELECT * FROM emergencies.recipients WHERE alert_id = :a ORDER BY sent_at, distance_m"),
                           {"a": alert_id}).all()


def answer(session: Session, alert_id: uuid.UUID, member_id: str, answer_: str, reason: str) -> None:
    session.execute(text("UPDATE emergencies.recipients SET answer = :ans, answered_at = now(), reason = :r "
                         "WHERE alert_id = :a AND member_id = :m"),
                    {"a": alert_id, "m": member_id, "ans": answer_, "r": reason})


def accept(session: Session, alert_id: uuid.UUID, member_id: str, incident_id: uuid.UUID) -> None:
    session.execute(text("UPDATE emergencies.alerts SET status = 'accepted', accepted_by = :m, accepted_at = now(), "
                         "deadline = NULL WHERE id = :a"), {"a": alert_id, "m": member_id})
    session.execute(text("UPDATE emergencies.officers SET busy_incident = :i, updated_at = now() WHERE member_id = :m"),
                    {"i": incident_id, "m": member_id})


def withdraw(session: Session, incident_id: uuid.UUID):
    """The incident's alert, if still open, withdrawn (its case ended before anyone took it)."""
    row = session.execute(text("UPDATE emergencies.alerts SET status = 'withdrawn', deadline = NULL "
                               "WHERE incident_id = :i AND status = 'open' RETURNING id"), {"i": incident_id}).first()
    return None if row is None else alert(session, row.id)


def move_stage(session: Session, alert_id: uuid.UUID, stage: str, deadline: datetime | None) -> None:
    session.execute(text("UPDATE emergencies.alerts SET stage = :s, deadline = :d WHERE id = :a"),
                    {"a": alert_id, "s": stage, "d": deadline})


def due_alerts(session: Session, now: datetime, limit: int = 100) -> list[uuid.UUID]:
    """Open alerts whose stage ran out, claimed so that one process widens each (SKIP LOCKED)."""
    return [r.id for r in session.execute(text(
        "SELECT id FROM emergencies.alerts WHERE status = 'open' AND deadline <= :now "
        "ORDER BY deadline LIMIT :limit FOR UPDATE SKIP LOCKED"), {"now": now, "limit": limit}).all()]


def stage_deadline(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
